#!/usr/bin/env bash
# The cost of verifying tokens at the edge: throughput and CPU per request of an
# `auth = "required"` route against a public route of the same edge, interleaved in the same
# run, with nginx `proxy_pass` to the same upstream as the reference. Every request of the
# required route carries a real access token (EdDSA signature check + deny-list cache). A third
# route is the full policy: token required and a limit keyed by the verified user (Redis), the
# issue-18 target being ≤ 1.15x the public route's CPU per request. The edge-fresh row sends
# every request a token the edge has not seen (signed here with the core's key, each with its
# own `iat`): a signature check per request instead of a verified-token cache hit.
# Usage: bench/identity.sh [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${1:-8}; CONNS=${2:-32}; ROUNDS=${3:-3}
bench_setup identity
start_auth_stack
ngx=$(free_port)
mkdir -p "$out/conf"
{
  edge_base edge "$edge_port" "upstream_keepalive_pool_size = 128"
  auth_conf "$rport" "$pgport" "$auth_port"
  edge_route auth /auth "127.0.0.1:$auth_port"
  edge_route public /public "127.0.0.1:$up"
  edge_route required /required "127.0.0.1:$up" 'auth = "required"'
  printf '[limit.per-user]\nkey = "user"\nrate = "1000000/s"\nburst = 1000000\n'
  printf '[[route]]\nname = "full"\npath = "/full"\nupstream = "required"\nauth = "required"\nlimits = ["per-user"]\n'
} >"$out/conf/edge.toml"
"$EDGE" migrate --conf "$out/conf" >/dev/null
"$EDGE" run --conf "$out/conf" >"$out/logs/edge.log" 2>&1 & pids+=($!); edge_pid=$!
start_nginx_proxy "$ngx" "$up"
wait_port "$edge_port"; wait_port "$ngx"; wait_port "$up"; sleep 0.5
token=$(bench_user_token "$edge_port")
cat >"$out/token.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
ngx_workers=$(nginx_workers "$ngx_master")
# the token goes with every request (the public route ignores it)
WRK_SCRIPT="$out/token.lua"
# tokens never seen: the login's token re-signed with the core's key, `iat` one second apart
python3 - "$token" "$out/keys" "$out/fresh.txt" 400000 <<'PY'
import base64, glob, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
token, keys, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head, body, _ = token.split(".")
claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
# PKCS#8 v2 (the public key included), which `cryptography` does not read: the seed is the
# 32 bytes after the OCTET STRING headers, at a fixed offset for Ed25519
pem = open(sorted(glob.glob(keys + "/*.ed25519.pem"))[-1]).read().split("-----")[2]
key = Ed25519PrivateKey.from_private_bytes(base64.b64decode("".join(pem.split()))[16:48])
with open(path, "w") as f:
    for i in range(1, n + 1):
        claims["iat"] -= 1
        signed = head + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
        f.write(signed + "." + b64(key.sign(signed.encode())) + "\n")
PY
# each wrk run continues where the previous stopped (the offset file), so no token repeats
echo 1 >"$out/fresh.offset"  # the first was used by the check below
cat >"$out/fresh.lua" <<LUA
local tokens, i = {}, 0
for line in io.lines("$out/fresh.txt") do tokens[#tokens + 1] = line end
local f = io.open("$out/fresh.offset"); i = tonumber(f:read("*l")); f:close()
request = function()
  i = i + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
done = function(summary)
  local f = io.open("$out/fresh.offset"); local start = tonumber(f:read("*l")); f:close()
  -- requests still in flight at the end were sent too: skip a margin
  f = io.open("$out/fresh.offset", "w"); f:write(start + summary.requests + 4 * $CONNS); f:close()
end
LUA
fresh=$(head -1 "$out/fresh.txt")
curl -fsS -o /dev/null -H "Authorization: Bearer $fresh" "http://127.0.0.1:$edge_port/required" || { echo "re-signed token refused"; exit 1; }
for port_path in "$edge_port/public" "$edge_port/required" "$edge_port/full" "$ngx/public"; do
  wrk -t1 -c"$CONNS" -d2s -s "$out/token.lua" "http://127.0.0.1:$port_path" >/dev/null
done
curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$edge_port/required" || { echo "token refused"; exit 1; }
printf '%-14s %10s %8s %8s %8s %8s\n' target req/s p99_ms cpu_us user_us sys_us | tee -a "$results"
for _ in $(seq "$ROUNDS"); do
  measure edge-public "http://127.0.0.1:$edge_port/public" "$edge_pid"
  measure edge-required "http://127.0.0.1:$edge_port/required" "$edge_pid"
  WRK_SCRIPT="$out/fresh.lua" measure edge-fresh "http://127.0.0.1:$edge_port/required" "$edge_pid"
  measure edge-full "http://127.0.0.1:$edge_port/full" "$edge_pid $redis_pid"
  measure nginx "http://127.0.0.1:$ngx/public" "$ngx_workers"
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("target")]
med = lambda name: [st.median(float(r[i]) for r in rows if r[0] == name) for i in (1, 2, 3)]
p, r, n, f = med("edge-public"), med("edge-required"), med("nginx"), med("edge-full")
fr = med("edge-fresh")
for name, m in (("edge-public", p), ("edge-required", r), ("edge-fresh", fr), ("edge-full", f), ("nginx", n)):
    print(f"median {name:14s} {m[0]:8.0f} req/s  p99 {m[1]:5.2f} ms  {m[2]:6.2f} µs CPU/req")
print(f"required/public: throughput {r[0]/p[0]:.3f}x, CPU/request {r[2]/p[2]:.2f}x (+{r[2]-p[2]:.1f} µs)")
print(f"fresh tokens (a signature check per request)/public: throughput {fr[0]/p[0]:.3f}x, CPU/request {fr[2]/p[2]:.2f}x (+{fr[2]-p[2]:.1f} µs)")
print(f"full policy (token + user limit, edge + redis CPU)/public: CPU/request {f[2]/p[2]:.2f}x (+{f[2]-p[2]:.1f} µs)")
print(f"edge-public/nginx throughput {p[0]/n[0]:.2f}x")
PY
