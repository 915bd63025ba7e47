use crate::support::{client, edge::Edge, eventually, free_port, one_route, upstream::Upstream};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

async fn server_of(edge: &Edge, path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = client().get(edge.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["server"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn round_robin_spreads_requests_evenly() {
    let ups: Vec<Upstream> = ["a", "b", "c"].iter().map(|n| Upstream::start(n)).collect();
    let servers: Vec<String> = ups.iter().map(Upstream::addr).collect();
    let edge = Edge::start(&one_route(&servers, ""));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..30 {
        *counts.entry(server_of(&edge, "/x", &[]).await).or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(
        counts.values().all(|&n| n == 10),
        "round robin must be even: {counts:?}"
    );
}

#[tokio::test]
async fn consistent_hash_keeps_a_key_on_one_server() {
    let ups: Vec<Upstream> = ["a", "b", "c"].iter().map(|n| Upstream::start(n)).collect();
    let servers: Vec<String> = ups.iter().map(Upstream::addr).collect();
    let edge = Edge::start(&one_route(
        &servers,
        "balance = \"consistent_hash\"\nhash_key = \"header:x-session\"\n",
    ));
    let mut owners = HashMap::new();
    for user in 0..30 {
        let key = format!("user-{user}");
        let first = server_of(&edge, "/x", &[("x-session", &key)]).await;
        for _ in 0..3 {
            assert_eq!(
                server_of(&edge, "/y", &[("x-session", &key)]).await,
                first,
                "{key} moved"
            );
        }
        owners.insert(key, first);
    }
    let distinct: std::collections::HashSet<_> = owners.values().collect();
    assert!(
        distinct.len() >= 2,
        "30 keys all hashed to one server: {owners:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_on_another_server() {
    let live = Upstream::start("live");
    let dead = free_port();
    let edge = Edge::start(&one_route(
        &[format!("127.0.0.1:{dead}"), live.addr()],
        "retries = 1\n",
    ));
    for _ in 0..20 {
        assert_eq!(server_of(&edge, "/x", &[]).await, "live");
    }
    assert_eq!(live.hits(), 20);
    assert!(
        edge.logged("upstream connect failed").await,
        "the failed attempt is logged"
    );
}

#[tokio::test]
async fn health_checks_take_a_server_out_and_back() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let edge = Edge::start(&one_route(
        &[a.addr(), b.addr()],
        "retries = 0\nhealth_check = { path = \"/health\", interval = \"100ms\", timeout = \"500ms\" }\n",
    ));
    b.set_healthy(false);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = b.hits();
    for _ in 0..20 {
        assert_eq!(
            server_of(&edge, "/x", &[]).await,
            "a",
            "an unhealthy server got traffic"
        );
    }
    assert_eq!(b.hits(), before);
    assert!(edge
        .logs()
        .contains("upstream server failed its health check"));

    b.set_healthy(true);
    let mut back = false;
    for _ in 0..40 {
        if server_of(&edge, "/x", &[]).await == "b" {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "a recovered server must receive traffic again");
    assert!(
        eventually(Duration::from_secs(2), || edge
            .logs()
            .contains("upstream server is healthy again"))
        .await
    );
}

#[tokio::test]
async fn consistent_hash_on_the_verified_user_spreads_users_and_keeps_each_on_one_server() {
    let ups: Vec<Upstream> = ["a", "b", "c"].iter().map(|n| Upstream::start(n)).collect();
    let list: Vec<String> = ups.iter().map(|u| format!("\"{}\"", u.addr())).collect();
    let site = crate::support::site::site_with_routes(&format!(
        "[upstream.trio]\nservers = [{}]\nbalance = \"consistent_hash\"\nhash_key = \"user\"\n\
         [[route]]\nname = \"hashed\"\npath = \"/hashed\"\nupstream = \"trio\"\nauth = \"required\"\n",
        list.join(", ")
    ));
    let mut owners = HashMap::new();
    for n in 0..30 {
        let mut c = crate::support::site::good_claims();
        c.sub = format!("01890000-0000-7000-8000-0000000001{n:02}");
        let bearer = format!("Bearer {}", site.signed(&c));
        // a spoofed identity header is stripped before the balancer, whatever it says
        let headers = [
            ("authorization", bearer.as_str()),
            ("x-user-id", "same-for-all"),
        ];
        let server = |r: reqwest::Response| async move {
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["server"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let first = server(site.get("/hashed/x", &headers).await).await;
        for _ in 0..3 {
            assert_eq!(
                server(site.get("/hashed/y", &headers).await).await,
                first,
                "{} moved",
                c.sub
            );
        }
        owners.insert(c.sub, first);
    }
    let distinct: std::collections::HashSet<_> = owners.values().collect();
    assert!(
        distinct.len() >= 2,
        "30 users all on one server: {owners:?}"
    );
}
