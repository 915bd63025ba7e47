//! The Redis test matrix: every feature that keeps state in Redis — the limiter, the bot
//! filter, the OAuth flows, the revocation deny list and the login throttle — run against
//! each topology (one server, a 6-node cluster, Sentinel, TLS with ACL users), through the
//! same scenario functions; then failovers under load for Cluster and Sentinel.

use crate::bot_filter::{self, solve, Tv};
use crate::rate_limit::metric;
use crate::social;
use crate::support::auth::{AuthStack, Options, PASSWORD};
use crate::support::edge::Edge;
use crate::support::social::Persona;
use crate::support::topology::{Kind, Topology};
use crate::support::upstream::Upstream;
use crate::support::{client, client_from};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits until the edge's `/_edge/ready` shows Redis up with every master reachable.
async fn redis_ready(edge: &Edge) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client().get(edge.url("/_edge/ready")).send().await;
        if let Ok(r) = r {
            let v: Value = r.json().await.unwrap_or_default();
            let redis = &v["checks"]["redis"];
            if redis["status"] == "up" && redis["topology"]["masters_reachable"] == true {
                return redis.clone();
            }
            assert!(Instant::now() < deadline, "redis never ready: {v}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mode_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Standalone | Kind::TlsAcl => "standalone",
        Kind::Cluster => "cluster",
        Kind::Sentinel => "sentinel",
    }
}

