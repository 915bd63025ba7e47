#!/usr/bin/env bash
# The demo behind `make run`: Redis, PostgreSQL, the demo movies service on 127.0.0.1:8081 and
# the edge on 127.0.0.1:8080 with conf/. State lives in .run/ (git-ignored). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
run="$root/.run"
mkdir -p "$run"
REDIS_PORT=${DEMO_REDIS_PORT:-6380}
# scripts/demo-redis-cluster.sh runs this demo with its own conf dir and Redis Cluster
CONF=${DEMO_CONF:-conf}
START_REDIS=${DEMO_START_REDIS:-yes}
PG_PORT=${DEMO_PG_PORT:-5433}
bin="$root/target/release"
pids=()
# signs bot-filter answers and passes; production sets its own, the same on every replica
export EDGE_BOT_FILTER_SECRET=${EDGE_BOT_FILTER_SECRET:-demo-bot-filter-secret-not-for-production}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi
}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping the demo..."
  # TERM, not INT: background jobs of a non-interactive shell ignore SIGINT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  [ -f "$run/redis.pid" ] && kill "$(cat "$run/redis.pid")" 2>/dev/null || true
  [ -d "$run/pg/data" ] && as_postgres "$pg_bin/pg_ctl -D $run/pg/data -m fast -w stop" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if [ "$START_REDIS" = yes ]; then
echo "starting redis on 127.0.0.1:$REDIS_PORT"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
  --dir "$run" --pidfile "$run/redis.pid" --logfile "$run/redis.log"
fi

echo "starting postgresql on 127.0.0.1:$PG_PORT"
mkdir -p "$run/pg"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$run/pg" && chmod o+x "$root" "$run"
if [ ! -f "$run/pg/data/PG_VERSION" ]; then
  as_postgres "$pg_bin/initdb -D $run/pg/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >"$run/initdb.log" 2>&1
fi
as_postgres "$pg_bin/pg_ctl -D $run/pg/data -l $run/pg/pg.log -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k $run/pg' -w start" >/dev/null

as_postgres "psql -h 127.0.0.1 -p $PG_PORT -U postgres -tAc \"SELECT 1 FROM pg_database WHERE datname='edge'\"" | grep -q 1 \
  || as_postgres "createdb -h 127.0.0.1 -p $PG_PORT -U postgres edge"

# the auth core: schema (and, with generate_keys, the first signing key) and two demo
# accounts, kept across runs
"$bin/edge" migrate --conf "$CONF" >/dev/null
ADMIN_EMAIL=admin@cinema.example ADMIN_PASSWORD=demo-admin-2026
VIEWER_EMAIL=viewer@cinema.example VIEWER_PASSWORD=demo-viewer-2026
echo "$ADMIN_PASSWORD" | "$bin/edge" user create --conf "$CONF" --email "$ADMIN_EMAIL" \
  --password-stdin --role admin --role subscriber --if-missing >/dev/null
echo "$VIEWER_PASSWORD" | "$bin/edge" user create --conf "$CONF" --email "$VIEWER_EMAIL" \
  --password-stdin --role subscriber --if-missing >/dev/null

# the auth core's mail (conf/mail.toml) goes to a local SMTP sink that keeps every mail under
# .run/mail/ (.eml as received, .json with the text and HTML parts)
SMTP_PORT=${DEMO_SMTP_PORT:-2525}
mkdir -p "$run/mail"
python3 "$root/scripts/smtp_sink.py" --port "$SMTP_PORT" --dir "$run/mail" >"$run/smtp.log" 2>&1 & pids+=($!)

"$bin/demo-movies" & pids+=($!)
"$bin/edge" run --conf "$CONF" & pids+=($!)

