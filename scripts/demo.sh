#!/usr/bin/env bash
# Quick start, part one: install what is missing, build, and run the main
# job: a 1:1 video call between two headless clients through an embedded
# server on loopback (E2E-keyed offer, str0m, Opus + H.264, SFrame), with
# 5 % random loss each way, scored with PESQ-WB and PSNR.
#
#   scripts/demo.sh [demo call options, e.g. --duration 20 --loss 10 --json out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo run --release --locked -p parley-cli --bin parley -- demo call --video --loss 5 "$@"
