//! Config fixtures: a full conf dir compared as a whole struct, then one case per rule.

use super::*;
use std::path::Path;
use std::time::Duration;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const LISTENER: &str = "[[listener]]\naddress = \"127.0.0.1:8080\"\n";

/// Every problem for a conf made of `LISTENER` plus `extra`, as "file: key: message" lines.
fn problems(extra: &str) -> Vec<String> {
    let dir = dir_with(&[("edge.toml", &format!("{LISTENER}{extra}"))]);
    match load(dir.path()) {
        Ok(_) => vec![],
        Err(e) => {
            e.0.iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect()
        }
    }
}

fn assert_problem(extra: &str, key: &str, needle: &str) {
    let found = problems(extra);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&format!("{key}: ")) && p.contains(needle)),
        "expected a problem at {key} containing {needle:?}, got {found:#?}"
    );
}

#[test]
fn full_conf_dir_becomes_the_expected_struct() {
    let dir = dir_with(&[
        (
            "edge.toml",
            r#"
[server]
threads = 2
work_stealing = true
grace_period = "2s"
graceful_shutdown_timeout = "3s"
pid_file = "/tmp/x.pid"
upgrade_sock = "/tmp/x.sock"
upstream_keepalive_pool_size = 64
watch = false
watch_interval = "250ms"
keepalive_timeout = "30s"
max_connections_per_client = 64
client_read_buffer = 8192

[log]
format = "human"
level = "debug"
access_log = false

[[listener]]
address = "127.0.0.1:8080"
redirect_https_port = 8443

[redis]
url = "redis://127.0.0.1:6379/0"
timeout = "5ms"

[rate_limit]
replicas = 3
headers_on_success = false
breaker_failures = 2
breaker_cooldown = "500ms"
local_capacity = 1000

[client_ip]
trusted_proxies = ["10.0.0.0/8", "::1"]
header = "forwarded"
ipv4_prefix = 24
ipv6_prefix = 56

[metrics]
allow = ["10.1.0.0/16"]
"#,
        ),
        (
            "movies.toml",
            r#"
[[route]]
name = "movies"
host = "Cinema.Example"
path = "/api/v1/movies/"
upstream = "movies"
strip_prefix = true
limits = ["per-ip", "per-key"]

[limit.per-ip]
key = "ip"
rate = "50/s"
burst = 100
on_redis_down = "deny"

[limit.per-key]
key = "header:X-Api-Key"
rate = "600/m"
cost = 2
lease = 5

[upstream.movies]
servers = ["127.0.0.1:8001", "127.0.0.1:8002"]
balance = "consistent_hash"
hash_key = "header:X-User-Id"
connect_timeout = "200ms"
read_timeout = "5s"
write_timeout = "6s"
idle_timeout = "7s"
retries = 2
health_check = { path = "/health", interval = "2s", timeout = "300ms", healthy_threshold = 2, unhealthy_threshold = 3 }
"#,
        ),
    ]);
    let got = load(dir.path()).unwrap();
    let expected = Config {
        dir: dir.path().to_path_buf(),
        server: ServerSettings {
            threads: 2,
            work_stealing: true,
            grace_period: Duration::from_secs(2),
            graceful_shutdown_timeout: Duration::from_secs(3),
            pid_file: "/tmp/x.pid".into(),
            upgrade_sock: "/tmp/x.sock".into(),
            upstream_keepalive_pool_size: 64,
            watch: false,
            watch_interval: Duration::from_millis(250),
            keepalive_timeout: Duration::from_secs(30),
            max_connections_per_client: 64,
            client_read_buffer: 8192,
            h2c: false,
        },
        log: LogSettings {
            format: LogFormat::Human,
            level: "debug".into(),
            access_log: false,
        },
        listeners: vec![ListenerSpec {
            address: "127.0.0.1:8080".parse().unwrap(),
            tls: None,
            redirect_https_port: Some(8443),
        }],
        routes: vec![RouteSpec {
            name: "movies".into(),
            host: Some("cinema.example".into()),
            path: "/api/v1/movies".into(),
            upstream: "movies".into(),
            strip_prefix: true,
            limits: vec!["per-ip".into(), "per-key".into()],
            auth: AuthMode::Public,
            roles: vec![],
            require_verified_email: false,
            matrix_params: false,
            max_body: Some(crate::config::DEFAULT_MAX_BODY),
            issuers: vec!["self".into()],
            request_headers: Default::default(),
            response_headers: Default::default(),
        }],
        upstreams: vec![UpstreamSpec {
            name: "movies".into(),
            servers: vec![
                "127.0.0.1:8001".parse().unwrap(),
                "127.0.0.1:8002".parse().unwrap(),
            ],
            balance: Balance::ConsistentHash(HashKey::Header(http::HeaderName::from_static(
                "x-user-id",
            ))),
            connect_timeout: Duration::from_millis(200),
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(6),
            idle_timeout: Duration::from_secs(7),
            retries: 2,
            tls_sni: None,
            protocol: Default::default(),
            health_check: Some(HealthCheckSpec {
                http_path: Some("/health".into()),
                interval: Duration::from_secs(2),
                timeout: Duration::from_millis(300),
                healthy_threshold: 2,
                unhealthy_threshold: 3,
            }),
        }],
        redis: Some(RedisSpec::standalone(
            "redis://127.0.0.1:6379/0",
            Duration::from_millis(5),
        )),
        rate_limit: RateLimitSettings {
            replicas: 3,
            headers_on_success: false,
            breaker_failures: 2,
            breaker_cooldown: Duration::from_millis(500),
            local_capacity: 1000,
        },
        limits: vec![
            LimitSpec {
                name: "per-ip".into(),
                key: LimitKey::Ip,
                rate: 50.0,
                burst: 100,
                cost: 1,
                on_redis_down: OnRedisDown::Deny,
                lease: LeaseSetting::Auto,
            },
            LimitSpec {
                name: "per-key".into(),
                key: LimitKey::Header(http::HeaderName::from_static("x-api-key")),
                rate: 10.0,
                burst: 10,
                cost: 2,
                on_redis_down: OnRedisDown::Local,
                lease: LeaseSetting::Tokens(5),
            },
        ],
        client_ip: ClientIpSpec {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            header: ForwardedHeader::Forwarded,
            networks: auth_core::client_network::ClientNetworks {
                ipv4_prefix: 24,
                ipv6_prefix: 56,
            },
            proxies_set_proto_host: false,
        },
        metrics_allow: vec!["10.1.0.0/16".parse().unwrap()],
        auth: None,
        identity: None,
        bot_filter: None,
        tracing: None,
        http: HttpSettings::default(),
        forward_auth: None,
        issuers: vec![],
    };
    assert_eq!(got, expected);
}

