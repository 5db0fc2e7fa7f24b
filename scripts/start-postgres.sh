#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 for the test suite and prints
# its URL. Installs the Debian package if missing. The cluster lives in a
# temp dir; stop it with: scripts/start-postgres.sh --stop DIR
#
#   url=$(scripts/start-postgres.sh)        # also writes DIR to $PARLEY_PG_DIR_FILE if set
set -euo pipefail

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pgbin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ "${1:-}" = "--stop" ]; then
  as_postgres "$(pgbin)/pg_ctl" -D "$2/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi

if [ -z "$(pgbin)" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
fi
bin=$(pgbin)

dir=$(mktemp -d /tmp/parley-pg.XXXXXX)
chmod 755 "$dir"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
# A free port: let the kernel pick one, then hand it to PostgreSQL.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

as_postgres "$bin/initdb" -D "$dir/data" -A trust -U parley --no-sync >/dev/null
# Tests do not need durability; benchmarks set PARLEY_PG_FSYNC=on so the
# comparison with SQLite (synchronous=FULL) is fair.
fsync="-c fsync=off"
if [ "${PARLEY_PG_FSYNC:-off}" = "on" ]; then fsync=""; fi
as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $fsync" start >/dev/null
as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U parley parley_test

if [ -n "${PARLEY_PG_DIR_FILE:-}" ]; then echo "$dir" > "$PARLEY_PG_DIR_FILE"; fi
echo "postgres://parley@127.0.0.1:$port/parley_test"
