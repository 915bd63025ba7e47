#!/usr/bin/env bash
# The workload a profile-guided build is trained on (scripts/release-pgo.sh): the edge at
# EDGE_BIN (an instrumented build) serves, for a few seconds each, a public route, a required
# route with a real token (signature checked, then cached), a rate-limited route (Redis), and
# Smart TV requests the bot filter challenges; then it stops cleanly, which writes the profile.
# Usage: EDGE_BIN=… bench/pgo-workload.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${1:-4}
bench_setup pgo
start_auth_stack
mkdir -p "$out/conf"
{
  edge_base edge "$edge_port" "upstream_keepalive_pool_size = 128"
  auth_conf "$rport" "$pgport" "$auth_port"
  cat <<TOML
[limit.per-ip]
key = "ip"
rate = "1000000/s"
burst = 1000000
[bot_filter]
secret = "0123456789abcdef0123456789abcdef"
[[bot_filter.rule]]
name = "tv"
user_agent = "(?i)tizen|webos"
action = "challenge"
TOML
  edge_route auth /auth "127.0.0.1:$auth_port"
  edge_route public /public "127.0.0.1:$up"
  edge_route required /required "127.0.0.1:$up" 'auth = "required"'
  edge_route limited /limited "127.0.0.1:$up" 'limits = ["per-ip"]'
} >"$out/conf/edge.toml"
"$EDGE" migrate --conf "$out/conf" >/dev/null
"$EDGE" run --conf "$out/conf" >"$out/logs/edge.log" 2>&1 & edge_pid=$!
wait_port "$edge_port"; wait_port "$up"; sleep 0.5
token=$(bench_user_token "$edge_port")
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$token" >"$out/token.lua"
printf 'wrk.headers["User-Agent"] = "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)"\n' >"$out/tv.lua"
wrk -t1 -c16 -d"${SECS}s" "http://127.0.0.1:$edge_port/public" | grep -E "Requests/sec"
wrk -t1 -c16 -d"${SECS}s" -s "$out/token.lua" "http://127.0.0.1:$edge_port/required" | grep -E "Requests/sec"
wrk -t1 -c16 -d"${SECS}s" "http://127.0.0.1:$edge_port/limited" | grep -E "Requests/sec"
wrk -t1 -c4 -d"${SECS}s" -s "$out/tv.lua" "http://127.0.0.1:$edge_port/public" | grep -E "Requests/sec"
# a clean stop runs the exit handlers that write the profile
kill -TERM "$edge_pid"; wait "$edge_pid" || true
