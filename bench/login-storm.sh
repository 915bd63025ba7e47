#!/usr/bin/env bash
# Login under load, with the shipped argon2id parameters (m=19456 KiB, t=2, p=1):
#  1. login throughput through the edge (wrk POSTing /auth/login);
#  2. the p99 of a non-auth route (/api, a static upstream) probed at a fixed rate, without
#     and with the login storm, through the edge and through nginx in front of the same
#     upstream (same machine, same run): the ratio storm/quiet is the degradation;
#  3. enumeration timing: login latency for a wrong password vs an unknown email;
#  4. logins/s with an empty mail outbox vs while the sender delivers 1,000 queued mails to a
#     real SMTP relay (scripts/smtp_sink.py) on the same machine, alternating, same run.
# Usage: bench/login-storm.sh [SECONDS] [STORM_CONNECTIONS] [PROBE_RATE] [MAX_CONCURRENT_HASHES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${1:-10}; STORM=${2:-8}; RATE=${3:-200}; HASHES=${4:-1}; ROUNDS=${5:-2}
bench_setup login-storm
start_auth_stack
ngx_port=$(free_port)
smtp_port=$(free_port)
python3 scripts/smtp_sink.py --port "$smtp_port" --dir "$out/mail" >"$out/logs/smtp.log" 2>&1 & pids+=($!)
mkdir -p "$out/conf"
{
  edge_base edge "$edge_port"
  auth_conf "$rport" "$pgport" "$auth_port"
  cat <<TOML
# the shipped argon2id parameters; hashes at once bounded by MAX_CONCURRENT_HASHES
password = { memory_kib = 19456, iterations = 2, parallelism = 1, max_concurrent = $HASHES }
# the storm must measure hashing, not the throttle
throttle = { per_account = 100000000, per_ip = 100000000, window = "1m" }
TOML
  edge_route auth /auth "127.0.0.1:$auth_port"
  edge_route api /api "127.0.0.1:$up"
  cat <<TOML
[mail]
from = "Cinema <no-reply@cinema.test>"
smtp = "127.0.0.1:$smtp_port"
security = "none"
confirm_url = "http://127.0.0.1/confirm?token={token}"
reset_url = "http://127.0.0.1/reset?token={token}"
TOML
} >"$out/conf/edge.toml"
cat >"$out/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $PWD/$out/nginx.pid; error_log $PWD/$out/logs/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  upstream backend { server 127.0.0.1:$up; keepalive 128; }
  server { listen 127.0.0.1:$ngx_port;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
"$EDGE" migrate --conf "$out/conf" >/dev/null
echo "storm password" | "$EDGE" user create --conf "$out/conf" --email storm@example.com --password-stdin >/dev/null
"$EDGE" run --conf "$out/conf" >"$out/logs/edge.log" 2>&1 & pids+=($!)
nginx -p "$PWD/$out" -c "$PWD/$out/nginx.conf" & pids+=($!)
wait_port "$edge_port"; wait_port "$ngx_port"; wait_port "$up"; sleep 0.5

cat >"$out/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"email":"storm@example.com","password":"storm password"}'
wrk.headers["Content-Type"] = "application/json"
LUA
storm() { wrk -t1 -c"$STORM" -d"$1s" -s "$out/login.lua" "http://127.0.0.1:$edge_port/auth/login" >"$out/storm.txt"; }
probe() { python3 bench/probe.py "$1" "$RATE" "$SECS"; }

curl -fsS -o /dev/null -X POST "http://127.0.0.1:$edge_port/auth/login" -H 'content-type: application/json' \
  -d '{"email":"storm@example.com","password":"storm password"}'
echo "== p99 of /api probed at $RATE req/s for ${SECS}s, quiet and during a login storm (wrk -c$STORM on /auth/login)"
printf '%-22s %8s %8s %8s %6s\n' case samples p50_ms p99_ms errors | tee "$results"
for round in $(seq "$ROUNDS"); do
  for target in edge nginx; do
    [ $target = edge ] && url="http://127.0.0.1:$edge_port/api/x" || url="http://127.0.0.1:$ngx_port/api/x"
    printf '%-22s %8s %8s %8s %6s\n' "$target-quiet" $(probe "$url") | tee -a "$results"
    storm $((SECS + 2)) & spid=$!; sleep 1
    printf '%-22s %8s %8s %8s %6s\n' "$target-storm" $(probe "$url") | tee -a "$results"
    wait $spid
    if [ $round = 1 ] && [ $target = edge ]; then
      logins=$(awk '/Requests\/sec/{print $2}' "$out/storm.txt"); non=$(awk '/Non-2xx/{print $5}' "$out/storm.txt")
      echo "login throughput: $logins logins/s (non-2xx: ${non:-0})" | tee "$out/logins.txt"
    fi
  done
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("case")]
m = lambda name, i: st.median(float(r[i]) for r in rows if r[0] == name)
for t in ("edge", "nginx"):
    q, s = m(f"{t}-quiet", 3), m(f"{t}-storm", 3)
    print(f"{t:6s} p99 quiet {q:.3f} ms, during the storm {s:.3f} ms: {s / q:.2f}x")
PY
cat "$out/logins.txt"

echo "== enumeration timing: 40 sequential logins each"
python3 - "$edge_port" <<'PY'
import http.client, json, sys, time, statistics as st
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
def login(email, password):
    t0 = time.perf_counter()
    conn.request("POST", "/auth/login", json.dumps({"email": email, "password": password}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse(); body = r.read()
    return (time.perf_counter() - t0) * 1000, r.status
wrong = [login("storm@example.com", "not the password")[0] for _ in range(40)]
unknown = [login(f"nobody{i}@example.com", "not the password")[0] for i in range(40)]
print(f"wrong password p50 {st.median(wrong):.1f} ms, unknown email p50 {st.median(unknown):.1f} ms: ratio {st.median(unknown)/st.median(wrong):.2f}")
PY

echo "== logins/s with an empty outbox vs while 1,000 queued mails are sent (wrk -c$STORM, ${SECS}s each)"
sql() { psql -h 127.0.0.1 -p "$pgport" -U postgres -d edge -tAqc "$1"; }
queue_mails() {
  sql "INSERT INTO mail_outbox (id, created_at, template, lang, recipient, subject, body_text, body_html, next_attempt_at)
       SELECT gen_random_uuid(), now(), 'confirm_email', 'en', 'bench' || g || '@example.com', 'Confirm your email',
              'Confirm: http://127.0.0.1/confirm?token=' || md5(g::text), '<p>Confirm</p>', now()
       FROM generate_series(1, 1000) g"
}
printf '%-10s %10s %12s\n' case logins/s mails_sent | tee "$out/mail.txt"
for round in $(seq "$ROUNDS"); do
  for case in empty queued; do
    sql "DELETE FROM mail_outbox"
    [ $case = queued ] && queue_mails
    before=$(sql "SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL")
    storm "$SECS"
    sent=$(( $(sql "SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL") - before ))
    printf '%-10s %10s %12s\n' "$case" "$(awk '/Requests\/sec/{print $2}' "$out/storm.txt")" "$sent" | tee -a "$out/mail.txt"
  done
done
python3 - "$out/mail.txt" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("case")]
m = lambda name: st.median(float(r[1]) for r in rows if r[0] == name)
sent = [int(r[2]) for r in rows if r[0] == "queued"]
print(f"logins/s: empty outbox {m('empty'):.1f}, 1,000 mails being sent {m('queued'):.1f}: "
      f"{m('queued') / m('empty'):.3f}x (mails sent during a window: {sent})")
PY
