#!/usr/bin/env bash
# The README's "SFU under load" table: one `parley loadtest` per row, each
# against a fresh parley-server (release build) on loopback, rows as one
# markdown table on stdout and each row's JSON in $OUT (default
# target/loadtest).
#
#   scripts/loadtest-sweep.sh                 # the README's four rows
#   scripts/loadtest-sweep.sh 2x8:audio 4x16  # PUBLISHERSxSUBSCRIBERS[:audio]
#   BASELINE=/tmp/old/parley-server scripts/loadtest-sweep.sh
#       # each row twice, against that server and this one (the same
#       # generator), labelled in the first column
set -euo pipefail
cd "$(dirname "$0")/.."
rows=("$@")
if [ ${#rows[@]} -eq 0 ]; then
  rows=(2x8:audio 2x8 2x30 4x16)
fi
out=${OUT:-target/loadtest}
duration=${DURATION:-5}
mkdir -p "$out"
cargo build --release --locked -q -p parley-signaling -p parley-cli
port=$((20000 + RANDOM % 20000))
header=1
# run_row SERVER LABEL ROW
run_row() {
  local server_bin=$1 label=$2 row=$3
  local counts=${row%%:*}
  local publishers=${counts%%x*}
  local subscribers=${counts##*x}
  local media=(--video)
  if [ "${row#*:}" = audio ]; then media=(); fi
  local name=$row${label:+-$label}
  rm -rf "$out/data-$name"
  "$server_bin" --listen "127.0.0.1:$port" --sfu-token-secret sweep \
    --data-dir "$out/data-$name" >"$out/server-$name.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  local table
  table=$(target/release/parley loadtest --sfu "http://127.0.0.1:$port" --token-secret sweep \
    --publishers "$publishers" --subscribers "$subscribers" --duration "$duration" \
    "${media[@]}" --json "$out/$name.json" 2>/dev/null)
  kill "$server"
  wait "$server" 2>/dev/null || true
  local prefix=""
  if [ -n "${BASELINE:-}" ]; then prefix="| $label "; fi
  if [ $header -eq 1 ]; then
    echo "$table" | grep '^|' | head -1 | sed "s/^/${BASELINE:+| server }/"
    echo "$table" | grep '^|' | sed -n 2p | sed "s/^/${BASELINE:+|---}/"
    header=0
  fi
  echo "$table" | grep '^|' | tail -1 | sed "s/^/$prefix/"
  port=$((port + 1))
}
for row in "${rows[@]}"; do
  if [ -n "${BASELINE:-}" ]; then
    run_row "$BASELINE" baseline "$row"
  fi
  run_row target/release/parley-server "${BASELINE:+this}" "$row"
done
