#!/usr/bin/env bash
# Regenerates media/assets/speech.wav: four Harvard sentences in two
# espeak-ng voices, normalised to -6 dBFS peak, 24 kHz mono 16-bit, with
# 300 ms of silence at each end. The committed file is what tests and
# benches use; rerunning this with another espeak-ng version may differ.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 160 -w "$tmp/a.wav" \
  "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
espeak-ng -v en-gb+f3 -s 155 -w "$tmp/b.wav" \
  "Rice is often served in round bowls. The juice of lemons makes fine punch."
sox "$tmp/a.wav" "$tmp/b.wav" -r 24000 -b 16 -c 1 media/assets/speech.wav gain -n -6 rate -v pad 0.3 0.3
