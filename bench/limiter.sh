#!/usr/bin/env bash
# The limiter's cost and accuracy, against nginx limit_req, same machine, same run.
#  1. throughput: edge without limits, edge with the Redis limiter as configured by default
#     (adaptive leases; a limit high enough to allow everything), the same with `lease = "off"`
#     (one EVALSHA per request), each also with redis-server's own CPU counted (edge+redis,
#     off+redis), nginx with limit_req (likewise);
#  2. Redis commands per request while an abusive client is being refused;
#  3. admitted requests with three instances of each sharing the load, 100 r/s, burst 50, 10 s
#     (nginx: per instance, so 3x; the edge: shared through Redis);
#  and the same limiter on a 6-node Redis Cluster and on Sentinel (master, replica, three
#  sentinels) in the same run: rows edge-cluster/edge-sentinel (default leases) and
#  cluster-off/sentinel-off (one call per request), CPU of the edge process only, and Redis
#  calls per request under attack on each.
# Usage: bench/limiter.sh [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${1:-8}; CONNS=${2:-32}; ROUNDS=${3:-3}
bench_setup limiter
up=$(free_port); rport=$(free_port)
start_redis "$rport"
start_upstream "$up"
start_redis_cluster
start_redis_sentinel

# nginx with limit_req in front of the same upstream; RATE and BURST substituted per use
nginx_conf() { # name port rate burst
  cat >"$out/$1.conf" <<NGINX
worker_processes 1; daemon off; pid $PWD/$out/$1.pid; error_log $PWD/$out/logs/$1.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  limit_req_zone \$binary_remote_addr zone=all:10m rate=$3r/s;  # every client is 127.0.0.1: one key
  upstream backend { server 127.0.0.1:$up; keepalive 128; }
  server { listen 127.0.0.1:$2;
    location / { limit_req zone=all burst=$4 nodelay; limit_req_status 429;
                 proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
}
# an edge conf dir; LIMIT empty means no limits on the route
# REDIS_SECTION overrides the standalone [redis] body (cluster and sentinel rows)
edge_conf() { # name port limit-body
  mkdir -p "$out/$1"
  {
    edge_base "$1" "$2"
    if [ -n "${REDIS_SECTION:-}" ]; then
      printf '[redis]\n%s\ntimeout = "20ms"\n' "$REDIS_SECTION"
    else
      printf '[redis]\nurl = "redis://127.0.0.1:%s/"\ntimeout = "20ms"\n' "$rport"
    fi
    printf '[rate_limit]\nreplicas = 3\nheaders_on_success = true\n'
    if [ -n "$3" ]; then
      edge_route backend / "127.0.0.1:$up" 'limits = ["l"]'
      printf '[limit.l]\n%s\n' "$3"
    else
      edge_route backend / "127.0.0.1:$up"
    fi
  } >"$out/$1/edge.toml"
}
start_edge() { "$EDGE" run --conf "$out/$1" >"$out/logs/$1.log" 2>&1 & pids+=($!); }
redis_calls() { # [ports...] (default: the standalone server)
  local p total=0 n
  for p in "${@:-$rport}"; do
    n=$(redis-cli -p "$p" INFO commandstats | awk -F'[=,:]' '/^cmdstat_eval(sha)?:/{s+=$3} END{print s+0}')
    total=$((total + n))
  done
  echo "$total"
}
cluster_section="mode = \"cluster\"
urls = [\"redis://127.0.0.1:${cluster_ports[0]}\", \"redis://127.0.0.1:${cluster_ports[1]}\"]"
sentinel_section="mode = \"sentinel\"
master_name = \"bench\"
urls = [\"redis://127.0.0.1:${sentinel_ports[0]}\", \"redis://127.0.0.1:${sentinel_ports[1]}\", \"redis://127.0.0.1:${sentinel_ports[2]}\"]"

wait_port "$rport"; wait_port "$up"
echo "== 1. throughput (wrk -t1 -c$CONNS -d${SECS}s, $ROUNDS interleaved rounds)"
p_plain=$(free_port); p_lim=$(free_port); p_off=$(free_port); p_ngx=$(free_port)
edge_conf plain "$p_plain" ""
edge_conf limited "$p_lim" 'key = "ip"
rate = "1000000/s"
burst = 1000000'
edge_conf off "$p_off" 'key = "ip"
rate = "1000000/s"
burst = 1000000
lease = "off"'
nginx_conf nginx-limited "$p_ngx" 1000000 1000000
p_cl=$(free_port); p_cloff=$(free_port); p_se=$(free_port); p_seoff=$(free_port)
high='key = "ip"
rate = "1000000/s"
burst = 1000000'
REDIS_SECTION=$cluster_section edge_conf cluster "$p_cl" "$high"
REDIS_SECTION=$cluster_section edge_conf cluster-off "$p_cloff" "$high
lease = \"off\""
REDIS_SECTION=$sentinel_section edge_conf sentinel "$p_se" "$high"
REDIS_SECTION=$sentinel_section edge_conf sentinel-off "$p_seoff" "$high
lease = \"off\""
start_edge cluster; cl_pid=$!; start_edge cluster-off; cloff_pid=$!
start_edge sentinel; se_pid=$!; start_edge sentinel-off; seoff_pid=$!
start_edge plain; plain_pid=$!; start_edge limited; lim_pid=$!; start_edge off; off_pid=$!
nginx -p "$PWD/$out" -c "$PWD/$out/nginx-limited.conf" & pids+=($!); ngx_master=$!
for port in $p_plain $p_lim $p_off $p_ngx $p_cl $p_cloff $p_se $p_seoff; do wait_port "$port"; done
# the topology clients connect in the background: wait until each edge reports Redis up
for port in $p_cl $p_cloff $p_se $p_seoff; do
  for _ in $(seq 100); do
    curl -s "http://127.0.0.1:$port/_edge/ready" | grep -q '"masters_reachable":true' && break; sleep 0.1
  done
done
sleep 0.5
ngx_workers=$(nginx_workers "$ngx_master")
for port in $p_plain $p_lim $p_off $p_ngx $p_cl $p_cloff $p_se $p_seoff; do wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/" >/dev/null; done
printf '%-14s %10s %8s %8s %8s %8s\n' target req/s p99_ms cpu_us user_us sys_us | tee -a "$results"
for _ in $(seq "$ROUNDS"); do
  measure edge-plain "http://127.0.0.1:$p_plain/" "$plain_pid"
  measure edge-redis "http://127.0.0.1:$p_lim/" "$lim_pid"
  # the Lua script runs in redis-server: counted, as nginx's limit_req is counted in full
  measure edge+redis "http://127.0.0.1:$p_lim/" "$lim_pid $redis_pid"
  measure edge-off "http://127.0.0.1:$p_off/" "$off_pid"
  measure off+redis "http://127.0.0.1:$p_off/" "$off_pid $redis_pid"
  measure nginx-limit "http://127.0.0.1:$p_ngx/" "$ngx_workers"
  measure edge-cluster "http://127.0.0.1:$p_cl/" "$cl_pid"
  measure cluster-off "http://127.0.0.1:$p_cloff/" "$cloff_pid"
  measure edge-sentinel "http://127.0.0.1:$p_se/" "$se_pid"
  measure sentinel-off "http://127.0.0.1:$p_seoff/" "$seoff_pid"
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("target")]
med = lambda name: [st.median(float(r[i]) for r in rows if r[0] == name) for i in (1, 2, 3)]
p, r, o, n = med("edge-plain"), med("edge-redis"), med("edge-off"), med("nginx-limit")
rr, orr = med("edge+redis"), med("off+redis")
for name, m in (("edge-plain", p), ("edge-redis", r), ("edge+redis", rr), ("edge-off", o),
                ("off+redis", orr), ("nginx-limit", n)):
    print(f"median {name:12s} {m[0]:8.0f} req/s  p99 {m[1]:5.2f} ms  {m[2]:6.2f} µs CPU/req")
print(f"limiter with Redis's CPU: edge+redis/nginx-limit CPU/request {rr[2]/n[2]:.2f}x, "
      f"off+redis/nginx-limit {orr[2]/n[2]:.2f}x")
print(f"limiter cost (default, adaptive leases): edge-redis/edge-plain throughput {r[0]/p[0]:.2f}x, "
      f"CPU/request {r[2]/p[2]:.2f}x; with Redis's CPU {rr[2]/p[2]:.2f}x")
print(f"one Redis call per request (lease = \"off\"): edge-off/edge-plain throughput {o[0]/p[0]:.2f}x, "
      f"CPU/request {o[2]/p[2]:.2f}x; with Redis's CPU {orr[2]/p[2]:.2f}x")
print(f"edge-redis/nginx-limit throughput {r[0]/n[0]:.2f}x")
c, co, se, so = med("edge-cluster"), med("cluster-off"), med("edge-sentinel"), med("sentinel-off")
for name, m in (("edge-cluster", c), ("cluster-off", co), ("edge-sentinel", se), ("sentinel-off", so)):
    print(f"median {name:12s} {m[0]:8.0f} req/s  p99 {m[1]:5.2f} ms  {m[2]:6.2f} µs CPU/req")
print(f"topologies vs standalone, edge CPU/request: cluster {c[2]/r[2]:.2f}x (leases), "
      f"{co[2]/o[2]:.2f}x (one call per request); sentinel {se[2]/r[2]:.2f}x, {so[2]/o[2]:.2f}x; "
      f"throughput cluster {c[0]/r[0]:.2f}x / {co[0]/o[0]:.2f}x, sentinel {se[0]/r[0]:.2f}x / {so[0]/o[0]:.2f}x")
PY
echo

echo "== 2. Redis calls per request while refusing an abusive client (100 r/s, burst 50)"
p_abuse=$(free_port)
edge_conf abuse "$p_abuse" 'key = "ip"
rate = "100/s"
burst = 50'
start_edge abuse; wait_port "$p_abuse"; sleep 0.3
c0=$(redis_calls)
reqs=$(wrk -t1 -c8 -d5s "http://127.0.0.1:$p_abuse/" | awk '/requests in/{print $1}')
c1=$(redis_calls)
python3 -c "print(f'standalone: {$reqs} requests, {$c1-$c0} EVALSHA: {($c1-$c0)/$reqs:.3f} Redis calls per request')"
for topo in cluster sentinel; do
  p=$(free_port)
  if [ "$topo" = cluster ]; then sec=$cluster_section; nodes=("${cluster_ports[@]}"); else sec=$sentinel_section; nodes=("$sentinel_master_port"); fi
  REDIS_SECTION=$sec edge_conf "abuse-$topo" "$p" 'key = "ip"
rate = "100/s"
burst = 50'
  start_edge "abuse-$topo"; wait_port "$p"
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$p/_edge/ready" | grep -q '"masters_reachable":true' && break; sleep 0.1; done
  c0=$(redis_calls "${nodes[@]}")
  reqs=$(wrk -t1 -c8 -d5s "http://127.0.0.1:$p/" | awk '/requests in/{print $1}')
  c1=$(redis_calls "${nodes[@]}")
  python3 -c "print(f'$topo: {$reqs} requests, {$c1-$c0} EVALSHA: {($c1-$c0)/$reqs:.3f} Redis calls per request')"
done
echo

echo "== 3. admitted in 10 s, three instances each, 100 r/s burst 50, load on all three"
count_admitted() { # ports...
  local pids_w=() f total=0
  for port in "$@"; do wrk -t1 -c4 -d10s "http://127.0.0.1:$port/" >"$out/wrk-$port.txt" & pids_w+=($!); done
  wait "${pids_w[@]}"
  for port in "$@"; do
    f="$out/wrk-$port.txt"
    local n non
    n=$(awk '/requests in/{print $1}' "$f"); non=$(awk '/Non-2xx/{print $5}' "$f"); non=${non:-0}
    total=$((total + n - non))
  done
  echo "$total"
}
redis-cli -p "$rport" FLUSHALL >/dev/null
ngx_ports=(); edge_ports=()
for i in 1 2 3; do
  p=$(free_port); nginx_conf "nginx-$i" "$p" 100 50; nginx -p "$PWD/$out" -c "$PWD/$out/nginx-$i.conf" & pids+=($!); ngx_ports+=("$p")
  p=$(free_port); edge_conf "edge-$i" "$p" 'key = "route"
rate = "100/s"
burst = 50'; start_edge "edge-$i"; edge_ports+=("$p")
done
for p in "${ngx_ports[@]}" "${edge_ports[@]}"; do wait_port "$p"; done; sleep 0.5
ngx_admitted=$(count_admitted "${ngx_ports[@]}")
edge_admitted=$(count_admitted "${edge_ports[@]}")
python3 -c "
conf = 100 * 10 + 50
print(f'configured {conf}: nginx x3 admitted {$ngx_admitted} ({$ngx_admitted/conf:.2f}x), edge x3 admitted {$edge_admitted} ({$edge_admitted/conf:.2f}x)')"