const AUTH: &str = r#"
[redis]
url = "redis://127.0.0.1:6380/"

[auth]
listen = "127.0.0.1:9100"
database_url = "postgres://edge@127.0.0.1:5432/edge"
migrate_on_start = true
issuer = "https://cinema.test"
audience = "cinema"
access_ttl = "10m"
refresh_ttl = "7d"
refresh_reuse_grace = "5s"
keys_dir = "/var/lib/edge/keys"
generate_keys = true
history_months_ahead = 2
password = { memory_kib = 65536, iterations = 3, parallelism = 2, max_concurrent = 4 }
throttle = { per_account = 5, per_ip = 20, window = "10m" }
"#;

#[test]
fn auth_section_becomes_the_core_settings() {
    let dir = dir_with(&[("edge.toml", &format!("{LISTENER}{AUTH}"))]);
    let got = load(dir.path()).unwrap().auth.unwrap();
    let expected = auth_core::Config {
        listen: "127.0.0.1:9100".parse().unwrap(),
        database_url: "postgres://edge@127.0.0.1:5432/edge".into(),
        migrate_on_start: true,
        db_max_connections: 10,
        db_timeout: Duration::from_secs(2),
        redis: Some(RedisSpec::standalone(
            "redis://127.0.0.1:6380/",
            Duration::from_millis(10),
        )),
        redis_timeout: Duration::from_millis(100),
        issuer: "https://cinema.test".into(),
        audience: "cinema".into(),
        access_ttl: Duration::from_secs(600),
        refresh_ttl: Duration::from_secs(7 * 86400),
        refresh_reuse_grace: Duration::from_secs(5),
        keys: auth_core::config::KeySettings {
            dir: "/var/lib/edge/keys".into(),
            generate_if_missing: true,
            reload_interval: Duration::from_secs(10),
        },
        password: auth_core::config::PasswordSettings {
            memory_kib: 65536,
            iterations: 3,
            parallelism: 2,
            max_concurrent: 4,
        },
        throttle: auth_core::config::ThrottleSettings {
            per_account: 5,
            per_ip: 20,
            window: Duration::from_secs(600),
            ..Default::default()
        },
        client_networks: Default::default(),
        history_months_ahead: 2,
        social: None,
        device: None,
        mail: None,
    };
    assert_eq!(got, expected);
}

#[test]
fn the_embedded_core_verifies_tokens_with_its_key_directory() {
    let dir = dir_with(&[("edge.toml", &format!("{LISTENER}{AUTH}"))]);
    let got = load(dir.path()).unwrap().identity.unwrap();
    assert_eq!(
        got,
        IdentitySpec {
            keys: KeysFrom::Dir {
                dir: "/var/lib/edge/keys".into(),
                token_ttl: Duration::from_secs(600),
            },
            issuer: "https://cinema.test".into(),
            audience: "cinema".into(),
            refresh_every: Duration::from_secs(10),
            cookie: None,
        }
    );
}

#[test]
fn a_remote_core_is_trusted_through_its_jwks() {
    let remote = r#"
[auth]
jwks_url = "https://auth.cinema.internal/auth/.well-known/jwks.json"
issuer = "https://cinema.test"
audience = "cinema"
token_cookie = "access_token"
keys_reload_interval = "1m"
"#;
    let dir = dir_with(&[("edge.toml", &format!("{LISTENER}{remote}"))]);
    let c = load(dir.path()).unwrap();
    assert_eq!(c.auth, None, "no core runs in this process");
    assert_eq!(
        c.identity.unwrap(),
        IdentitySpec {
            keys: KeysFrom::Jwks {
                url: "https://auth.cinema.internal/auth/.well-known/jwks.json".into()
            },
            issuer: "https://cinema.test".into(),
            audience: "cinema".into(),
            refresh_every: Duration::from_secs(60),
            cookie: Some("access_token".into()),
        }
    );

    let with = |extra: &str| {
        format!(
            "[auth]\njwks_url = \"http://127.0.0.1:9/jwks\"\nissuer = \"i\"\naudience = \"a\"\n{extra}\n"
        )
    };
    assert_problem(
        &with("database_url = \"postgres://x@127.0.0.1/db\""),
        "auth.database_url",
        "belongs to the embedded auth core",
    );
    assert_problem(
        &with("keys_dir = \"/keys\""),
        "auth.keys_dir",
        "remove auth.jwks_url",
    );
    assert_problem(
        "[auth]\njwks_url = \"ftp://x/jwks\"\nissuer = \"i\"\naudience = \"a\"\n",
        "auth.jwks_url",
        "is not an http(s) URL",
    );
    assert_problem(
        &with("token_cookie = \"a b\""),
        "auth.token_cookie",
        "is not a cookie name",
    );
    assert_problem(
        "[auth]\ndatabase_url = \"postgres://x@127.0.0.1/db\"\nissuer = \"i\"\naudience = \"a\"\n",
        "auth.keys_dir",
        "must be set for the embedded auth core",
    );
}

#[test]
fn route_auth_rules() {
    let route = |extra: &str| {
        format!(
            "[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"u\"\n{extra}\n\
             [upstream.u]\nservers = [\"127.0.0.1:9\"]\n"
        )
    };
    assert_problem(&route("auth = \"maybe\""), "route[0].auth", "is not one of");
    assert_problem(
        &route("roles = [\"admin\"]"),
        "route[0].roles",
        "auth = \"required\"",
    );
    assert_problem(
        &route("auth = \"required\""),
        "route[0].auth",
        "needs the [auth] section",
    );
    let with_auth = format!(
        "{}{AUTH}",
        route("auth = \"required\"\nroles = [\"subscriber\", \"admin\"]")
    );
    let dir = dir_with(&[("edge.toml", &format!("{LISTENER}{with_auth}"))]);
    let c = load(dir.path()).unwrap();
    assert_eq!(c.routes[0].auth, AuthMode::Required);
    assert_eq!(c.routes[0].roles, ["subscriber", "admin"]);
}

