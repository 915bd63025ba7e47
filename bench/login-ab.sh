#!/usr/bin/env bash
# Logins/s of two edge binaries in one run: BASE (an earlier build) and this tree's release
# build, each with its embedded auth core, sharing one PostgreSQL and one Redis, measured
# alternately (wrk POSTing /auth/login with the shipped argon2id parameters). Prints the median
# of each and the ratio this/base: what a change to the login path costs.
# Usage: bench/login-ab.sh BASE_BINARY [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BASE=${1:?usage: bench/login-ab.sh BASE_BINARY [SECONDS] [CONNECTIONS] [ROUNDS]}
SECS=${2:-10}; CONNS=${3:-8}; ROUNDS=${4:-3}
BASE=$(realpath "$BASE")
bench_setup login-ab
start_auth_stack
base_port=$(free_port); base_auth=$(free_port)

conf_of() { # NAME EDGE_PORT AUTH_PORT
  mkdir -p "$out/$1"
  {
    edge_base "$1" "$2"
    auth_conf "$rport" "$pgport" "$3" | sed "s|keys_dir = .*|keys_dir = \"$PWD/$out/$1/keys\"|"
    cat <<TOML
password = { memory_kib = 19456, iterations = 2, parallelism = 1, max_concurrent = 1 }
throttle = { per_account = 100000000, per_ip = 100000000, window = "1m" }
TOML
    edge_route auth /auth "127.0.0.1:$3"
  } >"$out/$1/edge.toml"
}
conf_of this "$edge_port" "$auth_port"
conf_of base "$base_port" "$base_auth"
"$EDGE" migrate --conf "$out/this" >/dev/null
echo "storm password" | "$EDGE" user create --conf "$out/this" --email storm@example.com --password-stdin >/dev/null
"$EDGE" run --conf "$out/this" >"$out/logs/this.log" 2>&1 & pids+=($!)
"$BASE" run --conf "$out/base" >"$out/logs/base.log" 2>&1 & pids+=($!)
wait_port "$edge_port"; wait_port "$base_port"; sleep 1

cat >"$out/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"email":"storm@example.com","password":"storm password"}'
wrk.headers["Content-Type"] = "application/json"
LUA
for port in "$edge_port" "$base_port"; do
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/auth/login" -H 'content-type: application/json' \
    -d '{"email":"storm@example.com","password":"storm password"}'
done
printf '%-6s %-5s %10s %8s\n' round build logins/s non2xx | tee "$results"
for round in $(seq "$ROUNDS"); do
  for build in base this; do
    [ $build = this ] && port=$edge_port || port=$base_port
    wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$out/login.lua" "http://127.0.0.1:$port/auth/login" >"$out/wrk.txt"
    rps=$(awk '/Requests\/sec/{print $2}' "$out/wrk.txt"); non=$(awk '/Non-2xx/{print $5}' "$out/wrk.txt")
    printf '%-6s %-5s %10s %8s\n' "$round" "$build" "$rps" "${non:-0}" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("round")]
m = lambda b: st.median(float(r[2]) for r in rows if r[1] == b)
print(f"logins/s median: base {m('base'):.1f}, this {m('this'):.1f}: this/base {m('this') / m('base'):.3f}")
PY
