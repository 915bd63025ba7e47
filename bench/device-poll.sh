#!/usr/bin/env bash
# TV sign-in polls (RFC 8628): the hot path of the device flow. 10,000 TVs wait with pending
# codes; wrk polls /auth/device/token through the edge, spreading over all of them. A pending
# poll must cost one Redis round trip and no database query: Redis calls and PostgreSQL
# transactions per poll are counted from the servers themselves. Same run, for scale: the
# same edge and core answering GET /auth/.well-known/jwks.json (no Redis, no database).
# The codes are written into Redis directly (the per-network limit on asking for codes would
# stop one bench client at 20), with interval 0 so every poll takes the pending path rather
# than slow_down.
# Usage: bench/device-poll.sh [SECONDS] [CONNECTIONS] [TVS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${1:-8}; CONNS=${2:-32}; TVS=${3:-10000}; ROUNDS=${4:-3}
bench_setup device-poll
start_auth_stack
mkdir -p "$out/conf"
{
  edge_base edge "$edge_port"
  auth_conf "$rport" "$pgport" "$auth_port"
  cat <<TOML
token_cookie = "access_token"
device = { verification_uri = "http://127.0.0.1:$edge_port/activate", clients = [{ id = "bench-tv", name = "Bench TV" }] }
TOML
  edge_route auth /auth "127.0.0.1:$auth_port"
} >"$out/conf/edge.toml"
"$EDGE" migrate --conf "$out/conf" >/dev/null
"$EDGE" run --conf "$out/conf" >"$out/logs/edge.log" 2>&1 & pids+=($!); edge_pid=$!
wait_port "$edge_port"; wait_port "$rport"

# $TVS pending authorizations in the store's format, and a wrk script cycling through them
python3 - "$TVS" "$out" <<'PY' | redis-cli -p "$rport" --pipe >/dev/null
import hashlib, secrets, sys, time
n, out = int(sys.argv[1]), sys.argv[2]
now = int(time.time() * 1000)
codes = []
def cmd(*args):
    parts = [f"*{len(args)}\r\n"] + [f"${len(str(a).encode())}\r\n{a}\r\n" for a in args]
    sys.stdout.write("".join(parts))
for i in range(n):
    code = secrets.token_urlsafe(32)[:43]
    codes.append(code)
    key = "auth:device:dc:" + hashlib.sha256(code.encode()).hexdigest()
    cmd("HSET", key, "status", "pending", "client", "bench-tv", "user_code", f"B{i:07d}",
        "scope", "", "tv_ua", "bench", "tv_net", "127.0.0.1/32 127.0.0.1",
        "created_ms", now, "expires_ms", now + 3600_000, "interval_ms", 0, "last_poll_ms", 0)
    cmd("PEXPIRE", key, 3600_000)
with open(f"{out}/poll.lua", "w") as f:
    f.write("local codes = {\n" + ",\n".join(f'"{c}"' for c in codes) + "\n}\n")
    f.write("""
local i = 0
request = function()
  i = i + 1
  local code = codes[(i % #codes) + 1]
  return wrk.format("POST", "/auth/device/token",
    {["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=bench-tv&device_code=" .. code)
end
""")
PY
echo "$(redis-cli -p "$rport" --scan --pattern 'auth:device:dc:*' | wc -l) TVs waiting"
# the answer must be authorization_pending
curl -s "http://127.0.0.1:$edge_port/auth/device/token" -d client_id=bench-tv \
  -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
  -d device_code="$(sed -n 2p "$out/poll.lua" | tr -d '",')" | grep -q authorization_pending
redis_calls() { redis-cli -p "$rport" INFO commandstats | awk -F'[=,:]' '/^cmdstat_eval(sha)?:/{s+=$3} END{print s+0}'; }
pg_xacts() { as_postgres "psql -h 127.0.0.1 -p $pgport -U postgres -d edge -tAc \"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'edge'\""; }

wrk -t1 -c"$CONNS" -d2s -s "$out/poll.lua" "http://127.0.0.1:$edge_port/" >/dev/null
printf '%-14s %10s %8s %8s %8s %8s\n' target req/s p99_ms cpu_us user_us sys_us | tee "$results"
calls_total=0; polls_total=0; x0=$(pg_xacts)
for _ in $(seq "$ROUNDS"); do
  c0=$(redis_calls)
  WRK_SCRIPT="$out/poll.lua" measure device-poll "http://127.0.0.1:$edge_port/" "$edge_pid $redis_pid"
  c1=$(redis_calls)
  polls=$(tail -1 "$results" | awk -v s="$SECS" '{printf "%d", $2 * s}')
  calls_total=$((calls_total + c1 - c0)); polls_total=$((polls_total + polls))
  measure jwks "http://127.0.0.1:$edge_port/auth/.well-known/jwks.json" "$edge_pid $redis_pid"
done
x1=$(pg_xacts)
python3 - "$results" "$calls_total" "$polls_total" "$x0" "$x1" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("target")]
med = lambda name: [st.median(float(r[i]) for r in rows if r[0] == name) for i in (1, 2, 3)]
p, j = med("device-poll"), med("jwks")
calls, polls, x0, x1 = map(int, sys.argv[2:6])
print(f"median device-poll {p[0]:8.0f} polls/s  p99 {p[1]:5.2f} ms  {p[2]:6.2f} µs CPU/poll (edge+core and redis-server)")
print(f"median jwks        {j[0]:8.0f} req/s    p99 {j[1]:5.2f} ms  {j[2]:6.2f} µs CPU/req")
print(f"poll / jwks: throughput {p[0]/j[0]:.2f}x, CPU {p[2]/j[2]:.2f}x")
print(f"Redis script calls per poll: {calls/max(polls,1):.3f} (~{polls} polls); "
      f"PostgreSQL transactions during all rounds: {x1-x0} (background jobs and health probes included)")
PY
