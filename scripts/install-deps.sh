#!/usr/bin/env bash
# Installs what Parley's build and tests need on Debian/Ubuntu, and nothing
# that is already there. Safe to run again.
#
#   cmake           builds libopus (opus crate)
#   nasm            OpenH264's assembly; without it the codec silently
#                   builds 4-5x slower C code
#   pkg-config, libasound2-dev, libclang-dev
#                   cpal (ALSA) and nokhwa (V4L2 bindings) for capture
#   espeak-ng, sox  regenerate the speech asset (scripts/make-speech-asset.sh)
#   postgresql      the test suite runs the messaging tests against it too
#   python3         picks a free port for that PostgreSQL
#   iproute2        network namespaces for the two-machine call test
#   pulseaudio, pulseaudio-utils, libasound2-plugins
#                   a null sink the cpal capture/playback test runs on
#                   (ALSA's `default` reaches PulseAudio through the plugin)
#   chromium, nodejs, npm
#                   the browser demo test: Debian's Chromium driven by
#                   playwright-core (npm ci in tests/browser, below)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake pkg-config nasm libasound2-dev libclang-dev espeak-ng sox postgresql python3
  iproute2 pulseaudio pulseaudio-utils libasound2-plugins chromium)
# Node.js and npm: the machine's own when it has them (Debian's would
# conflict with a NodeSource or nvm install).
if ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# playwright-core for the browser test, at the version package-lock.json
# pins (it drives /usr/bin/chromium; it downloads no browser).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund >&2
fi

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust first (https://rustup.rs)" >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >&2
  done
fi
