# Shared helpers for the bench scripts (sourced).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing listens on $1" >&2; return 1; }

# CPU ticks of the given pids: "user system".
cpu_ticks() { local u=0 s=0 p; for p in "$@"; do read -r pu ps < <(awk '{print $14, $15}' "/proc/$p/stat"); u=$((u + pu)); s=$((s + ps)); done; echo "$u $s"; }

# measure NAME URL "PIDS" (wrk runs $WRK_SCRIPT when set) -> prints "NAME rps p99_ms cpu_us_per_req user_us sys_us" and appends
# to $results
measure() {
  local name=$1 url=$2 pids=$3 c0 c1 out req rps p99
  c0=$(cpu_ticks $pids)
  out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "$url")
  c1=$(cpu_ticks $pids)
  req=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
  local cpu
  cpu=$(python3 -c "
u0, s0, u1, s1, tck, n = map(float, '$c0 $c1 $(getconf CLK_TCK) $req'.split())
per = lambda t: t / tck * 1e6 / n
print(f'{per(u1 - u0 + s1 - s0):.2f} {per(u1 - u0):.2f} {per(s1 - s0):.2f}')")
  if grep -q "Non-2xx" <<<"$out"; then echo "WARNING: $name had non-2xx responses" >&2; fi
  printf '%-10s %10s %8s %8s %8s %8s\n' "$name" "$rps" "$p99" $cpu | tee -a "$results"
}

# nginx worker pids of a master.
nginx_workers() { pgrep -P "$1" | tr '\n' ' '; }

# bench_setup NAME: a fresh release build (unless EDGE_BIN names another binary), a clean
# bench/out/NAME with logs/, $results, and $pids killed on exit. Sets EDGE, out, results, pids.
bench_setup() {
  # cargo is a no-op when the build is up to date
  if [ -z "${EDGE_BIN:-}" ]; then cargo build --release -q -p edge; fi
  EDGE=${EDGE_BIN:-target/release/edge}
  out=bench/out/$1; rm -rf "$out"; mkdir -p "$out/logs"
  results="$out/results.txt"; : >"$results"
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
}

# start_upstream PORT: the upstream behind every proxy, a static nginx answer (the cheapest
# server we can put there). Sets up_master.
start_upstream() {
  cat >"$out/upstream.conf" <<NGINX
worker_processes 1; daemon off; pid $PWD/$out/upstream.pid; error_log $PWD/$out/logs/upstream.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  server { listen 127.0.0.1:$1; location / { return 200 "ok\n"; } location = /empty { return 204; } } }
NGINX
  nginx -p "$PWD/$out" -c "$PWD/$out/upstream.conf" & pids+=($!); up_master=$!
}

