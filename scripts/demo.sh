#!/usr/bin/env bash
# Quick start, part one: install what is missing, build, and run the main
# job. Today that is the audio packet-loss benchmark (speech through Opus,
# RTP, a lossy simulated link and the jitter buffer, scored with PESQ-WB);
# once calls land it becomes the two-client call demo.
#
#   scripts/demo.sh [audio-loss options, e.g. --runs 5 --seed 7 --json out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo run --release --locked -p parley-bench -- audio-loss "$@"
