//! The site outlives its auth service: the core's database stopped under load, a core that
//! runs elsewhere (JWKS) going away, and what `/_edge/health` and `/_edge/ready` report.

use crate::support::auth::{error_of, PASSWORD};
use crate::support::client;
use crate::support::edge::Edge;
use crate::support::site::{site, Site};
use crate::support::upstream::Upstream;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn ready(edge_url: &str) -> (StatusCode, Value) {
    let r = client()
        .get(format!("{edge_url}/_edge/ready"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// Valid-token and public requests from `clients` tasks until `stop`: (ok, failed).
fn load(site: &Site, token: &str, clients: usize, stop: Arc<AtomicBool>) -> LoadCounters {
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        let http = client();
        let auth = format!("Bearer {token}");
        let (premium, public) = (site.s.url("/premium/x"), site.s.url("/pub/x"));
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let req = if i % 2 == 0 {
                    http.get(&premium).header("authorization", &auth)
                } else {
                    http.get(&public)
                };
                match req.send().await {
                    Ok(r) if r.status() == StatusCode::OK => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    LoadCounters { ok, failed, tasks }
}

struct LoadCounters {
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[tokio::test]
async fn the_site_outlives_its_auth_database_and_recovers_with_it() {
    let site = site();
    site.s.create_user("viewer@example.com", &["subscriber"]);
    let token = site.token_of("viewer@example.com").await;
    let pair = site.s.login("viewer@example.com", PASSWORD).await;
    let edge = site.s.url("");
    let edge = edge.trim_end_matches('/');

    let (status, report) = ready(edge).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["checks"]["database"]["status"], "up", "{report}");
    assert_eq!(report["auth_available"], true);

    let stop = Arc::new(AtomicBool::new(false));
    let counters = load(&site, &token, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    site.s.pg.stop();

    // the core's probe notices within a couple of seconds; /_edge/ready shows it
    let started = Instant::now();
    let mut report = Value::Null;
    while started.elapsed() < Duration::from_secs(6) {
        report = ready(edge).await.1;
        if report["checks"]["database"]["status"] == "down" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report["checks"]["database"]["status"], "down", "{report}");
    assert_eq!(report["status"], "degraded");
    assert_eq!(report["auth_available"], false);
    assert_eq!(report["tokens_verified"], true);

    // the circuit is open: the core answers 503 at once instead of waiting for a connection
    for _ in 0..10 {
        let started = Instant::now();
        let r = site.s.login_raw("viewer@example.com", PASSWORD, "t").await;
        let elapsed = started.elapsed();
        assert_eq!(r.headers()["retry-after"], "1");
        let (status, body) = error_of(r).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "unavailable");
        assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(
            elapsed < Duration::from_millis(100),
            "login took {elapsed:?}"
        );
    }
    let started = Instant::now();
    let r = site
        .s
        .refresh(pair["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_millis(100));
    // the JWKS needs no database
    let jwks = client()
        .get(site.s.url("/auth/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_secs(1)).await;
    site.s.pg.restart();
    // back by itself: the probe closes the circuit within about half a second
    let started = Instant::now();
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    while started.elapsed() < Duration::from_secs(10) {
        status = site
            .s
            .login_raw("viewer@example.com", PASSWORD, "t")
            .await
            .status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK, "login did not recover");
    let report = ready(edge).await.1;
    assert_eq!(report["checks"]["database"]["status"], "up", "{report}");
    assert_eq!(report["auth_available"], true);

    stop.store(true, Ordering::Relaxed);
    for t in counters.tasks {
        let _ = t.await;
    }
    let (ok, failed) = (
        counters.ok.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
    );
    eprintln!("through the outage: {ok} requests served, {failed} failed");
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    assert!(ok > 200, "too little load to mean anything: {ok}");
    assert!(site.s.edge.logged("auth database unreachable").await);
    assert!(site.s.edge.logged("auth database reachable again").await);
}

#[tokio::test]
async fn health_and_ready_report_the_edge_and_its_dependencies() {
    let site = site();
    let edge = site.s.url("");
    let edge = edge.trim_end_matches('/');
    let health = client()
        .get(format!("{edge}/_edge/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.headers()["content-type"], "application/json");
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");

    // Redis is pinged in the background: up within a second or so
    let started = Instant::now();
    let mut report = Value::Null;
    while started.elapsed() < Duration::from_secs(5) {
        report = ready(edge).await.1;
        if report["status"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report["status"], "ready", "{report}");
    let checks = &report["checks"];
    assert_eq!(checks["redis"]["status"], "up");
    assert_eq!(checks["auth_core"]["status"], "up");
    assert_eq!(checks["auth_core"]["mode"], "embedded");
    assert_eq!(checks["token_keys"]["status"], "up");
    assert_eq!(checks["token_keys"]["source"], "dir");
    for pool in ["auth", "movies"] {
        assert_eq!(checks["upstreams"][pool]["status"], "up", "{report}");
        assert_eq!(checks["upstreams"][pool]["servers"], 1);
    }

    site.s.redis.cli(&["SHUTDOWN", "NOSAVE"]);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        report = ready(edge).await.1;
        if report["checks"]["redis"]["status"] == "down" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report["checks"]["redis"]["status"], "down", "{report}");
    assert_eq!(report["status"], "degraded");
    assert!(report["checks"]["redis"]["error"].is_string());
}

#[tokio::test]
async fn ready_is_only_for_allowed_clients_but_health_is_for_everyone() {
    let u = Upstream::start("u");
    let edge = Edge::start(&format!(
        "[metrics]\nallow = [\"10.0.0.0/8\"]\n{}",
        crate::support::one_route(&[u.addr()], "")
    ));
    let get = |path: &str| client().get(edge.url(path)).send();
    assert_eq!(get("/_edge/ready").await.unwrap().status(), 404);
    assert_eq!(get("/_edge/health").await.unwrap().status(), 200);
    // without [auth] and [redis], those checks say so
    let open = Edge::start(&crate::support::one_route(&[u.addr()], ""));
    let r = client().get(open.url("/_edge/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(report["checks"]["redis"]["status"], "not_configured");
    assert_eq!(report["checks"]["auth_core"]["status"], "not_configured");
    assert_eq!(report["checks"]["upstreams"]["p"]["healthy"], 1);
}

/// A second edge that only knows the first one's JWKS URL, as an edge in front of a core
/// running elsewhere would.
fn remote_edge(site: &Site, up: &Upstream) -> Edge {
    Edge::start(&remote_conf(site, up, "cinema"))
}

fn remote_conf(site: &Site, up: &Upstream, audience: &str) -> String {
    format!(
        "[auth]\njwks_url = \"{jwks}\"\nissuer = \"https://cinema.test\"\naudience = \"{audience}\"\n\
         token_cookie = \"access_token\"\nkeys_reload_interval = \"1h\"\n\
         [upstream.movies]\nservers = [\"{a}\"]\n\
         [[route]]\nname = \"required\"\npath = \"/req\"\nupstream = \"movies\"\nauth = \"required\"\n",
        jwks = site.s.url("/auth/.well-known/jwks.json"),
        a = up.addr(),
    )
}

/// The status of `/req/x` on `edge` with `token` as the bearer.
async fn status_of(edge: &Edge, token: &str) -> u16 {
    let r = client().get(edge.url("/req/x")).bearer_auth(token).send();
    r.await.unwrap().status().as_u16()
}

/// Token settings of an edge in front of a remote core are live: a reload that fixes the
/// audience makes the same token valid, with no restart.
#[tokio::test]
async fn token_settings_change_on_a_running_edge() {
    let site = site();
    site.s.create_user("viewer@example.com", &["subscriber"]);
    let up = Upstream::start("movies");
    let remote = Edge::start(&remote_conf(&site, &up, "another-site"));
    let token = site.token_of("viewer@example.com").await;
    assert_eq!(status_of(&remote, &token).await, 401, "another audience");
    remote.write_routes(&remote_conf(&site, &up, "cinema"));
    let mut status = 0;
    for _ in 0..50 {
        status = status_of(&remote, &token).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "{}", remote.logs());
    let applied = remote
        .json_logs()
        .iter()
        .filter_map(|l| l["applied"].as_str().map(str::to_string))
        .collect::<Vec<_>>();
    assert!(
        applied
            .iter()
            .any(|a| a.contains("[auth] token verification")),
        "{applied:?}"
    );
}

/// A reload to a key source that cannot be read is refused (every signed-in viewer would get
/// 401); a reload that keeps the source keeps its keys, even while the core is down.
#[tokio::test]
async fn a_reload_never_leaves_the_edge_without_token_keys() {
    let site = site();
    site.s.create_user("viewer@example.com", &["subscriber"]);
    let up = Upstream::start("movies");
    let conf = remote_conf(&site, &up, "cinema");
    let remote = Edge::start(&conf);
    let token = site.token_of("viewer@example.com").await;
    assert_eq!(status_of(&remote, &token).await, 200);
    let logged = |what: &str| {
        remote
            .json_logs()
            .iter()
            .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with(what)))
            .count()
    };

    let jwks = site.s.url("/auth/.well-known/jwks.json");
    remote.write_routes(&conf.replace(&jwks, "http://127.0.0.1:1/jwks.json"));
    let refused = crate::support::eventually(Duration::from_secs(5), || {
        logged("configuration refused") == 1
    })
    .await;
    assert!(refused, "{}", remote.logs());
    assert!(
        remote.logs().contains("jwks_url"),
        "the refusal names the key"
    );
    assert_eq!(
        status_of(&remote, &token).await,
        200,
        "the old keys still verify"
    );

    // the core goes away; a change of the cookie name alone keeps the keys in memory
    site.s.edge.signal("KILL");
    tokio::time::sleep(Duration::from_millis(200)).await;
    remote.write_routes(&conf.replace("token_cookie = \"access_token\"", "token_cookie = \"tok\""));
    let reloaded = crate::support::eventually(Duration::from_secs(5), || {
        logged("configuration reloaded") == 1
    })
    .await;
    assert!(reloaded, "{}", remote.logs());
    assert_eq!(status_of(&remote, &token).await, 200, "{}", remote.logs());
}

#[tokio::test]
async fn an_edge_trusts_a_remote_core_through_its_jwks_and_outlives_it() {
    let site = site();
    site.s.create_user("viewer@example.com", &["subscriber"]);
    let up = Upstream::start("movies");
    let remote = remote_edge(&site, &up);
    let token = site.token_of("viewer@example.com").await;
    let get = |token: &str, cookie: bool| {
        let req = client().get(remote.url("/req/x"));
        if cookie {
            req.header("cookie", format!("theme=dark; access_token={token}"))
        } else {
            req.bearer_auth(token)
        }
        .send()
    };
    let r = get(&token, false).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-auth-status"], "verified");
    assert_eq!(
        get(&token, true).await.unwrap().status(),
        StatusCode::OK,
        "cookie"
    );

    // a rotation at the core: the new kid makes the remote edge fetch the JWKS again
    assert!(site.s.cmd(&["keys", "rotate"], None).status.success());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rotated = site.token_of("viewer@example.com").await;
    assert_ne!(
        crate::support::auth::claims(&token).0["kid"],
        crate::support::auth::claims(&rotated).0["kid"]
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&rotated, false).await.unwrap().status(), StatusCode::OK);

    // the core goes away: both tokens keep working on the remote edge
    site.s.edge.signal("KILL");
    tokio::time::sleep(Duration::from_millis(200)).await;
    for t in [&token, &rotated] {
        assert_eq!(get(t, false).await.unwrap().status(), StatusCode::OK);
    }
    // a token with an unknown kid makes it try the JWKS, which fails: refused, and reported
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut parts = rotated.splitn(2, '.');
    let (h, rest) = (parts.next().unwrap(), parts.next().unwrap());
    let mut header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    header["kid"] = Value::String("unknown".into());
    let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
    let started = Instant::now();
    assert_eq!(get(&forged, false).await.unwrap().status(), 401);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the fetch is bounded"
    );
    let (status, report) = ready(remote.url("").trim_end_matches('/')).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["checks"]["auth_core"]["status"], "down", "{report}");
    assert_eq!(report["checks"]["auth_core"]["mode"], "remote");
    assert_eq!(report["checks"]["token_keys"]["status"], "up");
    assert_eq!(report["checks"]["token_keys"]["keys"], 2);
    assert!(report["checks"]["token_keys"]["refresh_error"].is_string());
    assert_eq!(report["tokens_verified"], true);
    assert_eq!(report["auth_available"], false);
}
