#!/usr/bin/env bash
# Stops or starts the PostgreSQL of `make run`, to watch the site outlive its auth database:
#   scripts/demo-db.sh stop    # login answers 503 at once; tokens keep working
#   scripts/demo-db.sh start   # sign-in is back within a second
set -euo pipefail
cd "$(dirname "$0")/.."
run="$(pwd)/.run"
PG_PORT=${DEMO_PG_PORT:-5433}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi
}
case "${1:-}" in
  stop)  as_postgres "$pg_bin/pg_ctl -D $run/pg/data -m fast -w stop" ;;
  start) as_postgres "$pg_bin/pg_ctl -D $run/pg/data -l $run/pg/pg.log -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k $run/pg' -w start" ;;
  *) echo "usage: $0 stop|start" >&2; exit 2 ;;
esac
