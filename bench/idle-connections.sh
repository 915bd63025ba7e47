#!/usr/bin/env bash
# Memory per idle client connection: N keep-alive connections, each after one request (a TV
# between two actions), held open against nginx, a bare Pingora proxy (the framework floor)
# and the edge, one after the other on the same machine in one run. Prints each server's RSS
# before, with the connections open, 2 s after they closed, and after one more second of light
# traffic (mimalloc purges freed pages when their thread allocates again), and KB per idle
# connection.
# With EDGE_BASELINE=/path/to/older/edge it measures that binary too, in the same run.
# Usage: [EDGE_BASELINE=…] bench/idle-connections.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-5000}
ulimit -n $((N * 2 + 1024))
bench_setup idle
[ -x target/release/pingora-floor ] || cargo build --release -q -p pingora-floor
up=$(free_port); ngx=$(free_port); floor=$(free_port); edge=$(free_port)
start_upstream "$up"
cat >"$out/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $PWD/$out/nginx.pid; error_log $PWD/$out/logs/nginx.err warn;
worker_rlimit_nofile $((N * 2 + 1024));
events { worker_connections $((N * 2 + 1024)); }
http { access_log off; keepalive_timeout 300s;
  upstream backend { server 127.0.0.1:$up; keepalive 128; }
  server { listen 127.0.0.1:$ngx backlog=4096;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
mkdir -p "$out/conf"
{ edge_base edge "$edge" 'keepalive_timeout = "300s"
max_connections_per_client = 0'; edge_route idle / "127.0.0.1:$up"; } >"$out/conf/edge.toml"
nginx -p "$PWD/$out" -c "$PWD/$out/nginx.conf" & pids+=($!); ngx_master=$!
target/release/pingora-floor "127.0.0.1:$floor" "127.0.0.1:$up" >"$out/logs/floor.log" 2>&1 & pids+=($!); floor_pid=$!
"$EDGE" run --conf "$out/conf" >"$out/logs/edge.log" 2>&1 & pids+=($!); edge_pid=$!
targets=()
if [ -n "${EDGE_BASELINE:-}" ]; then
  base=$(free_port); mkdir -p "$out/base"
  sed -e "s/127.0.0.1:$edge/127.0.0.1:$base/" -e "s/edge\.pid/base.pid/; s/edge\.sock/base.sock/" "$out/conf/edge.toml" >"$out/base/edge.toml"
  "$EDGE_BASELINE" run --conf "$out/base" >"$out/logs/baseline.log" 2>&1 & pids+=($!)
  wait_port "$base"; targets+=("baseline:$base:$!")
fi
wait_port "$up"; wait_port "$ngx"; wait_port "$floor"; wait_port "$edge"
sleep 0.5
ngx_worker=$(nginx_workers "$ngx_master" | awk '{print $1}')
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }

echo "$N idle keep-alive connections, one request each; $(date -u +%FT%TZ)"
printf '%-8s %10s %10s %10s %12s %10s\n' server before_kb open_kb closed_kb +traffic_kb kb_per_conn | tee "$results"
for target in "nginx:$ngx:$ngx_worker" "floor:$floor:$floor_pid" "edge:$edge:$edge_pid" ${targets[@]+"${targets[@]}"}; do
  IFS=: read -r name port pid <<<"$target"
  curl -s -o /dev/null "http://127.0.0.1:$port/warm"
  before=$(rss_kb "$pid")
  fifo="$out/$name.stdin"; rm -f "$fifo"; mkfifo "$fifo"
  python3 bench/idle_clients.py "$N" "$port" <"$fifo" >"$out/$name.clients" 2>&1 & cpid=$!
  exec 7>"$fifo"
  for _ in $(seq 600); do grep -q '^ready' "$out/$name.clients" 2>/dev/null && break; sleep 0.1; done
  grep -q '^ready' "$out/$name.clients" || { echo "clients failed for $name:"; cat "$out/$name.clients"; }
  sleep 1
  open=$(rss_kb "$pid")
  exec 7>&-; wait "$cpid" || true
  sleep 2
  after=$(rss_kb "$pid")
  wrk -t1 -c4 -d1s "http://127.0.0.1:$port/" >/dev/null; sleep 1
  traffic=$(rss_kb "$pid")
  per=$(python3 -c "print(f'{($open - $before) / $N:.1f}')")
  printf '%-8s %10s %10s %10s %12s %10s\n' "$name" "$before" "$open" "$after" "$traffic" "$per" | tee -a "$results"
done
