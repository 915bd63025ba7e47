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
def tree(name):
    return subprocess.run(["callgrind_annotate", "--tree=calling", "--inclusive=yes", "--threshold=100",
                           f"{out}/{name}.cg"], capture_output=True, text=True).stdout
print(f"callgrind, {n} requests per path (+1 warm-up), instructions of canonical_path::apply:")
for name in ("clean", "dirty"):
    text = tree(name)
    # the caller's line: "<inclusive> (x%)  >   …:edge::proxy::canonical_path::apply (<calls>x)"
    m = re.search(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+>\s+\S*edge::proxy::canonical_path::apply \(([\d,]+)x\)", text, re.M)
    cost, calls = (int(g.replace(",", "")) for g in m.groups()) if m else (0, 1)
    # every block ("*" line) of a canonical_path function, and the calls it makes ("> " lines)
    allocs, inside = 0, False
    for line in text.splitlines():
        if "*  " in line:
            inside = "edge::proxy::canonical_path::" in line
        elif inside and ">  " in line and re.search(r"mi_malloc|__rust_alloc|\bmalloc", line):
            allocs += int(re.search(r"\(([\d,]+)x\)", line).group(1).replace(",", ""))
    print(f"  {name:6s} {cost / calls:7.0f} per request, {allocs / calls:.1f} allocations per request")
PY