#[test]
fn auth_rules() {
    let with = |from: &str, to: &str| {
        assert!(AUTH.contains(from), "{from}");
        AUTH.replace(from, to)
    };
    assert_problem(
        &with("127.0.0.1:9100", "0.0.0.0:9100"),
        "auth.listen",
        "loopback",
    );
    assert_problem(
        &with("postgres://edge@127.0.0.1:5432/edge", "mysql://x"),
        "auth.database_url",
        "postgres://",
    );
    assert_problem(
        &with("\"10m\"", "\"10s\""),
        "auth.access_ttl",
        "between 1m and 24h",
    );
    assert_problem(
        &with("\"7d\"", "\"5m\""),
        "auth.refresh_ttl",
        "at least auth.access_ttl",
    );
    assert_problem(
        &with("\"5s\"", "\"5m\""),
        "auth.refresh_reuse_grace",
        "at most 60s",
    );
    assert_problem(
        &with("iterations = 3", "iterations = 0"),
        "auth.password.iterations",
        "at least 1",
    );
    assert_problem(
        &with("memory_kib = 65536", "memory_kib = 4"),
        "auth.password.memory_kib",
        "8 x parallelism",
    );
    assert_problem(
        &with("per_ip = 20", "per_ip = 0"),
        "auth.throttle.per_ip",
        "at least 1",
    );
    assert_problem(
        &with("keys_dir", "key_dir"),
        "auth.key_dir",
        "unknown field",
    );
    assert_problem(
        &with("issuer = \"https://cinema.test\"", "issuer = \" \""),
        "auth.issuer",
        "empty",
    );
}

#[test]
fn defaults_when_sections_are_absent() {
    let dir = dir_with(&[("a.toml", LISTENER)]);
    let c = load(dir.path()).unwrap();
    assert!(!c.server.work_stealing);
    assert!(c.server.watch);
    assert_eq!(c.log.format, LogFormat::Json);
    assert!(c.log.access_log);
    assert!(c.routes.is_empty());
}

#[test]
fn shipped_conf_dir_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    if let Err(e) = load(&dir) {
        panic!("{e}");
    }
}

