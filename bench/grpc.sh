#!/usr/bin/env bash
# gRPC unary calls through the edge (h2c to the client and to an h2c upstream), against the
# same calls straight to the service and through nginx `grpc_pass`, in one run. The service is
# the demo's grpc.health.v1.Health/Check; the load generator is h2load (nghttp2-client), each
# connection with 10 concurrent streams. CPU per call counts the proxy's process only.
# Usage: bench/grpc.sh [CALLS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CALLS=${1:-200000}; CONNS=${2:-16}; ROUNDS=${3:-3}
if [ -z "${EDGE_BIN:-}" ]; then cargo build --release -q -p demo-movies; fi
bench_setup grpc
svc=$(free_port); edge_port=$(free_port); ngx=$(free_port)
DEMO_ADDR=127.0.0.1:$svc EDGE_READY_URL=http://127.0.0.1:9/ target/release/demo-movies >"$out/logs/demo.log" 2>&1 & pids+=($!); svc_pid=$!
mkdir -p "$out/conf"
{
  edge_base edge "$edge_port" "h2c = true"
  printf '[[route]]\nname = "grpc"\npath = "/grpc.health.v1.Health"\nupstream = "grpc"\nmax_body = "off"\n'
  printf '[upstream.grpc]\nservers = ["127.0.0.1:%s"]\nprotocol = "h2c"\n' "$svc"
} >"$out/conf/edge.toml"
"$EDGE" run --conf "$out/conf" >"$out/logs/edge.log" 2>&1 & pids+=($!); edge_pid=$!
cat >"$out/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $PWD/$out/nginx.pid; error_log $PWD/$out/logs/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; http2_max_requests 1000000;
  upstream grpc { server 127.0.0.1:$svc; keepalive 64; }
  server { listen 127.0.0.1:$ngx http2; location / { grpc_pass grpc://grpc; } } }
NGINX
nginx -p "$PWD/$out" -c "$PWD/$out/nginx.conf" & pids+=($!); ngx_master=$!
wait_port "$svc"; wait_port "$edge_port"; wait_port "$ngx"; sleep 0.5
ngx_workers=$(nginx_workers "$ngx_master")
# HealthCheckRequest {} : an empty message behind the 5-byte gRPC frame header
printf '\x00\x00\x00\x00\x00' >"$out/request.bin"
call() { h2load -n "$2" -c "$CONNS" -m 10 -d "$out/request.bin" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$1/grpc.health.v1.Health/Check"; }
# the call works through each, answered with grpc-status 0
for p in "$svc" "$edge_port" "$ngx"; do
  o=$(call "$p" 2000); grep -q "2000 succeeded, 0 failed" <<<"$o" || { echo "calls via $p failed:"; echo "$o"; exit 1; }
done
printf '%-8s %10s %10s %8s\n' target calls/s mean_ms cpu_us | tee -a "$results"
row() {
  local name=$1 port=$2 pids=$3 c0 c1 o rps mean
  c0=$(cpu_ticks $pids); o=$(call "$port" "$CALLS"); c1=$(cpu_ticks $pids)
  grep -q "$CALLS succeeded, 0 failed" <<<"$o" || { echo "WARNING: $name had failures" >&2; }
  rps=$(awk '/^finished in/{print $4}' <<<"$o")
  mean=$(awk '/^time for request:/{v=$6; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)}; print v}' <<<"$o")
  local cpu; cpu=$(python3 -c "
u0, s0, u1, s1, tck, n = map(float, '$c0 $c1 $(getconf CLK_TCK) $CALLS'.split())
print(f'{(u1 - u0 + s1 - s0) / tck * 1e6 / n:.2f}')")
  printf '%-8s %10s %10s %8s\n' "$name" "$rps" "$mean" "$cpu" | tee -a "$results"
}
for _ in $(seq "$ROUNDS"); do
  row direct "$svc" "$svc_pid"
  row edge "$edge_port" "$edge_pid"
  row nginx "$ngx" "$ngx_workers"
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("target")]
med = lambda name: [st.median(float(r[i]) for r in rows if r[0] == name) for i in (1, 2, 3)]
d, e, n = med("direct"), med("edge"), med("nginx")
for name, m in (("direct", d), ("edge", e), ("nginx", n)):
    print(f"median {name:7s} {m[0]:8.0f} calls/s  mean {m[1]:6.2f} ms  proxy {m[2]:6.2f} µs CPU/call")
print(f"edge/direct throughput {e[0]/d[0]:.2f}x, mean latency +{e[1]-d[1]:.2f} ms")
print(f"edge/nginx grpc_pass: throughput {e[0]/n[0]:.2f}x, proxy CPU/call {e[2]/n[2]:.2f}x")
PY
