#!/usr/bin/env bash
# Lookups at scale: loads USERS accounts (default 1,000,000) into the partitioned schema, then
# measures with pgbench, as prepared statements like the core runs them, the login lookup
# (email -> user id and password hash, `credentials`) and the profile by id (`users`), and the
# same lookups on an unpartitioned copy in the same run, as the reference.
# Usage: bench/users.sh [USERS] [SECONDS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
USERS=${1:-1000000}; SECS=${2:-15}; CLIENTS=${3:-4}
bench_setup users
trap 'stop_postgres; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
port=$(free_port)
start_postgres "$PWD/$out/pg" "$port"
psql_q() { psql -h 127.0.0.1 -p "$port" -U postgres -d edge -qAtX -v ON_ERROR_STOP=1 "$@"; }
# the schema exactly as the edge creates it
mkdir -p "$out/conf"
cat >"$out/conf/edge.toml" <<TOML
[[listener]]
address = "127.0.0.1:$(free_port)"
[auth]
database_url = "postgres://postgres@127.0.0.1:$port/edge"
issuer = "bench"
audience = "bench"
keys_dir = "$PWD/$out/keys"
generate_keys = true
TOML
"$EDGE" migrate --conf "$out/conf" >/dev/null

echo "== loading $USERS users"
t0=$(date +%s)
psql_q <<SQL
INSERT INTO users (id, email, country, created_at)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
       'user' || n || '@example.com',
       (ARRAY['RU','RU','RU','KZ','BY','AM','UZ','DE'])[1 + n % 8],
       now() - (n % 1000) * interval '1 day'
FROM generate_series(1, $USERS) AS n;
INSERT INTO credentials (email, user_id, password_hash)
SELECT email, id, '\$argon2id\$v=19\$m=19456,t=2,p=1\$c2FsdHNhbHRzYWx0\$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA'
FROM users;
INSERT INTO user_roles (user_id, role) SELECT id, 'subscriber' FROM users WHERE random() < 0.3;
-- the reference: one plain table holding profile and password, with a unique email index
CREATE TABLE users_flat AS SELECT u.*, c.password_hash FROM users u JOIN credentials c USING (email);
ALTER TABLE users_flat ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX users_flat_email ON users_flat (email);
VACUUM ANALYZE;
SQL
echo "loaded in $(( $(date +%s) - t0 )) s; partition sizes (rows):"
psql_q -c "SELECT min(n), max(n) FROM (SELECT count(*) n FROM users GROUP BY tableoid) t" | awk -F'|' '{print "  users partitions: min " $1 ", max " $2}'

# what a password login reads: the user id and the hash, by email
cat >"$out/partitioned.sql" <<SQL
\set n random(1, $USERS)
SELECT user_id, password_hash FROM credentials WHERE email = 'user' || :n::text || '@example.com';
SQL
cat >"$out/flat.sql" <<SQL
\set n random(1, $USERS)
SELECT id, password_hash FROM users_flat WHERE email = 'user' || :n::text || '@example.com';
SQL
# what every authenticated request of the core reads: the profile by id
cat >"$out/by-id.sql" <<SQL
\set n random(1, $USERS)
SELECT id, email, created_at FROM users WHERE id = ('00000000-0000-7000-8000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid;
SQL
cat >"$out/by-id-flat.sql" <<SQL
\set n random(1, $USERS)
SELECT id, email, created_at FROM users_flat WHERE id = ('00000000-0000-7000-8000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid;
SQL
abs=$PWD/$out
run() { # name script
  rm -f "$abs"/pgbench_log.*
  (cd "$abs" && pgbench -h 127.0.0.1 -p "$port" -U postgres -n -M prepared -c "$CLIENTS" -j 1 \
     -T "$SECS" -f "$2" --log --log-prefix=pgbench_log edge >"$abs/$1.txt" 2>&1)
  cat "$abs"/pgbench_log.* | python3 -c "
import sys
lat = sorted(int(l.split()[2]) for l in sys.stdin)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
tps = [l for l in open('$abs/$1.txt') if l.startswith('tps')][0].split()[2]
print(f'$1 {len(lat)} {tps} {q(0.5):.3f} {q(0.99):.3f}')" | tee -a "$results"
}
echo "== login lookup, pgbench -M prepared -c $CLIENTS -T $SECS (latency per login lookup)"
run login-partitioned "$abs/partitioned.sql" >/dev/null
run login-flat "$abs/flat.sql" >/dev/null
: >"$results"
for _ in 1 2 3; do
  run login-partitioned "$abs/partitioned.sql" >/dev/null; run login-flat "$abs/flat.sql" >/dev/null
  run by-id-partitioned "$abs/by-id.sql" >/dev/null; run by-id-flat "$abs/by-id-flat.sql" >/dev/null
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
m = lambda name, i: st.median(float(r[i]) for r in rows if r[0] == name)
for q in ("login", "by-id"):
    for kind in ("partitioned", "flat"):
        name = f"{q}-{kind}"
        print(f"{name:18s} {m(name, 2):8.0f} lookups/s  p50 {m(name, 3):.3f} ms  p99 {m(name, 4):.3f} ms")
    p, f = f"{q}-partitioned", f"{q}-flat"
    print(f"{q}: partitioned/flat p50 {m(p, 3) / m(f, 3):.2f}x, p99 {m(p, 4) / m(f, 4):.2f}x")
PY