#[test]
fn unknown_keys_are_named_with_their_path_and_line() {
    let found = problems("[[route]]\nname = \"a\"\npath = \"/\"\nupstrem = \"x\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("route[0].upstrem: unknown field `upstrem`"),
        "{found:?}"
    );
    assert!(found[0].contains("line 6"), "{found:?}");
    assert_problem(
        "[server]\nthread = 2\n",
        "server.thread",
        "unknown field `thread`",
    );
    assert_problem(
        "[upstream.a]\nservers = [\"127.0.0.1:1\"]\nhealth_check = { pth = \"/\" }\n",
        "upstream.a.health_check.pth",
        "unknown field `pth`",
    );
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let dir = dir_with(&[("a.toml", LISTENER), ("b.toml", "[[route]\nname = 1\n")]);
    let err = load(dir.path()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].file.ends_with("b.toml"), "{err}");
    assert!(err.0[0].message.contains("line 1"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(
        "[[route]]\nname = \"a\"\npath = \"api\"\nupstream = \"none\"\n\
         [[route]]\nname = \"b\"\npath = \"/b\"\nupstream = \"none\"\n\
         [upstream.u]\nservers = []\nconnect_timeout = \"fast\"\n",
    );
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn route_rules() {
    let up = "[upstream.u]\nservers = [\"127.0.0.1:1\"]\n";
    let route = |body: &str| format!("{up}[[route]]\n{body}\n");
    assert_problem(
        &route("name = \"a\"\npath = \"/\"\nupstream = \"x\""),
        "route[0].upstream",
        "unknown upstream \"x\" (defined: u)",
    );
    assert_problem(
        &route("name = \"a\"\npath = \"api\"\nupstream = \"u\""),
        "route[0].path",
        "must start with '/'",
    );
    assert_problem(
        &route("name = \"a\"\npath = \"/a/../b\"\nupstream = \"u\""),
        "route[0].path",
        "'..'",
    );
    assert_problem(
        &route("name = \"a\"\npath = \"/a?b\"\nupstream = \"u\""),
        "route[0].path",
        "'?'",
    );
    assert_problem(
        &route("name = \"\"\npath = \"/\"\nupstream = \"u\""),
        "route[0].name",
        "must not be empty",
    );
    assert_problem(
        &route("name = \"a\"\nhost = \"a.example:80\"\npath = \"/\"\nupstream = \"u\""),
        "route[0].host",
        "not a host name",
    );
    let twice = format!("{up}[[route]]\nname = \"a\"\npath = \"/x/\"\nupstream = \"u\"\n[[route]]\nname = \"b\"\npath = \"/x\"\nupstream = \"u\"\n");
    assert_problem(&twice, "route[1].path", "route \"a\" already matches");
    let same_name = format!("{up}[[route]]\nname = \"a\"\npath = \"/x\"\nupstream = \"u\"\n[[route]]\nname = \"a\"\npath = \"/y\"\nupstream = \"u\"\n");
    assert_problem(&same_name, "route[1].name", "already defined");
}

#[test]
fn upstream_rules() {
    assert_problem(
        "[upstream.u]\nservers = []\n",
        "upstream.u.servers",
        "at least one",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"nope\"]\n",
        "upstream.u.servers[0]",
        "not host:port",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
        "upstream.u.servers[1]",
        "listed twice",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\"]\nbalance = \"random\"\n",
        "upstream.u.balance",
        "\"random\" is not one of",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\"]\nbalance = \"consistent_hash\"\n",
        "upstream.u.hash_key",
        "needs a hash_key",
    );
    assert_problem("[upstream.u]\nservers = [\"127.0.0.1:1\"]\nbalance = \"consistent_hash\"\nhash_key = \"body\"\n", "upstream.u.hash_key", "not one of");
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\"]\nhash_key = \"ip\"\n",
        "upstream.u.hash_key",
        "only used with",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\"]\nread_timeout = \"soon\"\n",
        "upstream.u.read_timeout",
        "not a duration",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\"]\nread_timeout = \"0s\"\n",
        "upstream.u.read_timeout",
        "longer than zero",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\"]\nsni = \"a\"\n",
        "upstream.u.sni",
        "only used with tls",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\"]\nhealth_check = { path = \"health\" }\n",
        "upstream.u.health_check.path",
        "start with '/'",
    );
    assert_problem(
        "[upstream.u]\nservers = [\"127.0.0.1:1\"]\nhealth_check = { unhealthy_threshold = 0 }\n",
        "upstream.u.health_check.unhealthy_threshold",
        "at least 1",
    );
    assert_problem(
        "[upstream.\"a b\"]\nservers = [\"127.0.0.1:1\"]\n",
        "upstream.a b",
        "letters, digits",
    );
}

#[test]
fn duplicate_upstreams_across_files() {
    let up = "[upstream.u]\nservers = [\"127.0.0.1:1\"]\n";
    let dir = dir_with(&[("a.toml", &format!("{LISTENER}{up}")), ("b.toml", up)]);
    let err = load(dir.path()).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(
        err.0[0].file.ends_with("b.toml") && err.0[0].message.contains("a.toml"),
        "{err}"
    );
}

#[test]
fn server_log_and_listener_rules() {
    assert_problem(
        "[server]\nthreads = 0\n",
        "server.threads",
        "between 1 and 1024",
    );
    assert_problem(
        "[server]\ngrace_period = \"x\"\n",
        "server.grace_period",
        "not a duration",
    );
    assert_problem(
        "[log]\nformat = \"xml\"\n",
        "log.format",
        "\"xml\" is not one of",
    );
    assert_problem(
        "[[listener]]\naddress = \"localhost\"\n",
        "listener[1].address",
        "not an ip:port",
    );
    assert_problem(
        "[[listener]]\naddress = \"127.0.0.1:8080\"\n",
        "listener[1].address",
        "used by another listener",
    );
    assert_problem(
        "[[listener]]\naddress = \"127.0.0.1:9\"\nhttp2 = true\n",
        "listener[1].http2",
        "only on TLS listeners",
    );
    assert_problem(
        "[[listener]]\naddress = \"127.0.0.1:9\"\n[[listener.certificate]]\ncert = \"missing.pem\"\nkey = \"missing.key\"\n",
        "listener[1].certificate[0]",
        "cannot read certificate",
    );
    let dir = dir_with(&[("a.toml", "[log]\nformat = \"json\"\n")]);
    let err = load(dir.path()).unwrap_err();
    assert!(
        err.0
            .iter()
            .any(|e| e.key == "listener" && e.message.contains("no [[listener]]")),
        "{err}"
    );
}

#[test]
fn an_empty_or_missing_dir_is_refused() {
    let dir = dir_with(&[]);
    assert!(load(dir.path())
        .unwrap_err()
        .to_string()
        .contains("no *.toml files"));
    assert!(load(&dir.path().join("nope"))
        .unwrap_err()
        .to_string()
        .contains("cannot read the conf dir"));
}

#[test]
fn limit_rules() {
    let route = |limits: &str| {
        format!("[upstream.u]\nservers = [\"127.0.0.1:1\"]\n[[route]]\nname = \"a\"\npath = \"/\"\nupstream = \"u\"\nlimits = {limits}\n")
    };
    assert_problem(
        &route("[\"nope\"]"),
        "route[0].limits[0]",
        "unknown limit \"nope\"",
    );
    assert_problem(
        "[limit.a]\nkey = \"cookie\"\nrate = \"1/s\"\n",
        "limit.a.key",
        "\"cookie\" is not one of",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"fast\"\n",
        "limit.a.rate",
        "not a rate",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"0/s\"\n",
        "limit.a.rate",
        "above zero",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"5/d\"\n",
        "limit.a.rate",
        "not a rate",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"5/s\"\nburst = 0\n",
        "limit.a.burst",
        "at least 1",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"5/s\"\nburst = 2\ncost = 3\n",
        "limit.a.cost",
        "between 1 and the burst",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"5/s\"\non_redis_down = \"panic\"\n",
        "limit.a.on_redis_down",
        "not one of",
    );
    assert_problem(
        "[redis]\nurl = \"http://x\"\n",
        "redis.url",
        "not a redis:// or rediss:// URL",
    );
    assert_problem(
        "[rate_limit]\nreplicas = 0\n",
        "rate_limit.replicas",
        "at least 1",
    );
    assert_problem(
        "[client_ip]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
        "client_ip.trusted_proxies[0]",
        "not an IP address or CIDR",
    );
    assert_problem(
        "[redis]\nmode = \"sentinel\"\nurls = [\"redis://127.0.0.1:26379\"]\n",
        "redis.master_name",
        "needs the master's name",
    );
    assert_problem(
        "[redis]\nmode = \"ring\"\nurl = \"redis://127.0.0.1:6379\"\n",
        "redis.mode",
        "not one of standalone, sentinel, cluster",
    );
    assert_problem(
        "[redis]\nurls = [\"redis://a:1\", \"redis://b:1\"]\n",
        "redis.urls",
        "standalone mode takes one server",
    );
    assert_problem(
        "[redis]\nmode = \"cluster\"\nurls = [\"rediss://a:1\", \"redis://b:1\"]\n",
        "redis.urls",
        "mixes redis:// and rediss://",
    );
    assert_problem(
        "[redis]\nurl = \"redis://a:1\"\ntls = { ca = \"ca.pem\" }\n",
        "redis.tls",
        "use rediss:// URLs",
    );
    assert_problem(
        "[redis]\nurl = \"rediss://a:1\"\ntls = { ca = \"missing-ca.pem\" }\n",
        "redis.tls.ca",
        "cannot read missing-ca.pem",
    );
    assert_problem(
        "[redis]\nurl = \"rediss://a:1\"\ntls = { cert = \"edge.toml\" }\n",
        "redis.tls.cert",
        "holds no PEM certificate",
    );
    assert_problem(
        "[redis]\nurls = [\"redis://127.0.0.1:26379\"]\nmaster_name = \"cinema\"\n",
        "redis.master_name",
        "add mode = \"sentinel\"",
    );
    assert_problem(
        "[redis]\nmode = \"sentinel\"\nmaster_name = \"m\"\nurls = [\"rediss://a:1\", \"redis://b:1\"]\n",
        "redis.urls",
        "mixes redis:// and rediss://",
    );
    assert_problem(
        "[redis]\nmode = \"cluster\"\nurls = []\n",
        "redis.urls",
        "is empty",
    );
    assert_problem(
        "[redis]\nmode = \"cluster\"\nurls = [\"redis://a:1/3\"]\n",
        "redis.urls[0]",
        "one database",
    );
    assert_problem(
        "[redis]\nmode = \"cluster\"\nurls = [\"redis://:x@a:1\", \"redis://:y@b:1\"]\n",
        "redis.urls",
        "different credentials",
    );
    assert_problem(
        "[redis]\nurl = \"redis://a:1\"\npassword_env = \"EDGE_TEST_UNSET_REDIS_PASSWORD\"\n",
        "redis.password_env",
        "EDGE_TEST_UNSET_REDIS_PASSWORD is not set",
    );
    assert_problem(
        "[redis]\nurl = \"rediss://a:1/#insecure\"\n",
        "redis.url",
        "certificate checks off",
    );
    assert_problem(
        "[redis]\nurl = \"redis://a:1\"\nurls = [\"redis://b:1\"]\n",
        "redis.urls",
        "not both",
    );
    assert_problem(
        "[client_ip]\nheader = \"x-client-ip\"\n",
        "client_ip.header",
        "not one of",
    );
    assert_problem(
        "[client_ip]\nipv6_prefix = 16\n",
        "client_ip.ipv6_prefix",
        "between 32 and 128",
    );
    assert_problem(
        "[client_ip]\nipv4_prefix = 33\n",
        "client_ip.ipv4_prefix",
        "between 16 and 32",
    );
    assert_problem(
        "[[route]]\nname = \"a\\\"b\"\npath = \"/\"\nupstream = \"u\"\n[upstream.u]\nservers = [\"127.0.0.1:1\"]\n",
        "route[0].name",
        "may only hold",
    );
    assert_problem(
        "[[route]]\nname = \"a\"\npath = \"/%61pi\"\nupstream = \"u\"\n[upstream.u]\nservers = [\"127.0.0.1:1\"]\n",
        "route[0].path",
        "write \"/api\"",
    );
}

#[test]
fn lease_rule() {
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"5/s\"\nburst = 10\nlease = 11\n",
        "limit.a.lease",
        "between the cost",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"5/s\"\ncost = 2\nlease = 1\n",
        "limit.a.lease",
        "between the cost",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"5/s\"\nlease = -1\n",
        "limit.a.lease",
        "\"auto\", \"off\" or a number of tokens",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"1/h\"\nburst = 1000000\n",
        "limit.a.burst",
        "more than 30 days to refill",
    );
    assert_problem(
        "[limit.a]\nkey = \"ip\"\nrate = \"5/s\"\nlease = \"always\"\n",
        "limit.a.lease",
        "write \"auto\", \"off\"",
    );
}

