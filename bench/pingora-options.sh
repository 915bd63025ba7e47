#!/usr/bin/env bash
# Pingora options the edge does not set, tried on the framework floor (bench/floor) in one run,
# interleaved rounds, each against the floor with Pingora's defaults:
#  - listener_tasks_per_fd = 2 (two accept tasks per listening socket), with keep-alive
#    clients and with a new connection per request (where accepting is the work);
#  - an upstream keep-alive pool of 8 instead of 128 connections.
# Usage: bench/pingora-options.sh [ROUNDS] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${1:-3}; SECS=${2:-8}; CONNS=${3:-32}
EDGE_BIN=${EDGE_BIN:-none} bench_setup pingora-options
cargo build --release -q -p pingora-floor
FLOOR=target/release/pingora-floor
up=$(free_port); base=$(free_port); tasks=$(free_port); pool=$(free_port)
start_upstream "$up"
"$FLOOR" "127.0.0.1:$base" "127.0.0.1:$up" 128 4096 >"$out/logs/base.log" 2>&1 & pids+=($!); base_pid=$!
FLOOR_LISTENER_TASKS=2 "$FLOOR" "127.0.0.1:$tasks" "127.0.0.1:$up" 128 4096 >"$out/logs/tasks.log" 2>&1 & pids+=($!); tasks_pid=$!
"$FLOOR" "127.0.0.1:$pool" "127.0.0.1:$up" 8 4096 >"$out/logs/pool.log" 2>&1 & pids+=($!); pool_pid=$!
for p in "$up" "$base" "$tasks" "$pool"; do wait_port "$p"; done
close=$(mktemp); echo 'wrk.headers["Connection"] = "close"' >"$close"
echo "== $ROUNDS interleaved rounds, wrk -t1 -c$CONNS -d${SECS}s; $(date -u +%FT%TZ)"
printf '%-14s %10s %8s %8s %8s %8s\n' target req/s p99_ms cpu_us user_us sys_us | tee -a "$results"
for _ in $(seq "$ROUNDS"); do
  measure default "http://127.0.0.1:$base/" "$base_pid"
  measure tasks2 "http://127.0.0.1:$tasks/" "$tasks_pid"
  measure pool8 "http://127.0.0.1:$pool/" "$pool_pid"
  WRK_SCRIPT=$close measure close-default "http://127.0.0.1:$base/" "$base_pid"
  WRK_SCRIPT=$close measure close-tasks2 "http://127.0.0.1:$tasks/" "$tasks_pid"
done
rm -f "$close"
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("target")]
med = lambda name: [st.median(float(r[i]) for r in rows if r[0] == name) for i in (1, 2, 3)]
m = {n: med(n) for n in ("default", "tasks2", "pool8", "close-default", "close-tasks2")}
for n, v in m.items():
    print(f"median {n:14s} {v[0]:8.0f} req/s  p99 {v[1]:5.2f} ms  {v[2]:6.2f} µs CPU/req")
r = lambda a, b: f"throughput {m[a][0]/m[b][0]:.2f}x, CPU/request {m[a][2]/m[b][2]:.2f}x"
print(f"listener_tasks_per_fd 2 vs 1, keep-alive: {r('tasks2', 'default')}")
print(f"listener_tasks_per_fd 2 vs 1, a connection per request: {r('close-tasks2', 'close-default')}")
print(f"upstream pool 8 vs 128: {r('pool8', 'default')}")
PY
