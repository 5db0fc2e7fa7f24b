#!/usr/bin/env bash
# Quick start, part two: the whole test suite, as CI runs it: formatting,
# clippy with warnings as errors, every test in the workspace (storage on
# SQLite), then the messaging tests again against a throwaway PostgreSQL
# on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# A fresh clone builds everything once: incremental state would only add
# gigabytes of disk that nothing reads again.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace

pg_dir_file=$(mktemp)
trap 'scripts/start-postgres.sh --stop "$(cat "$pg_dir_file")"; rm -f "$pg_dir_file"' EXIT
url=$(PARLEY_PG_DIR_FILE="$pg_dir_file" scripts/start-postgres.sh)
echo "messaging tests against PostgreSQL at $url" >&2
PARLEY_TEST_DATABASE_URL="$url" cargo test --locked -p parley-client