#[test]
fn rates_per_minute_and_hour() {
    let dir = dir_with(&[("a.toml", &format!("{LISTENER}[limit.m]\nkey = \"route\"\nrate = \"120/m\"\n[limit.h]\nkey = \"user\"\nrate = \"3600/h\"\nburst = 5\n"))]);
    let c = load(dir.path()).unwrap();
    let rate = |n: &str| c.limits.iter().find(|l| l.name == n).unwrap().rate;
    assert_eq!(rate("m"), 2.0);
    assert_eq!(rate("h"), 1.0);
    assert_eq!(
        c.limits.iter().find(|l| l.name == "m").unwrap().burst,
        2,
        "default burst: one second of rate"
    );
}

#[test]
fn tls_certificates_are_checked_at_load() {
    let dir = dir_with(&[]);
    let write_pair = |name: &str| {
        let mut params = rcgen::CertificateParams::new(vec![format!("{name}.example")]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(
            dir.path().join(format!("{name}.pem")),
            params.self_signed(&key).unwrap().pem(),
        )
        .unwrap();
        std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
    };
    write_pair("a");
    write_pair("b");
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let listener = |cert: &str, key: &str| {
        format!("[[listener]]\naddress = \"127.0.0.1:9443\"\n[[listener.certificate]]\ncert = \"{cert}\"\nkey = \"{key}\"\nhosts = [\"a.example\"]\n")
    };
    std::fs::write(dir.path().join("edge.toml"), listener("a.pem", "a.key")).unwrap();
    let c = load(dir.path()).unwrap();
    let tls = c.listeners[0].tls.as_ref().unwrap();
    assert!(tls.http2, "HTTP/2 is on by default on TLS listeners");
    assert_eq!(tls.certificates[0].hosts, vec!["a.example".to_string()]);

    std::fs::write(dir.path().join("edge.toml"), listener("a.pem", "b.key")).unwrap();
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("listener[0].certificate[0]")
            && err.contains("does not belong to the certificate"),
        "{err}"
    );
    std::fs::write(dir.path().join("edge.toml"), listener("junk.pem", "a.key")).unwrap();
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("junk.pem holds no certificate"), "{err}");
}

const SOCIAL: &str = r#"
[social]
public_url = "https://cinema.test/"
return_to_allow = ["https://tv.cinema.test"]
flow_ttl = "5m"

[social.provider.yandex]
client_id = "y-app"

[social.provider.corp]
kind = "generic_oidc"
client_id = "cinema"
discovery_url = "https://sso.test/.well-known/openid-configuration"
"#;

