#!/usr/bin/env bash
# What CI costs: clones this repository's HEAD into a fresh directory, runs
# `CI=true bash .ci/run` there, and prints the wall time and the peak size
# of target/ (sampled every 20 s). The README's "Development" table comes
# from this.
#
#   scripts/ci-measure.sh [DIR]      # default /tmp/parley-ci-measure (deleted first)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/tmp/parley-ci-measure}
rm -rf "$dir"
git clone -q "$repo" "$dir"
cd "$dir"
samples=$(mktemp)
(while sleep 20; do du -sm target 2>/dev/null | cut -f1 >>"$samples" || true; done) &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
start=$(date +%s)
status=0
CI=true bash .ci/run >"$dir.log" 2>&1 || status=$?
elapsed=$(($(date +%s) - start))
peak=$(sort -n "$samples" | tail -1)
echo "exit $status, $((elapsed / 60))m$((elapsed % 60))s, target/ peak ${peak:-0} MB (log: $dir.log)"
exit $status
