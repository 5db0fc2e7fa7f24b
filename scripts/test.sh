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
# Nor line tables for our own crates: less code to generate and link in
# every test binary (a panic still names its file and line; backtraces
# then do not).
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
  export CARGO_PROFILE_DEV_DEBUG=false
fi
cargo fmt --all -- --check
python3 scripts/check-crate-graph.py
# Clippy lints our crates while the test build compiles them:
# clippy-driver as the workspace's rustc wrapper with `-D warnings`, which
# is what `cargo clippy` sets up, over every target (benches and examples
# included, as `--all-targets` would). A separate `cargo clippy` first
# checks every dependency once more (~80 s of a clean run on 2 cores).
# The wrapper stays set for the rest of the script: cargo rebuilds
# whatever was built under another one.
driver=$(command -v clippy-driver || true)
if [ -n "$driver" ]; then
  export RUSTC_WORKSPACE_WRAPPER="$driver"
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
  cargo test --locked --workspace --all-targets --no-run
else
  cargo clippy --locked --workspace --all-targets -- -D warnings
fi
cargo test --locked --workspace

pg_dir_file=$(mktemp)
trap 'scripts/start-postgres.sh --stop "$(cat "$pg_dir_file")"; rm -f "$pg_dir_file"' EXIT
url=$(PARLEY_PG_DIR_FILE="$pg_dir_file" scripts/start-postgres.sh)
echo "server, messaging and group-call tests against PostgreSQL at $url" >&2
# The server's, the messaging and the group-call test binaries from the
# workspace build above, run again. Not `cargo test -p ...`: cargo would
# resolve features for that one package, rebuild much of the dependency
# graph a second time and double the disk the suite needs (that filled a
# CI machine's disk once).
pg_targets=(signaling:server tests:messaging tests:calls)
mapfile -t pg_tests < <(cargo test --locked --workspace --no-run --message-format=json |
  python3 -c '
import json, os, sys
root, wanted = sys.argv[1], set(sys.argv[2:])
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    package = os.path.basename(os.path.dirname(m["manifest_path"]))
    if package + ":" + m["target"]["name"] in wanted:
        print(package, m["executable"])
' "$PWD" "${pg_targets[@]}")
if ((${#pg_tests[@]} != ${#pg_targets[@]})); then
  echo "expected the test binaries ${pg_targets[*]}, found: ${pg_tests[*]}" >&2
  exit 1
fi
for entry in "${pg_tests[@]}"; do
  read -r package exe <<<"$entry"
  echo "     Running $exe (PostgreSQL)" >&2
  (cd "$package" && PARLEY_TEST_DATABASE_URL="$url" "$exe")
done