fn auth_with_cookie() -> String {
    AUTH.replace(
        "generate_keys = true",
        "generate_keys = true\ntoken_cookie = \"access_token\"",
    )
}

#[test]
fn social_section_becomes_the_core_settings() {
    use auth_core::social::settings::ProviderKind;
    let dir = dir_with(&[(
        "edge.toml",
        &format!("{LISTENER}{}{SOCIAL}", auth_with_cookie()),
    )]);
    let config = load(dir.path()).unwrap();
    // behind TLS the edge reads the token from the __Host- cookie the sign-in sets
    assert_eq!(
        config.identity.as_ref().unwrap().cookie.as_deref(),
        Some("__Host-access_token")
    );
    let social = config.auth.unwrap().social.unwrap();
    assert_eq!(social.access_cookie(), "__Host-access_token");
    assert_eq!(social.public_url, "https://cinema.test");
    assert!(social.secure());
    assert_eq!(social.flow_ttl, Duration::from_secs(300));
    assert_eq!(social.recent_login, Duration::from_secs(600));
    assert_eq!(social.token_cookie, "access_token");
    let names: Vec<(&str, ProviderKind)> = social
        .providers
        .iter()
        .map(|p| (p.name.as_str(), p.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("corp", ProviderKind::GenericOidc),
            ("yandex", ProviderKind::Yandex)
        ]
    );
    assert_eq!(social.providers[1].scopes, ["login:email", "login:info"]);
    assert_eq!(social.providers[0].client_secret, None);
}

#[test]
fn social_rules() {
    let base = format!("{}{SOCIAL}", auth_with_cookie());
    let with = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replace(from, to)
    };
    assert_problem(
        &with("https://cinema.test/", "https://cinema.test/app"),
        "social.public_url",
        "no path",
    );
    assert_problem(
        &with("https://tv.cinema.test", "tv.cinema.test"),
        "social.return_to_allow[0]",
        "not an origin",
    );
    assert_problem(
        &with("\"5m\"", "\"2h\""),
        "social.flow_ttl",
        "between 1s and 1h",
    );
    assert_problem(
        &with("kind = \"generic_oidc\"", "kind = \"facebook\""),
        "social.provider.corp.kind",
        "not one of",
    );
    assert_problem(
        &with(
            "discovery_url = \"https://sso.test/.well-known/openid-configuration\"",
            "",
        ),
        "social.provider.corp.discovery_url",
        "required for generic_oidc",
    );
    assert_problem(
        &with("client_id = \"y-app\"", "client_id = \"\""),
        "social.provider.yandex.client_id",
        "empty",
    );
    assert_problem(
        &with(
            "client_id = \"y-app\"",
            "client_id = \"y\"\nclient_secret_env = \"EDGE_TEST_UNSET_SECRET_VAR\"",
        ),
        "social.provider.yandex.client_secret_env",
        "EDGE_TEST_UNSET_SECRET_VAR is not set",
    );
    assert_problem(
        &with(
            "client_id = \"y-app\"",
            "client_id = \"y\"\nscopes = [\"login email\"]",
        ),
        "social.provider.yandex.scopes",
        "one word",
    );
    assert_problem(
        &with(
            "client_id = \"cinema\"",
            "client_id = \"cinema\"\nscopes = [\"email\"]",
        ),
        "social.provider.corp.scopes",
        "openid",
    );
    assert_problem(
        &with("[social.provider.yandex]", "[social.provider.Yandex]"),
        "social.provider.Yandex",
        "lower-case",
    );
    assert_problem(
        &with(
            "[social.provider.yandex]",
            "[social.provider.yandex]\ntoken_url = \"ftp://x\"",
        ),
        "social.provider.yandex.token_url",
        "http(s)",
    );
    // the callback sets the token cookie, and flows live in Redis
    assert_problem(&format!("{AUTH}{SOCIAL}"), "social", "auth.token_cookie");
    assert_problem(
        &format!(
            "{}{SOCIAL}",
            auth_with_cookie().replace("[redis]\nurl = \"redis://127.0.0.1:6380/\"\n", "")
        ),
        "social",
        "[redis]",
    );
    assert_problem(SOCIAL, "social", "embedded auth core");
}

const UPSTREAM: &str = "[upstream.u]\nservers = [\"127.0.0.1:1\"]\n";

fn route_with(extra: &str) -> String {
    format!("{UPSTREAM}[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"u\"\n{extra}")
}

#[test]
fn body_and_header_limits() {
    let dir = dir_with(&[(
        "edge.toml",
        &format!(
            "{LISTENER}[http]\nmax_body = \"64KiB\"\nmax_header_block = \"16KiB\"\n{}{}",
            route_with(""),
            "[[route]]\nname = \"up\"\npath = \"/up\"\nupstream = \"u\"\nmax_body = \"off\"\n\
             [[route]]\nname = \"big\"\npath = \"/big\"\nupstream = \"u\"\nmax_body = \"2MiB\"\n"
        ),
    )]);
    let got = load(dir.path()).unwrap();
    assert_eq!(got.http.max_header_block, 16 << 10);
    let body = |name: &str| got.routes.iter().find(|r| r.name == name).unwrap().max_body;
    assert_eq!(body("r"), Some(64 << 10), "the [http] default");
    assert_eq!(body("up"), None);
    assert_eq!(body("big"), Some(2 << 20));
    assert_problem(
        &route_with("max_body = \"1MB\"\n"),
        "route[0].max_body",
        "\"1MB\" is not a size",
    );
    assert_problem(
        "[http]\nmax_body = \"-1\"\n",
        "http.max_body",
        "is not a size",
    );
    assert_problem(
        "[http]\nmax_header_block = \"off\"\n",
        "http.max_header_block",
        "between 1KiB and 1MiB",
    );
    assert_problem(
        "[http]\nmax_header_block = \"2MiB\"\n",
        "http.max_header_block",
        "between 1KiB and 1MiB",
    );
    assert_problem(
        "[http]\nmax_bdy = \"1KiB\"\n",
        "http.max_bdy",
        "unknown field",
    );
}

