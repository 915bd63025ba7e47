#!/usr/bin/env bash
# Edge vs nginx as a reverse proxy, same machine, same run, interleaved rounds.
#   (a) the upstream directly, (b) nginx proxy_pass with upstream keepalive, (c) the edge,
#   (f) the framework floor: a bare Pingora proxy (bench/floor) built with the edge's Pingora,
#   features, allocator and profile, so edge/floor is what the edge's policy costs,
#   (d) the edge on a path it must rewrite to canonical form (/./, //, %6d), for the cost of
#   canonicalisation next to (c)'s clean path.
# One worker each (nginx worker_processes 1, edge threads = 1), access logs off on both.
# Prints requests/s, p99 (ms) and the proxy's CPU µs per request (utime+stime over the run /
# requests), then the edge/nginx and edge/floor ratios (medians over the rounds).
# With EDGE_BASELINE=/path/to/edge (an older build), that binary runs beside the current one
# with the same conf and is measured in the same rounds (row "baseline"): before/after in one
# run, as a change's benchmark must be.
# Usage: [EDGE_BIN=…] [EDGE_BASELINE=…] bench/proxy.sh [ROUNDS] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${1:-3}; SECS=${2:-10}; CONNS=${3:-32}
bench_setup proxy
up=$(free_port); ngx=$(free_port); edge=$(free_port); base=$(free_port); floor=$(free_port)
FLOOR=${FLOOR_BIN:-target/release/pingora-floor}
if [ -z "${FLOOR_BIN:-}" ]; then cargo build --release -q -p pingora-floor; fi
start_upstream "$up"
cat >"$out/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $PWD/$out/nginx.pid; error_log $PWD/$out/logs/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  upstream backend { server 127.0.0.1:$up; keepalive 128; }
  server { listen 127.0.0.1:$ngx;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_set_header X-Request-Id \$request_id; add_header X-Request-Id \$request_id; } } }
NGINX
mkdir -p "$out/conf"
{ edge_base edge "$edge" "upstream_keepalive_pool_size = 128"; edge_route bench / "127.0.0.1:$up"; } >"$out/conf/edge.toml"

nginx -p "$PWD/$out" -c "$PWD/$out/nginx.conf" & pids+=($!); ngx_master=$!
"$EDGE" run --conf "$out/conf" >"$out/logs/edge.log" 2>&1 & pids+=($!); edge_pid=$!
"$FLOOR" "127.0.0.1:$floor" "127.0.0.1:$up" 128 >"$out/logs/floor.log" 2>&1 & pids+=($!); floor_pid=$!
wait_port "$up"; wait_port "$ngx"; wait_port "$edge"; wait_port "$floor"
if [ -n "${EDGE_BASELINE:-}" ]; then
  mkdir -p "$out/conf-base"
  { edge_base baseline "$base" "upstream_keepalive_pool_size = 128"; edge_route bench / "127.0.0.1:$up"; } >"$out/conf-base/edge.toml"
  "$EDGE_BASELINE" run --conf "$out/conf-base" >"$out/logs/baseline.log" 2>&1 & pids+=($!); base_pid=$!
  wait_port "$base"
  wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$base/" >/dev/null
fi
sleep 0.5
up_workers=$(nginx_workers "$up_master"); ngx_workers=$(nginx_workers "$ngx_master")

# warm-up (connection pools, page cache)
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$ngx/" >/dev/null
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$edge/" >/dev/null
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$floor/" >/dev/null

echo "wrk -t1 -c$CONNS -d${SECS}s, $ROUNDS rounds; $(nproc) cores; $(date -u +%FT%TZ)"
printf '%-10s %10s %8s %8s %8s %8s\n' target req/s p99_ms cpu_us user_us sys_us | tee -a "$results"
for r in $(seq "$ROUNDS"); do
  measure direct "http://127.0.0.1:$up/api/v1/movies" "$up_workers"
  measure nginx "http://127.0.0.1:$ngx/api/v1/movies" "$ngx_workers"
  measure floor "http://127.0.0.1:$floor/api/v1/movies" "$floor_pid"
  measure edge "http://127.0.0.1:$edge/api/v1/movies" "$edge_pid"
  measure edge-dirty "http://127.0.0.1:$edge/api/./v1//%6dovies" "$edge_pid"
  if [ -n "${EDGE_BASELINE:-}" ]; then measure baseline "http://127.0.0.1:$base/api/v1/movies" "$base_pid"; fi
done

python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith("target")]
med = {}
for name in ("direct", "nginx", "floor", "edge", "edge-dirty", "baseline"):
    rs = [r for r in rows if r[0] == name]
    if not rs:
        continue
    med[name] = [st.median(float(r[i]) for r in rs) for i in (1, 2, 3, 4, 5)]
print("\nmedians:")
for name, (rps, p99, cpu, usr, sys_) in med.items():
    print(f"  {name:8s} {rps:10.0f} req/s  p99 {p99:6.2f} ms  {cpu:6.2f} µs CPU/req ({usr:.2f} user + {sys_:.2f} sys)")
e, n, d = med["edge"], med["nginx"], med["edge-dirty"]
f = med["floor"]
print(f"\nedge/nginx: throughput {e[0]/n[0]:.2f}x  p99 {e[1]/n[1]:.2f}x  CPU per request {e[2]/n[2]:.2f}x")
print(f"edge/floor (bare Pingora): throughput {e[0]/f[0]:.2f}x  CPU per request {e[2]/f[2]:.2f}x ({e[2]-f[2]:+.2f} µs)")
print(f"floor/nginx: CPU per request {f[2]/n[2]:.2f}x")
print(f"a path rewritten to canonical form: {d[2]-e[2]:+.2f} µs CPU per request over a clean one")
if "baseline" in med:
    b = med["baseline"]
    print(f"edge/baseline: throughput {e[0]/b[0]:.2f}x  CPU per request {e[2]/b[2]:.2f}x ({e[2]-b[2]:+.2f} µs)")
PY
