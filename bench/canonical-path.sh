#!/usr/bin/env bash
# What canonical paths cost the edge, counted in instructions (valgrind callgrind: repeatable
# whatever else the machine does): the edge under callgrind serves N requests on a clean path
# and N on a path it must rewrite (/./, //, an escaped letter), and the script prints the
# instructions spent inside canonical_path::apply per request, the whole process's per
# request for scale, and whether the clean path allocated. Converting to time: at the ~1-3
# instructions per ns this machine retires, 0.5 µs is 500-1500 instructions.
# Usage: bench/canonical-path.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-2000}
command -v valgrind >/dev/null || ./scripts/ensure-packages.sh valgrind
bench_setup canonical-path
up=$(free_port); edge=$(free_port)
start_upstream "$up"
mkdir -p "$out/conf"
{ edge_base edge "$edge" ""; edge_route bench / "127.0.0.1:$up"; } >"$out/conf/edge.toml"
wait_port "$up"

run() { # NAME PATH: callgrind output for N requests to PATH (plus the start and one warm-up)
  local name=$1 path=$2
  valgrind --tool=callgrind --callgrind-out-file="$out/$name.cg" "$EDGE" run --conf "$out/conf" \
    >"$out/logs/$name.log" 2>&1 & local vpid=$!
  for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/"$edge") 2>/dev/null && break; sleep 0.1; done
  curl -s -o /dev/null "http://127.0.0.1:$edge$path"
  ab -q -k -n "$N" -c 4 "http://127.0.0.1:$edge$path" >"$out/$name.ab" 2>&1 || true
  kill -INT "$vpid"; wait "$vpid" 2>/dev/null || true
}
command -v ab >/dev/null || ./scripts/ensure-packages.sh apache2-utils
run clean /api/v1/movies
run dirty '/api/./v1//%6dovies'

python3 - "$out" "$N" <<'PY'
import re, subprocess, sys
out, n = sys.argv[1], int(sys.argv[2])
def inclusive(name, pattern):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", f"{out}/{name}.cg"],
                          capture_output=True, text=True).stdout
    total = int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text).group(1).replace(",", ""))
    hits = [int(m.group(1).replace(",", "")) for m in re.finditer(r"^\s*([\d,]+) \([\d.]+%\)\s+\S*" + pattern, text, re.M)]
    return total, max(hits, default=0)
def allocs_under(name, fn):
    text = subprocess.run(["callgrind_annotate", "--tree=calling", "--inclusive=yes", "--threshold=100", f"{out}/{name}.cg"],
                          capture_output=True, text=True).stdout
    # the block of fn lists what it calls, indented with "->"
    block = re.search(r"^\s*[\d,]+ \([\d.]+%\)\s+\*\s+\S*" + fn + r".*?(?=^\s*[\d,]+ \([\d.]+%\)\s+\*)", text, re.M | re.S)
    return bool(block and re.search(r"->.*(malloc|alloc::alloc)", block.group(0)))
print(f"callgrind, {n} requests per path (+1 warm-up), instructions:")
for name in ("clean", "dirty"):
    total, apply = inclusive(name, r"edge::canonical_path::apply")
    print(f"  {name:6s} canonical_path::apply {apply/(n+1):8.1f} per request   "
          f"whole process {total/(n+1):10.0f} per request (start included)   "
          f"allocates: {'yes' if allocs_under(name, 'edge::canonical_path::apply') else 'no'}")
PY