#[test]
fn header_rules_are_parsed_and_reserved_names_refused() {
    let dir = dir_with(&[(
        "edge.toml",
        &format!(
            "{LISTENER}{}",
            route_with(
                "request_headers = { set = { \"x-service\" = \"movies\" }, remove = [\"X-Debug\"] }\n\
                 response_headers = { add = { \"strict-transport-security\" = \"max-age=63072000\" }, remove = [\"server\"] }\n"
            )
        ),
    )]);
    let got = load(dir.path()).unwrap();
    let r = &got.routes[0];
    assert_eq!(r.request_headers.set[0].0.as_str(), "x-service");
    assert_eq!(r.request_headers.remove[0].as_str(), "x-debug");
    assert_eq!(r.response_headers.add[0].1, "max-age=63072000");
    for reserved in [
        "x-user-id",
        "x-forwarded-for",
        "host",
        "x-request-id",
        "content-length",
    ] {
        assert_problem(
            &route_with(&format!(
                "request_headers = {{ set = {{ \"{reserved}\" = \"1\" }} }}\n"
            )),
            &format!("route[0].request_headers.set.{reserved}"),
            "written by the edge itself",
        );
    }
    assert_problem(
        &route_with("response_headers = { remove = [\"x-request-id\"] }\n"),
        "route[0].response_headers.remove.x-request-id",
        "written by the edge itself",
    );
    assert_problem(
        &route_with("request_headers = { set = { \"bad name\" = \"1\" } }\n"),
        "route[0].request_headers.set.bad name",
        "not a header name",
    );
    assert_problem(
        &route_with("request_headers = { add = { \"x-a\" = \"line\\nbreak\" } }\n"),
        "route[0].request_headers.add.x-a",
        "cannot carry",
    );
}

#[test]
fn forward_auth_rules() {
    assert_problem(
        "[forward_auth]\n[forward_auth.policy.a]\nauth = \"required\"\n",
        "forward_auth",
        "needs the [auth] section",
    );
    let with_auth = |text: &str| format!("{AUTH}\n{text}");
    assert_problem(
        &with_auth(
            "[forward_auth]\npath = \"/auth\"\n[forward_auth.policy.a]\nauth = \"required\"\n",
        ),
        "forward_auth.path",
        "under /_edge/",
    );
    for clash in [
        "/_edge/health",
        "/_edge",
        "/_edge/challenge/x",
        "/_edge/auth/..",
    ] {
        assert_problem(
            &with_auth(&format!(
                "[forward_auth]\npath = \"{clash}\"\n[forward_auth.policy.a]\nauth = \"required\"\n"
            )),
            "forward_auth.path",
            "",
        );
    }
    assert_problem(
        &with_auth("[forward_auth]\n[forward_auth.policy.\"..\"]\nauth = \"required\"\n"),
        "forward_auth.policy...",
        "a policy name",
    );
    assert_problem(
        &with_auth("[forward_auth]\n"),
        "forward_auth.policy",
        "at least one",
    );
    assert_problem(
        &with_auth("[forward_auth]\n[forward_auth.policy.a]\nauth = \"public\"\n"),
        "forward_auth.policy.a.auth",
        "decides nothing",
    );
    assert_problem(
        &with_auth(
            "[forward_auth]\n[forward_auth.policy.a]\nauth = \"optional\"\nroles = [\"admin\"]\n",
        ),
        "forward_auth.policy.a.roles",
        "need auth = \"required\"",
    );
    assert_problem(
        &with_auth(
            "[forward_auth]\n[forward_auth.policy.a]\nauth = \"optional\"\nrequire_verified_email = true\n",
        ),
        "forward_auth.policy.a.require_verified_email",
        "needs auth = \"required\"",
    );
    assert_problem(
        &with_auth(
            "[forward_auth]\nallow = [\"nope\"]\n[forward_auth.policy.a]\nauth = \"required\"\n",
        ),
        "forward_auth.allow[0]",
        "not an IP address",
    );
}

#[test]
fn issuer_rules() {
    let issuer = |extra: &str| {
        format!(
            "{AUTH}\n[[issuer]]\nname = \"kc\"\nissuer = \"https://sso.example/realms/x\"\n\
             audience = [\"api\"]\nalgorithms = [\"RS256\"]\n{extra}"
        )
    };
    assert_problem(
        &issuer("jwks_url = \"http://sso.example/certs\"\n"),
        "issuer[0].jwks_url",
        "must be https",
    );
    assert!(
        !problems(&issuer("jwks_url = \"http://127.0.0.1:9/certs\"\n"))
            .iter()
            .any(|p| p.starts_with("issuer")),
        "loopback http is allowed"
    );
    assert_problem(
        &issuer(""),
        "issuer[0].jwks_url",
        "either jwks_url or discovery",
    );
    assert_problem(
        &issuer("discovery = true\nalgorithms = [\"HS256\"]\n")
            .replace("algorithms = [\"RS256\"]\n", ""),
        "issuer[0].algorithms[0]",
        "\"HS256\" is not one of",
    );
    assert_problem(
        &format!(
            "{}[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"u\"\nauth = \"required\"\nissuers = [\"nope\"]\n[upstream.u]\nservers = [\"127.0.0.1:1\"]\n",
            issuer("discovery = true\n")
        ),
        "route[0].issuers[0]",
        "unknown issuer \"nope\"",
    );
    assert_problem(
        &issuer("discovery = true\n").replace("name = \"kc\"", "name = \"self\""),
        "issuer[0].name",
        "not \"self\"",
    );
}

