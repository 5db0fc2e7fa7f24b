#!/usr/bin/env bash
# Quick start, part two: the whole test suite, as CI runs it: formatting,
# clippy with warnings as errors, and every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
