#!/usr/bin/env bash
# The cost of OpenTelemetry tracing: three edges in the same run — tracing off, on with
# sampling 0.01, on with sampling 1.0 — exporting over OTLP/gRPC to a real collector (rotel,
# discarding what it receives), with nginx `proxy_pass` as the reference. Measurements are
# interleaved, so a noisy neighbour hits every target alike.
# Usage: bench/tracing.sh [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${1:-8}; CONNS=${2:-32}; ROUNDS=${3:-3}
bench_setup tracing
rotel_dir=$(python3 -c 'import rotel,os;print(os.path.dirname(rotel.__file__))')
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$out/rotel.pid" ] && kill "$(cat "$out/rotel.pid")" 2>/dev/null; wait 2>/dev/null || true' EXIT
up=$(free_port); ngx=$(free_port); grpc=$(free_port); http=$(free_port)
start_upstream "$up"
"$rotel_dir/rotel-agent" start --daemon --pid-file "$PWD/$out/rotel.pid" --log-file "$PWD/$out/logs/rotel.log" \
  --otlp-grpc-endpoint "127.0.0.1:$grpc" --otlp-http-endpoint "127.0.0.1:$http" --exporter blackhole
declare -A port pid
for variant in off s001 s1; do
  port[$variant]=$(free_port)
  mkdir -p "$out/conf-$variant"
  {
    edge_base "$variant" "${port[$variant]}" "upstream_keepalive_pool_size = 128"
    case $variant in
      s001) printf '[tracing]\nendpoint = "http://127.0.0.1:%s"\nsampling = 0.01\n' "$grpc" ;;
      s1)   printf '[tracing]\nendpoint = "http://127.0.0.1:%s"\nsampling = 1.0\n' "$grpc" ;;
    esac
    edge_route movies / "127.0.0.1:$up"
  } >"$out/conf-$variant/edge.toml"
  "$EDGE" run --conf "$out/conf-$variant" >"$out/logs/$variant.log" 2>&1 & pids+=($!); pid[$variant]=$!
done
start_nginx_proxy "$ngx" "$up"
for v in off s001 s1; do wait_port "${port[$v]}"; done; wait_port "$ngx"; wait_port "$up"; sleep 0.5
ngx_workers=$(nginx_workers "$ngx_master")
for v in off s001 s1; do wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:${port[$v]}/" >/dev/null; done
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$ngx/" >/dev/null
printf '%-14s %10s %8s %8s %8s %8s\n' target req/s p99_ms cpu_us user_us sys_us | tee -a "$results"
for _ in $(seq "$ROUNDS"); do
  measure tracing-off "http://127.0.0.1:${port[off]}/" "${pid[off]}"
  measure sampling-0.01 "http://127.0.0.1:${port[s001]}/" "${pid[s001]}"
  measure sampling-1.0 "http://127.0.0.1:${port[s1]}/" "${pid[s1]}"
  measure nginx "http://127.0.0.1:$ngx/" "$ngx_workers"
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("target")]
med = lambda name: [st.median(float(r[i]) for r in rows if r[0] == name) for i in (1, 2, 3)]
off, s001, s1, n = med("tracing-off"), med("sampling-0.01"), med("sampling-1.0"), med("nginx")
for name, m in (("tracing-off", off), ("sampling-0.01", s001), ("sampling-1.0", s1), ("nginx", n)):
    print(f"median {name:14s} {m[0]:8.0f} req/s  p99 {m[1]:5.2f} ms  {m[2]:6.2f} µs CPU/req")
for name, m in (("sampling-0.01", s001), ("sampling-1.0", s1)):
    print(f"{name}/off: throughput {m[0]/off[0]:.3f}x, CPU/request {m[2]/off[2]:.2f}x (+{m[2]-off[2]:.1f} µs)")
print(f"tracing-off/nginx throughput {off[0]/n[0]:.2f}x")
PY
