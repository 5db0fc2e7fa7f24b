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
python3 scripts/check-crate-graph.py
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace

pg_dir_file=$(mktemp)
trap 'scripts/start-postgres.sh --stop "$(cat "$pg_dir_file")"; rm -f "$pg_dir_file"' EXIT
url=$(PARLEY_PG_DIR_FILE="$pg_dir_file" scripts/start-postgres.sh)
echo "messaging tests against PostgreSQL at $url" >&2
# The messaging and group-call test binaries from the workspace build
# above, run again. Not `cargo test -p parley-tests`: cargo would resolve
# features for that one package, rebuild much of the dependency graph a
# second time and double the disk the suite needs (that filled a CI
# machine's disk once).
mapfile -t pg_tests < <(cargo test --locked --workspace --no-run --message-format=json |
  python3 -c '
import json, sys
manifest, wanted = sys.argv[1], set(sys.argv[2:])
for line in sys.stdin:
    m = json.loads(line)
    if (m.get("reason") == "compiler-artifact" and m.get("executable")
            and m["profile"]["test"] and m["manifest_path"] == manifest
            and m["target"]["name"] in wanted):
        print(m["executable"])
' "$PWD/tests/Cargo.toml" messaging calls)
if ((${#pg_tests[@]} != 2)); then
  echo "expected the messaging and calls test binaries, found: ${pg_tests[*]}" >&2
  exit 1
fi
for exe in "${pg_tests[@]}"; do
  echo "     Running $exe (PostgreSQL)" >&2
  (cd tests && PARLEY_TEST_DATABASE_URL="$url" "$exe")
done