/// Two edge replicas share one bucket through the topology, and the bot filter's lockout (a
/// script over three keys of one client) works on it and is seen by the other replica.
async fn limiter_and_bot_filter(kind: Kind) {
    let topo = Topology::start(kind);
    let u = Upstream::start("movies");
    let conf = bot_filter::conf_with(&u, &topo.conf(), "1s")
        .replace("upstream = \"p\"\n", "upstream = \"p\"\nlimits = [\"l\"]\n");
    let conf = format!("{conf}[limit.l]\nkey = \"ip\"\nrate = \"6/m\"\nburst = 30\n");
    let (a, b) = (Edge::start(&conf), Edge::start(&conf));
    let ready = redis_ready(&a).await;
    redis_ready(&b).await;
    assert_eq!(ready["topology"]["mode"], mode_name(kind), "{ready}");
    let masters = ready["topology"]["masters"].as_array().unwrap().len();
    assert_eq!(
        masters,
        if kind == Kind::Cluster { 3 } else { 1 },
        "{ready}"
    );
    if kind == Kind::Cluster {
        assert_eq!(ready["topology"]["nodes"], 6, "{ready}");
    }

    let mut statuses = Vec::new();
    for i in 0..40 {
        let edge = if i % 2 == 0 { &a } else { &b };
        let r = client()
            .get(edge.url("/api/v1/movies"))
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        30,
        "one bucket of 30 across both replicas: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(!topo.keys("rl:l:*").is_empty(), "the bucket lives in Redis");

    // three wrong answers lock the TV out (one script, three keys in one slot)
    let tv = Tv::at(&a);
    let mut challenge = tv.until_challenged().await;
    let mut locked = None;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let r = tv.answer(&challenge, "99999").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            locked = Some(r.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        challenge = r.json().await.unwrap();
    }
    assert_eq!(locked.expect("locked out")["code"], "locked_out");
    assert!(
        !topo.keys("bf:*:lock").is_empty(),
        "the lockout lives in Redis"
    );
    // the other replica knows: past the rule's rate the TV gets the lockout, not a question
    let other = Tv::at(&b);
    let mut last = StatusCode::OK;
    for _ in 0..8 {
        last = other.get("/api/v1/movies", &[]).await.status();
        if last != StatusCode::OK {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let r = other.get("/api/v1/movies", &[]).await;
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "locked_out");
    // a TV elsewhere answers right and earns its pass
    let fine = Tv {
        edge: &b,
        ua: bot_filter::TV,
        ip: "192.0.2.44",
    };
    let challenge = fine.until_challenged().await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let r = fine
        .answer(&challenge, &solve(challenge["question"].as_str().unwrap()))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
}

/// The auth core's Redis state on the topology: an OAuth flow saved and spent once, a
/// logout's deny-list entry honoured by the edge, the login throttle.
async fn auth_core_state(kind: Kind) {
    social::secret_env();
    let (y, v, m) = social::fake_providers();
    let movies = Upstream::start("movies");
    let routes = format!(
        "[upstream.movies]\nservers = [\"{}\"]\n\
         [[route]]\nname = \"required\"\npath = \"/req\"\nupstream = \"movies\"\nauth = \"required\"\n",
        movies.addr()
    );
    let s = AuthStack::start_with(Options {
        auth_extra: &format!("token_cookie = \"{}\"\n", social::TOKEN_COOKIE),
        social: &social::three_providers(&y, &v, &m, ""),
        routes_extra: &routes,
        redis: kind,
        ..Options::default()
    });
    redis_ready(&s.edge).await;

    // OAuth: the flow waits in Redis under its state and is spent by the callback
    y.set(Persona::person("1000034426", "ivan@yandex.test"));
    let (url, cookie) = social::start(&s, "yandex", "/films/42").await;
    assert_eq!(s.redis.keys("auth:oauth:flow:*").len(), 1);
    let back = social::consent(&s, &url).await;
    let r = social::callback(&s, &back, Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.text().await);
    assert!(s.redis.keys("auth:oauth:flow:*").is_empty(), "spent");
    let replay = social::callback(&s, &back, Some(&cookie)).await;
    assert_eq!(
        replay.status(),
        StatusCode::BAD_REQUEST,
        "a replayed callback"
    );
    let token = social::sign_in(&s, "yandex")
        .await
        .expect("a second sign-in");
    assert_eq!(social::me(&s, &token).await["email"], "ivan@yandex.test");

    // revocation: after logout the edge refuses the still-unexpired access token
    s.create_user("viewer@example.com", &[]);
    let pair = s.login("viewer@example.com", PASSWORD).await;
    let access = pair["access_token"].as_str().unwrap().to_string();
    let get_req = || s.http.get(s.url("/req")).bearer_auth(&access).send();
    assert_eq!(get_req().await.unwrap().status(), StatusCode::OK);
    s.logout(&access).await;
    assert!(
        !s.redis.keys("edge:revoked:*").is_empty(),
        "listed in Redis"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = get_req().await.unwrap().status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(Instant::now() < deadline, "a logged-out token still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // login throttle: ten failures from one network, then that network is refused
    let attacker = client_from("127.0.0.3");
    let mut statuses = Vec::new();
    for i in 0..11 {
        let r = attacker
            .post(s.url("/auth/login"))
            .json(&json!({ "email": "viewer@example.com", "password": format!("wrong-{i}") }))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses[10], 429, "{statuses:?}");
    assert!(!s.redis.keys("auth:login:*").is_empty());
}

macro_rules! matrix {
    ($($name:ident: $kind:expr;)*) => {
        mod matrix {
            use super::*;
            $(
                mod $name {
                    use super::*;
                    #[tokio::test]
                    async fn limiter_and_bot_filter() {
                        super::limiter_and_bot_filter($kind).await;
                    }
                    #[tokio::test]
                    async fn auth_core_state() {
                        super::auth_core_state($kind).await;
                    }
                }
            )*
        }
    };
}

matrix! {
    standalone: Kind::Standalone;
    cluster: Kind::Cluster;
    sentinel: Kind::Sentinel;
    tls_acl: Kind::TlsAcl;
}

/// A labelled value from /_edge/metrics (the first series of `name`).
async fn metric_labelled(edge: &Edge, name: &str) -> u64 {
    let text = edge.metrics_text().await;
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
}

/// One response of the flood: when it came (ms since the start) and its status.
type Record = (u64, u16);

/// A running flood: its records, its stop flag, its tasks.
struct Flood {
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Floods `urls` from `clients` tasks until stopped; every response is recorded.
fn flood(urls: Vec<String>, clients: usize, start: Instant) -> Flood {
    let records = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let url = urls[i % urls.len()].clone();
        let (records, stop) = (records.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                let status = c.get(&url).send().await.map_or(0, |r| r.status().as_u16());
                let at = start.elapsed().as_millis() as u64;
                records.lock().unwrap().push((at, status));
            }
        }));
    }
    Flood {
        records,
        stop,
        tasks,
    }
}

fn admitted(records: &[Record], from_ms: u64, to_ms: u64) -> usize {
    records
        .iter()
        .filter(|(at, s)| *at >= from_ms && *at < to_ms && *s == 200)
        .count()
}

/// Three replicas flood one key (100/s, burst 50) while the master holding it is killed.
async fn failover_under_load(kind: Kind) {
    const RATE: f64 = 100.0;
    const BURST: f64 = 50.0;
    let mut topo = Topology::start(kind);
    let u = Upstream::start("u");
    let route = crate::support::one_route(&[u.addr()], "")
        .replace("upstream = \"p\"\n", "upstream = \"p\"\nlimits = [\"l\"]\n");
    let conf = format!(
        "{route}{}[limit.l]\nkey = \"route\"\nrate = \"100/s\"\nburst = 50\n[rate_limit]\nreplicas = 3\n",
        topo.conf_with_timeout("50ms")
    );
    let edges: Vec<Edge> = (0..3).map(|_| Edge::start(&conf)).collect();
    for e in &edges {
        redis_ready(e).await;
    }
    let start = Instant::now();
    let urls = edges.iter().map(|e| e.url("/x")).collect();
    let load = flood(urls, 6, start);

    // long enough that the tokens leased but not yet spent at any instant (at most burst / 2
    // across the replicas, README "Leases") stay a small part of the count
    tokio::time::sleep(Duration::from_secs(8)).await;
    let key = topo.keys("rl:l:*").pop().expect("the bucket's key");
    let old = topo.master_of(&key);
    let kill_ms = start.elapsed().as_millis() as u64;
    topo.kill_node(old);
    let killed = Instant::now();
    let topo = Arc::new(topo);
    let t = topo.clone();
    let k = key.clone();
    let new =
        tokio::task::spawn_blocking(move || t.wait_promoted(old, &k, Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("a replica was promoted");
    let promoted = killed.elapsed();
    // shared again: every replica's breaker closed and the script runs on the new master
    let calls_at = |topo: &Topology| {
        let stats = topo.cli_at(new, &["INFO", "commandstats"]);
        stats
            .lines()
            .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum::<u64>()
    };
    let base = calls_at(&topo);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut open = 0;
        for e in &edges {
            open += metric(e, "edge_ratelimit_fallback").await;
        }
        if open == 0 && calls_at(&topo) > base + 20 {
            break;
        }
        assert!(Instant::now() < deadline, "never back on the shared bucket");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shared = killed.elapsed();
    let shared_ms = start.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(5)).await;
    load.stop.store(true, Ordering::Relaxed);
    for t in load.tasks {
        t.await.unwrap();
    }
    let end_ms = start.elapsed().as_millis() as u64;
    let records = load.records.lock().unwrap().clone();

    let bad: Vec<&Record> = records
        .iter()
        .filter(|(_, s)| *s != 200 && *s != 429)
        .collect();
    assert!(
        bad.is_empty(),
        "no 5xx or failed request: {:?}",
        &bad[..bad.len().min(10)]
    );
    let before = admitted(&records, 0, kill_ms);
    let expected_before = BURST + RATE * kill_ms as f64 / 1000.0;
    // after the return: one second to settle, then whole seconds to the end
    let from = shared_ms + 1000;
    let after = admitted(&records, from, end_ms);
    let expected_after = RATE * (end_ms - from) as f64 / 1000.0;
    let gap = admitted(&records, kill_ms, from);
    let expected_gap = RATE * (from - kill_ms) as f64 / 1000.0;
    eprintln!(
        "{kind:?} failover: promoted after {promoted:?}, shared limiting again after {shared:?}; \
         admitted before {before} (expected {expected_before:.0}), during the gap {gap} \
         (shared rate would give {expected_gap:.0}), after {after} (expected {expected_after:.0}), \
         {} responses",
        records.len()
    );
    let dev = |got: usize, want: f64| (got as f64 - want).abs() / want;
    assert!(
        dev(before, expected_before) <= 0.05,
        "before the kill: {before} vs {expected_before:.0}"
    );
    assert!(
        dev(after, expected_after) <= 0.05,
        "after the return: {after} vs {expected_after:.0}"
    );
    // the local fallback (rate / replicas each) keeps the gap near the limit too
    assert!(
        (gap as f64) <= expected_gap * 1.5 + BURST,
        "during the gap: {gap} vs {expected_gap:.0}"
    );
    for e in &edges {
        assert!(
            e.logged("(failover)").await,
            "the change of master is logged"
        );
        assert_eq!(metric_labelled(e, "edge_redis_failovers_total").await, 1);
    }
}

#[tokio::test]
async fn a_cluster_failover_under_load_keeps_the_limit() {
    failover_under_load(Kind::Cluster).await;
}

#[tokio::test]
async fn a_sentinel_failover_under_load_keeps_the_limit() {
    failover_under_load(Kind::Sentinel).await;
}

/// What `/_edge/ready` says of Redis once it has looked at least once.
async fn redis_report(edge: &Edge) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Value = client()
            .get(edge.url("/_edge/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let redis = v["checks"]["redis"].clone();
        if redis["topology"]["error"].is_string() || Instant::now() > deadline {
            return redis;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An edge with one limited route on `redis_section`, started with `env`.
fn edge_on(u: &Upstream, redis_section: &str, env: &[(&str, &str)]) -> Edge {
    let route = crate::support::one_route(&[u.addr()], "")
        .replace("upstream = \"p\"\n", "upstream = \"p\"\nlimits = [\"l\"]\n");
    let conf = format!("{route}{redis_section}[limit.l]\nkey = \"ip\"\nrate = \"100/s\"\n");
    Edge::start_env("info", "", &conf, |_, _| String::new(), env)
}

#[tokio::test]
async fn a_wrong_password_is_named_served_around_and_recovered_from() {
    let topo = Topology::start(Kind::Standalone);
    topo.cli(&["CONFIG", "SET", "requirepass", "the-right-one"]);
    let u = Upstream::start("u");
    let section = format!(
        "[redis]\nurl = \"redis://127.0.0.1:{}/\"\npassword_env = \"EDGE_TEST_WRONG_REDIS_PASSWORD\"\ntimeout = \"50ms\"\n",
        topo.master_ports()[0]
    );
    let edge = edge_on(
        &u,
        &section,
        &[("EDGE_TEST_WRONG_REDIS_PASSWORD", "a-wrong-one")],
    );
    // it serves, on local buckets
    for _ in 0..5 {
        let r = client().get(edge.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let report = redis_report(&edge).await;
    assert_eq!(report["status"], "down", "{report}");
    let error = report["topology"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        error.contains("password") || error.contains("auth"),
        "the cause is named: {report}"
    );
    assert!(
        !report.to_string().contains("a-wrong-one"),
        "no secret in ready"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = edge.logs();
    let named = logs
        .lines()
        .filter(|l| l.contains("redis unreachable") && !l.contains("rate limits fall back"))
        .count();
    assert_eq!(named, 1, "one line names the cause:\n{logs}");
    assert!(!logs.contains("a-wrong-one"), "no secret in the logs");
    // the operator fixes Redis's side: the edge recovers by itself
    let fixed = Command::new(crate::support::need("redis-cli"))
        .args([
            "-p",
            &topo.master_ports()[0].to_string(),
            "-a",
            "the-right-one",
            "--no-auth-warning",
        ])
        .args(["CONFIG", "SET", "requirepass", "a-wrong-one"])
        .output()
        .unwrap();
    assert!(fixed.status.success());
    redis_ready(&edge).await;
    assert!(edge.logged("redis reachable").await);
}

#[tokio::test]
async fn a_wrong_master_name_a_foreign_ca_and_dead_seeds_are_named_and_served_around() {
    let u = Upstream::start("u");
    let sentinel = Topology::start(Kind::Sentinel);
    let wrong_name = sentinel.conf().replace(
        &format!(
            "master_name = \"{}\"",
            crate::support::topology::MASTER_NAME
        ),
        "master_name = \"nope\"",
    );
    let tls = Topology::start(Kind::TlsAcl);
    // a CA that did not sign the server's certificate
    let other_ca = tempfile::tempdir().unwrap();
    let made = Command::new(crate::support::need("openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=another CA",
        ])
        .arg("-keyout")
        .arg(other_ca.path().join("ca.key"))
        .arg("-out")
        .arg(other_ca.path().join("ca.pem"))
        .output()
        .unwrap();
    assert!(made.status.success());
    let conf = tls.conf();
    let start = conf.find("ca = \"").unwrap() + 6;
    let end = start + conf[start..].find('"').unwrap();
    let foreign_ca = format!(
        "{}{}{}",
        &conf[..start],
        other_ca.path().join("ca.pem").display(),
        &conf[end..]
    );
    let dead_seeds = format!(
        "[redis]\nmode = \"cluster\"\nurls = [\"redis://127.0.0.1:{}\", \"redis://127.0.0.1:{}\"]\ntimeout = \"50ms\"\n",
        crate::support::free_port(),
        crate::support::free_port()
    );
    for (what, section, needle) in [
        ("a wrong master name", wrong_name.as_str(), "master"),
        ("a foreign CA", foreign_ca.as_str(), "certificate"),
        ("dead seed nodes", dead_seeds.as_str(), "connect"),
    ] {
        let edge = edge_on(&u, section, &[]);
        let r = client().get(edge.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{what}: the site still answers");
        let report = redis_report(&edge).await;
        let error = report["topology"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert_eq!(
            report["topology"]["masters_reachable"], false,
            "{what}: {report}"
        );
        assert!(
            error.contains(needle),
            "{what}: the cause is named ({needle}): {report}"
        );
    }
}