for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:8080/api/v1/movies 2>/dev/null && break; sleep 0.1; done
cat <<MSG

  The edge is up on http://127.0.0.1:8080 (demo movies service behind it on 127.0.0.1:8081)

    curl -i http://127.0.0.1:8080/api/v1/movies
    curl -s http://127.0.0.1:8080/api/v1/whoami -H 'x-request-id: demo-1'
    curl -i http://127.0.0.1:8080/nowhere                  # JSON 404 with the request id

  Auth core (contract: http://127.0.0.1:8080/auth/openapi.json)
    admin:      $ADMIN_EMAIL / $ADMIN_PASSWORD   (roles admin, subscriber)
    subscriber: $VIEWER_EMAIL / $VIEWER_PASSWORD  (role subscriber)

    curl -s http://127.0.0.1:8080/auth/login -H 'content-type: application/json' \\
         -d '{"email":"$VIEWER_EMAIL","password":"$VIEWER_PASSWORD"}'
    curl -s http://127.0.0.1:8080/auth/me -H "authorization: Bearer <access_token>"
    curl -s http://127.0.0.1:8080/api/v1/movies/premium -H "authorization: Bearer <access_token>"
    curl -s http://127.0.0.1:8080/api/v1/whoami -H "authorization: Bearer <access_token>"
    curl -s http://127.0.0.1:8080/auth/.well-known/jwks.json

  Health: what the edge depends on, and the demo service's view of it
    curl -s http://127.0.0.1:8080/_edge/ready
    curl -s http://127.0.0.1:8080/api/v1/status

  Sign-in on a TV without a keyboard (RFC 8628, docs/tv-sign-in.md): curl is the TV, a browser the phone
    curl -s http://127.0.0.1:8080/auth/device/code -d client_id=cinema-tv     # note user_code, device_code
    open http://127.0.0.1:8080/activate?user_code=<user_code> in a browser, sign in as
         $VIEWER_EMAIL / $VIEWER_PASSWORD, approve
    curl -s http://127.0.0.1:8080/auth/device/token -d client_id=cinema-tv \\
         -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d device_code=<device_code>
    (authorization_pending until you approve, then the token pair; poll every 5 s or get slow_down)
    http://127.0.0.1:8080/auth/device?client_id=cinema-tv    the TV browser's page (code + QR)
    curl -s 'http://127.0.0.1:8080/auth/device/qr?code=<user_code>' > qr.svg

  Smart TV bot filter (conf/bot-filter.toml): a TV above 20 API calls in 10 s gets a question
    for i in \$(seq 25); do curl -s -o /dev/null -w '%{http_code} ' -A 'Mozilla/5.0 (SMART-TV; Tizen 6.0)' \\
         -H 'accept: application/json' http://127.0.0.1:8080/api/v1/movies; done; echo
    curl -s -A 'Mozilla/5.0 (SMART-TV; Tizen 6.0)' -H 'accept: application/json' http://127.0.0.1:8080/api/v1/movies
    curl -s -A 'Mozilla/5.0 (SMART-TV; Tizen 6.0)' -H 'accept: application/json' \\
         http://127.0.0.1:8080/_edge/challenge/<challenge_id> -d '{"answer":"<sum>"}'   # wait 1.5 s first
    Open http://127.0.0.1:8080/api/v1/movies in a browser with a TV User-Agent for the page.

  Account by mail (conf/mail.toml; mails land in .run/mail/, docs/account-lifecycle.md)
    curl -s http://127.0.0.1:8080/auth/register -H 'content-type: application/json' \\
         -H 'accept-language: ru' -d '{"email":"new@cinema.example","password":"a long demo passphrase"}'
    ls -t .run/mail/*.json | head -1 | xargs cat             # the confirmation mail (Russian)
    token=\$(ls -t .run/mail/*.json | head -1 | xargs grep -o 'token=[A-Za-z0-9_-]*' | head -1 | cut -d= -f2)
    curl -s http://127.0.0.1:8080/auth/email/confirm -H 'content-type: application/json' -d "{\"token\":\"\$token\"}"
    curl -s http://127.0.0.1:8080/auth/password/forgot -H 'content-type: application/json' \\
         -d '{"email":"new@cinema.example"}'                 # 202, for any address
    token=\$(ls -t .run/mail/*.json | head -1 | xargs grep -o 'token=[A-Za-z0-9_-]*' | head -1 | cut -d= -f2)
    curl -s http://127.0.0.1:8080/auth/password/reset -H 'content-type: application/json' \\
         -d "{\"token\":\"\$token\",\"new_password\":\"another demo passphrase\"}"   # ends every session
    curl -s http://127.0.0.1:8080/auth/sessions -H "authorization: Bearer <access_token>"

  The site outlives its auth database:
    scripts/demo-db.sh stop     # login: 503 at once; premium with the token above: still 200
    scripts/demo-db.sh start    # sign-in back within a second

  Edit conf/*.toml and save: the edge reloads (or refuses and keeps serving).
  Redis 127.0.0.1:$REDIS_PORT, PostgreSQL 127.0.0.1:$PG_PORT (data in .run/).  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