# start_nginx_proxy PORT UPSTREAM_PORT: the reference proxy, nginx `proxy_pass` with upstream
# keepalive, one worker. Sets ngx_master.
start_nginx_proxy() {
  cat >"$out/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $PWD/$out/nginx.pid; error_log $PWD/$out/logs/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  upstream backend { server 127.0.0.1:$2; keepalive 128; }
  server { listen 127.0.0.1:$1; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
  nginx -p "$PWD/$out" -c "$PWD/$out/nginx.conf" & pids+=($!); ngx_master=$!
}

# start_postgres DIR PORT: a throwaway cluster (initdb + pg_ctl, as the postgres user when run
# as root) with a database "edge". Stopped by stop_postgres (call it from your EXIT trap).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
start_postgres() {
  pg_dir=$1; pg_port=$2
  mkdir -p "$pg_dir"; [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$pg_dir" && chmod o+x "$PWD" "$PWD/bench" "$PWD/bench/out" "$(dirname "$pg_dir")"
  as_postgres "$pg_bin/initdb -D $pg_dir/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
  as_postgres "$pg_bin/pg_ctl -D $pg_dir/data -l $pg_dir/pg.log -o '-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c shared_buffers=256MB -c fsync=off -c synchronous_commit=off' -w start" >/dev/null
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'CREATE DATABASE edge'
}
stop_postgres() { [ -n "${pg_dir:-}" ] && as_postgres "$pg_bin/pg_ctl -D $pg_dir/data -m immediate -w stop" >/dev/null 2>&1 || true; }

# edge_base NAME PORT [SERVER_EXTRA]: [server], [log] and one listener of a bench edge: one
# worker, quiet logs, no reload polling.
edge_base() {
  cat <<TOML
[server]
threads = 1
work_stealing = false
grace_period = "0s"
graceful_shutdown_timeout = "1s"
pid_file = "$PWD/$out/$1.pid"
upgrade_sock = "$PWD/$out/$1.sock"
watch = false
${3:-}
[log]
format = "json"
level = "warn"
access_log = false
[[listener]]
address = "127.0.0.1:$2"
TOML
}

# edge_route NAME PATH SERVER [ROUTE_EXTRA]: a route to a one-server upstream of the same name.
edge_route() {
  printf '[[route]]\nname = "%s"\npath = "%s"\nupstream = "%s"\n%s\n[upstream.%s]\nservers = ["%s"]\n' \
    "$1" "$2" "$1" "${4:-}" "$1" "$3"
}

# start_redis PORT: a throwaway redis-server (no persistence); sets redis_pid.
start_redis() {
  redis-server --bind 127.0.0.1 --port "$1" --save '' --appendonly no --dir "$PWD/$out" >/dev/null & pids+=($!); redis_pid=$!
}

# start_redis_cluster: six redis-server nodes (3 masters, 3 replicas) on free ports, joined
# with `redis-cli --cluster create`. Sets cluster_ports (the masters first) and cluster_pids.
start_redis_cluster() {
  local i port d addrs=()
  cluster_ports=(); cluster_pids=""
  for i in 0 1 2 3 4 5; do
    port=$(free_port); d="$PWD/$out/cluster-$i"; mkdir -p "$d"
    # the bus port is given: the default (port + 10000) is out of range above 55535
    redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-port "$(free_port)" \
      --cluster-node-timeout 1000 --save '' --appendonly no --dir "$d" >/dev/null & pids+=($!)
    cluster_pids="$cluster_pids $!"; cluster_ports+=("$port"); addrs+=("127.0.0.1:$port")
  done
  for port in "${cluster_ports[@]}"; do wait_port "$port"; done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$out/logs/cluster-create.log"
  for _ in $(seq 100); do
    redis-cli -p "${cluster_ports[0]}" CLUSTER INFO | grep -q cluster_state:ok && break; sleep 0.1
  done
}

# start_redis_sentinel: a master, a replica and three sentinels watching it as "bench". Sets
# sentinel_ports, sentinel_master_port and sentinel_data_pids.
start_redis_sentinel() {
  local i port conf rep
  sentinel_master_port=$(free_port); rep=$(free_port)
  redis-server --bind 127.0.0.1 --port "$sentinel_master_port" --save '' --appendonly no --dir "$PWD/$out" >/dev/null & pids+=($!)
  sentinel_data_pids="$!"
  redis-server --bind 127.0.0.1 --port "$rep" --replicaof 127.0.0.1 "$sentinel_master_port" --save '' --appendonly no --dir "$PWD/$out" >/dev/null & pids+=($!)
  sentinel_data_pids="$sentinel_data_pids $!"
  wait_port "$sentinel_master_port"; wait_port "$rep"
  sentinel_ports=()
  for i in 0 1 2; do
    port=$(free_port); conf="$PWD/$out/sentinel-$i.conf"
    printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor bench 127.0.0.1 %s 2\nsentinel down-after-milliseconds bench 1000\n' \
      "$port" "$PWD/$out" "$sentinel_master_port" >"$conf"
    redis-server "$conf" --sentinel >/dev/null & pids+=($!)
    sentinel_ports+=("$port")
  done
  for port in "${sentinel_ports[@]}"; do wait_port "$port"; done
}

# auth_conf REDIS_PORT PG_PORT AUTH_PORT: [redis] and an embedded [auth] core for a bench edge
# (issuer and audience "bench", keys generated in $out/keys). [auth] comes last, so a caller
# may print more of its keys right after.
auth_conf() {
  cat <<TOML
[redis]
url = "redis://127.0.0.1:$1/"
[auth]
listen = "127.0.0.1:$3"
database_url = "postgres://postgres@127.0.0.1:$2/edge"
issuer = "bench"
audience = "bench"
keys_dir = "$PWD/$out/keys"
generate_keys = true
TOML
}

# bench_user_token EDGE_PORT: creates bench@example.com (needs $out/conf migrated) and prints an
# access token from a login through the edge on EDGE_PORT.
bench_user_token() {
  echo "bench password" | "$EDGE" user create --conf "$out/conf" --email bench@example.com --password-stdin >/dev/null
  curl -fsS "http://127.0.0.1:$1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench password"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# start_auth_stack: what the benches of the auth core run against — the static upstream, Redis
# and PostgreSQL on free ports, all stopped on exit. Sets up, rport, pgport, edge_port, auth_port.
start_auth_stack() {
  trap 'stop_postgres; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
  up=$(free_port); rport=$(free_port); pgport=$(free_port); edge_port=$(free_port); auth_port=$(free_port)
  start_redis "$rport"
  start_upstream "$up"
  start_postgres "$PWD/$out/pg" "$pgport"
}
