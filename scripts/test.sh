#!/usr/bin/env bash
# Quick start, part two: the whole test suite, as CI runs it: formatting,
# the crate graph, clippy with warnings as errors, every test in the
# workspace (storage on SQLite), then the messaging and group-call tests
# again against a throwaway PostgreSQL on loopback.
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
# Clippy runs inside the one build of every target: clippy-driver wraps
# rustc for the workspace's own crates (what `cargo clippy` does for
# `cargo check`), so dependencies compile once instead of once for
# clippy's check and again for the tests (that was 7 of CI's 15 minutes).
# The same lints, warnings denied; CLIPPY_ARGS is how cargo-clippy hands
# clippy-driver its arguments.
clippy_driver=""
if command -v rustup >/dev/null; then
  clippy_driver="$(dirname "$(rustup which cargo)")/clippy-driver"
fi
if [ -x "$clippy_driver" ]; then
  export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
  cargo test --locked --workspace --all-targets --no-run
else
  cargo clippy --locked --workspace --all-targets -- -D warnings
fi
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