#[test]
fn device_section_becomes_the_core_settings_and_is_checked() {
    let device = |body: &str| format!("{}\n[auth.device]\n{body}\n", auth_with_cookie());
    let good = "verification_uri = \"https://cinema.test/activate\"\nclients = [{ id = \"tv-app\", name = \"Cinema TV\" }]";
    let dir = dir_with(&[("edge.toml", &format!("{LISTENER}{}", device(good)))]);
    let core = load(dir.path()).unwrap().auth.unwrap();
    let d = core.device.unwrap();
    assert_eq!(d.activate_path, "/activate");
    assert_eq!(d.user_code_ttl, Duration::from_secs(600));
    assert_eq!(d.interval, Duration::from_secs(5));
    assert_eq!(d.client("tv-app").unwrap().name, "Cinema TV");
    assert_eq!(d.access_cookie(), "__Host-access_token");

    let without_cookie = format!("{AUTH}\n[auth.device]\n{good}\n");
    assert_problem(&without_cookie, "auth.device", "needs auth.token_cookie");
    let cases = [
        (
            good.replace("https://cinema.test", "http://cinema.test"),
            "auth.device.verification_uri",
            "must be https",
        ),
        (
            good.replace("/activate", "/"),
            "auth.device.verification_uri",
            "plain path of its own",
        ),
        (
            good.replace("/activate", "/activate?x=1"),
            "auth.device.verification_uri",
            "no query",
        ),
        (
            good.replace("/activate", "/auth/device/x"),
            "auth.device.verification_uri",
            "not under /auth",
        ),
        (
            good.replace("/activate", "/auth/login"),
            "auth.device.verification_uri",
            "not under /auth",
        ),
        (
            good.replace("/activate", "/{*rest}"),
            "auth.device.verification_uri",
            "plain path",
        ),
        (
            format!("{good}\ninterval = \"500ms\""),
            "auth.device.interval",
            "whole seconds",
        ),
        (
            format!("{good}\nuser_code_ttl = \"2h\""),
            "auth.device.user_code_ttl",
            "between 1m and 1h",
        ),
        (
            good.replace("}]", "}, { id = \"tv-app\", name = \"Again\" }]"),
            "auth.device.clients[1].id",
            "listed twice",
        ),
        (
            good.replace("tv-app", "tv app"),
            "auth.device.clients[0].id",
            "A-Z a-z",
        ),
        (
            good.replace("[{ id = \"tv-app\", name = \"Cinema TV\" }]", "[]"),
            "auth.device.clients",
            "at least one",
        ),
    ];
    for (body, key, needle) in cases {
        assert_problem(&device(&body), key, needle);
    }
}

#[test]
fn mail_section_becomes_the_core_settings_and_is_checked() {
    let good =
        "[mail]\nfrom = \"Cinema <no-reply@cinema.test>\"\nsmtp = \"smtp.cinema.test:587\"\n\
                confirm_url = \"https://cinema.test/confirm?token={token}\"\n\
                reset_url = \"https://cinema.test/reset?token={token}\"\n";
    let dir = dir_with(&[("edge.toml", &format!("{LISTENER}{AUTH}\n{good}"))]);
    let mail = load(dir.path()).unwrap().auth.unwrap().mail.unwrap();
    assert_eq!((mail.host.as_str(), mail.port), ("smtp.cinema.test", 587));
    assert_eq!(
        mail.security,
        auth_core::mail::settings::SmtpSecurity::StartTls
    );
    assert_eq!(mail.reset_ttl, Duration::from_secs(1800));
    assert_eq!(mail.confirm_ttl, Duration::from_secs(86400));
    assert_eq!(mail.max_attempts, 8);
    assert_eq!(
        mail.confirm_link("t0k"),
        "https://cinema.test/confirm?token=t0k"
    );

    // without the embedded core there is nobody to send it; without Redis, no limit on it
    assert_problem(good, "mail", "needs the embedded auth core");
    let without_redis = AUTH.replace("[redis]\nurl = \"redis://127.0.0.1:6380/\"\n", "");
    assert!(!without_redis.contains("[redis]"));
    assert_problem(&format!("{without_redis}\n{good}"), "mail", "and [redis]");
    std::env::set_var("EDGE_TEST_SMTP_PASSWORD_SET", "secret");
    let cases = [
        (good.replace("Cinema <no-reply@cinema.test>", "Cinema <nobody>"), "mail.from", "not a mailbox"),
        (good.replace("smtp.cinema.test:587", "smtp.cinema.test"), "mail.smtp", "host:port"),
        (good.replace("smtp.cinema.test:587", "smtp.cinema.test:0"), "mail.smtp", "host:port"),
        (format!("{good}security = \"ssl\""), "mail.security", "\"starttls\""),
        (good.replace("https://cinema.test/confirm?token={token}", "https://cinema.test/confirm"), "mail.confirm_url", "{token} once"),
        (good.replace("https://cinema.test/reset", "http://cinema.test/reset"), "mail.reset_url", "must be https"),
        (good.replace("https://cinema.test/reset", "ftp://cinema.test/reset"), "mail.reset_url", "not an http(s) URL"),
        (format!("{good}reset_ttl = \"1d\""), "mail.reset_ttl", "between 5m and 2h"),
        (format!("{good}confirm_ttl = \"10m\""), "mail.confirm_ttl", "between 1h and 7d"),
        (format!("{good}max_attempts = 0"), "mail.max_attempts", "between 1 and 50"),
        (format!("{good}timeout = \"soon\""), "mail.timeout", "not a duration"),
        (format!("{good}retry_base = \"2h\""), "mail.retry_max", "not be shorter"),
        (format!("{good}password_env = \"EDGE_TEST_SMTP_UNSET\""), "mail.password_env", "is not set"),
        (format!("{good}password_env = \"EDGE_TEST_SMTP_PASSWORD_SET\""), "mail.password_env", "both username_env and password_env"),
        (
            format!("{good}security = \"none\"\nusername_env = \"EDGE_TEST_SMTP_PASSWORD_SET\"\npassword_env = \"EDGE_TEST_SMTP_PASSWORD_SET\""),
            "mail.security",
            "in clear",
        ),
        (format!("{good}sender = \"x\""), "mail.sender", "unknown field"),
        (format!("{good}ca = \"no-such-ca.pem\""), "mail.ca", "not a readable PEM"),
        (format!("{good}ca = \"edge.toml\""), "mail.ca", "no PEM certificate"),
        (
            format!("{good}security = \"none\"\nca = \"no-such-ca.pem\""),
            "mail.ca",
            "only used with",
        ),
    ];
    for (body, key, needle) in cases {
        assert_problem(&format!("{AUTH}\n{body}"), key, needle);
    }
}
