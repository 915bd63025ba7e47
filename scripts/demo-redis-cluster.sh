#!/usr/bin/env bash
# The `make run` demo against a local Redis Cluster: six redis-server processes (3 masters,
# 3 replicas) on 127.0.0.1:7000-7005 (DEMO_CLUSTER_BASE moves them), created with
# `redis-cli --cluster create`, and the edge with conf/ whose [redis] says mode = "cluster".
# Watch a failover while curl loops run:
#   redis-cli -p 7000 CLUSTER NODES                      # who serves which slots
#   redis-cli -c -p 7000 CLUSTER KEYSLOT rl:api-per-ip:ip:127.0.0.1/32
#   redis-cli -p <master port> DEBUG SEGFAULT              # or kill -9 its pid
#   curl -s http://127.0.0.1:8080/_edge/ready | jq .checks.redis.topology
# Ctrl-C stops the demo and the cluster. Needs `make run` to have built the binaries once
# (or runs the build itself).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
base=${DEMO_CLUSTER_BASE:-7000}
dir="$root/.run/cluster"
conf="$root/.run/conf-cluster"
./scripts/ensure-packages.sh cmake pkg-config libssl-dev redis-server redis-tools postgresql
cargo build --release -p edge -p demo-movies

stop_cluster() {
  for i in 0 1 2 3 4 5; do
    [ -f "$dir/$i/redis.pid" ] && kill "$(cat "$dir/$i/redis.pid")" 2>/dev/null || true
  done
}
trap stop_cluster EXIT
stop_cluster
rm -rf "$dir" && mkdir -p "$dir"
nodes=()
for i in 0 1 2 3 4 5; do
  port=$((base + i))
  mkdir -p "$dir/$i"
  # DEBUG SEGFAULT is how the README shows a crash: allow DEBUG from loopback
  redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
    --cluster-require-full-coverage no --enable-debug-command local \
    --save '' --appendonly no --dir "$dir/$i" --daemonize yes \
    --pidfile "$dir/$i/redis.pid" --logfile "$dir/$i/redis.log"
  nodes+=("127.0.0.1:$port")
done
for _ in $(seq 50); do redis-cli -p $((base + 5)) PING >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log"
for _ in $(seq 100); do
  redis-cli -p "$base" CLUSTER INFO | grep -q cluster_state:ok && break; sleep 0.1
done
echo "redis cluster up on ${nodes[*]}"

# the demo's conf with the cluster as its Redis
rm -rf "$conf" && cp -r conf "$conf"
seeds=$(printf '"redis://127.0.0.1:%s", ' "$base" $((base + 1)) $((base + 2)))
python3 - "$conf/limits.toml" "[${seeds%, }]" <<'PY'
import re, sys
path, seeds = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r'\[redis\]\n(?:[^\[\n][^\n]*\n)*',
              f'[redis]\nmode = "cluster"\nurls = {seeds}\ntimeout = "10ms"\n\n', text, count=1)
open(path, "w").write(text)
PY
grep -A3 '^\[redis\]' "$conf/limits.toml"
"$root/target/release/edge" check --conf "$conf"
cat <<MSG

  Try, in another terminal, while the edge runs:
    while true; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:8080/api/v1/movies; sleep 0.05; done
    redis-cli -p $base CLUSTER NODES | grep master
    redis-cli -p <a master's port> DEBUG SEGFAULT
    curl -s http://127.0.0.1:8080/_edge/ready | python3 -m json.tool | grep -A12 topology
    curl -s http://127.0.0.1:8080/_edge/metrics | grep edge_redis_
  The loop keeps answering (200/429, never 5xx); the logs show the failover once.

MSG
DEMO_CONF="$conf" DEMO_START_REDIS=no ./scripts/run-demo.sh
