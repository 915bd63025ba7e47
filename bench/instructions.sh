#!/usr/bin/env bash
# Instructions the edge spends per proxied request, counted by valgrind (callgrind): the same
# on a busy shared machine, so a change's effect on the request path shows even when it is a
# fraction of a microsecond that wrk cannot resolve. For each binary, each path is served N and
# 2N times under callgrind; (total(2N) - total(N)) / N is the per-request cost, start-up and
# background work cancelled out. With EDGE_BASELINE=/path/to/older/edge both binaries run in
# the same invocation and the script prints after/before ratios.
# Paths: /plain (a route with no filters) and /limited (one client-keyed rate limit, local
# buckets: no Redis) — the second walks the filter chain.
# Usage: [EDGE_BIN=…] [EDGE_BASELINE=…] bench/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-2000}
command -v valgrind >/dev/null || ./scripts/ensure-packages.sh valgrind
command -v ab >/dev/null || ./scripts/ensure-packages.sh apache2-utils
bench_setup instructions
up=$(free_port); edge=$(free_port)
start_upstream "$up"
mkdir -p "$out/conf"
{
  edge_base edge "$edge" ""
  edge_route plain /plain "127.0.0.1:$up"
  printf '[limit.per-ip]\nkey = "ip"\nrate = "1000000/s"\nburst = 1000000\n'
  printf '[[route]]\nname = "limited"\npath = "/limited"\nupstream = "plain"\nlimits = ["per-ip"]\n'
} >"$out/conf/edge.toml"
wait_port "$up"

total() { # BINARY PATH COUNT: callgrind's total instructions for COUNT requests (+1 warm-up)
  local bin=$1 path=$2 count=$3 cg="$out/run.cg"
  rm -f "$cg"
  valgrind --tool=callgrind --callgrind-out-file="$cg" "$bin" run --conf "$out/conf" \
    >"$out/logs/run.log" 2>&1 & local vpid=$!
  for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/"$edge") 2>/dev/null && break; sleep 0.1; done
  curl -s -o /dev/null "http://127.0.0.1:$edge$path"
  ab -q -k -n "$count" -c 4 "http://127.0.0.1:$edge$path" >"$out/run.ab" 2>&1 || true
  grep -q "Non-2xx" "$out/run.ab" && echo "WARNING: non-2xx answers on $path" >&2
  kill -INT "$vpid"; wait "$vpid" 2>/dev/null || true
  callgrind_annotate "$cg" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1; exit}'
}

per_request() { # BINARY PATH
  local one two
  one=$(total "$1" "$2" "$N"); two=$(total "$1" "$2" $((2 * N)))
  echo $(( (two - one) / N ))
}

bins=("edge:$EDGE")
[ -n "${EDGE_BASELINE:-}" ] && bins+=("baseline:$EDGE_BASELINE")
echo "callgrind, instructions per request (N=$N and 2N requests, ab -k -c 4); $(date -u +%FT%TZ)"
printf '%-10s %12s %12s\n' binary /plain /limited | tee "$results"
for b in "${bins[@]}"; do
  name=${b%%:*}; bin=${b#*:}
  printf '%-10s %12s %12s\n' "$name" "$(per_request "$bin" /plain)" "$(per_request "$bin" /limited)" | tee -a "$results"
done
if [ -n "${EDGE_BASELINE:-}" ]; then
  python3 - "$results" <<'PY'
import sys
rows = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(sys.argv[1]) if not l.startswith("binary")}
e, b = rows["edge"], rows["baseline"]
for i, path in enumerate(("/plain", "/limited")):
    print(f"{path}: edge/baseline {e[i]/b[i]:.3f}x ({e[i]-b[i]:+d} instructions per request)")
PY
fi
