#!/usr/bin/env bash
# Forward auth: nginx `auth_request` asking the edge (`/_edge/auth/signed-in`, a real access
# token on every request) before proxying to the upstream, against the same nginx proxying with
# no auth and with an `auth_request` answered by a static server (the floor of a subrequest
# round trip), all in one run; plus the edge's decisions per second asked directly. CPU per
# request counts every server process of the row (nginx, upstream, edge).
# Usage: bench/forward-auth.sh [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${1:-8}; CONNS=${2:-32}; ROUNDS=${3:-3}
bench_setup forward-auth
start_auth_stack
front=$(free_port)
mkdir -p "$out/conf"
{
  edge_base edge "$edge_port"
  auth_conf "$rport" "$pgport" "$auth_port"
  edge_route auth /auth "127.0.0.1:$auth_port"
  printf '[forward_auth]\n[forward_auth.policy.signed-in]\nauth = "required"\n'
} >"$out/conf/edge.toml"
"$EDGE" migrate --conf "$out/conf" >/dev/null
"$EDGE" run --conf "$out/conf" >"$out/logs/edge.log" 2>&1 & pids+=($!); edge_pid=$!
cat >"$out/front.conf" <<NGINX
worker_processes 1; daemon off; pid $PWD/$out/front.pid; error_log $PWD/$out/logs/front.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  upstream backend { server 127.0.0.1:$up; keepalive 128; }
  upstream edge { server 127.0.0.1:$edge_port; keepalive 128; }
  server { listen 127.0.0.1:$front;
    proxy_http_version 1.1; proxy_set_header Connection "";
    location /direct/ { proxy_pass http://backend; }
    location /static-auth/ { auth_request /_static; proxy_pass http://backend; }
    # proxy_set_header in a location replaces every inherited one: Connection "" (keepalive
    # to the upstream) is repeated wherever a location sets its own
    location /edge-auth/ {
      auth_request /_edge/signed-in;
      auth_request_set \$uid \$upstream_http_x_user_id;
      proxy_set_header X-User-Id \$uid; proxy_set_header Connection "";
      proxy_pass http://backend; }
    # an answer without a body: nginx reads only the head of an auth answer, and a connection
    # whose body was left unread cannot be kept alive
    location = /_static { internal; proxy_pass http://backend/empty; proxy_pass_request_body off;
      proxy_set_header Content-Length ""; proxy_set_header Connection ""; }
    location /_edge/ { internal; proxy_pass http://edge/_edge/auth/;
      proxy_pass_request_body off; proxy_set_header Content-Length ""; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-Method \$request_method; proxy_set_header X-Forwarded-Uri \$request_uri; } } }
NGINX
nginx -p "$PWD/$out" -c "$PWD/$out/front.conf" & pids+=($!); front_master=$!
wait_port "$edge_port"; wait_port "$front"; wait_port "$up"; sleep 0.5
token=$(bench_user_token "$edge_port")
printf 'wrk.headers["Authorization"] = "Bearer %s"\nwrk.headers["X-Forwarded-Method"] = "GET"\nwrk.headers["X-Forwarded-Uri"] = "/films"\n' "$token" >"$out/token.lua"
WRK_SCRIPT="$out/token.lua"
front_workers=$(nginx_workers "$front_master"); up_workers=$(nginx_workers "$up_master")
# the decision really is made: no token is a 401 through nginx, the token a 200
test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$front/edge-auth/x")" = 401
curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$front/edge-auth/x"
for p in "$front/direct/x" "$front/static-auth/x" "$front/edge-auth/x" "$edge_port/_edge/auth/signed-in"; do
  wrk -t1 -c"$CONNS" -d2s -s "$out/token.lua" "http://127.0.0.1:$p" >/dev/null
done
printf '%-14s %10s %8s %8s %8s %8s\n' target req/s p99_ms cpu_us user_us sys_us | tee -a "$results"
for _ in $(seq "$ROUNDS"); do
  measure direct "http://127.0.0.1:$front/direct/x" "$front_workers $up_workers"
  measure static-auth "http://127.0.0.1:$front/static-auth/x" "$front_workers $up_workers"
  measure edge-auth "http://127.0.0.1:$front/edge-auth/x" "$front_workers $up_workers $edge_pid $redis_pid"
  measure edge-decide "http://127.0.0.1:$edge_port/_edge/auth/signed-in" "$edge_pid $redis_pid"
  measure static-200 "http://127.0.0.1:$up/" "$up_workers"
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("target")]
med = lambda name: [st.median(float(r[i]) for r in rows if r[0] == name) for i in (1, 2, 3)]
d, s, e, x, z = (med(n) for n in ("direct", "static-auth", "edge-auth", "edge-decide", "static-200"))
for name, m in (("direct", d), ("static-auth", s), ("edge-auth", e), ("edge-decide", x), ("static-200", z)):
    print(f"median {name:12s} {m[0]:8.0f} req/s  p99 {m[1]:5.2f} ms  {m[2]:6.2f} µs CPU/req")
print(f"nginx auth_request to the edge / to a static server: throughput {e[0]/s[0]:.2f}x, CPU/request {e[2]/s[2]:.2f}x")
print(f"added by asking the edge, vs no auth: p99 +{e[1]-d[1]:.2f} ms, CPU +{e[2]-d[2]:.1f} µs/request, throughput {e[0]/d[0]:.2f}x")
print(f"edge decisions asked directly / nginx static 200: throughput {x[0]/z[0]:.2f}x, CPU/request {x[2]/z[2]:.2f}x")
PY
