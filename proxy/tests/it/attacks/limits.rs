//! Limits against one abusive client: checked before the expensive parts (signatures, bot
//! questions), per user when the policy says so, and per network for IPv6.

use crate::support::auth::PASSWORD;
use crate::support::edge::Edge;
use crate::support::redis::Redis;
use crate::support::site::site_with_routes;
use crate::support::upstream::Upstream;
use crate::support::{client, client_from};
use reqwest::StatusCode;

#[tokio::test]
async fn a_flood_of_junk_tokens_is_refused_by_the_limit_before_any_signature_check() {
    let site = site_with_routes(
        "[limit.per-ip]\nkey = \"ip\"\nrate = \"1/m\"\nburst = 5\n\
         [[route]]\nname = \"guarded\"\npath = \"/guarded\"\nupstream = \"movies\"\n\
         auth = \"required\"\nlimits = [\"per-ip\"]\n",
    );
    let mut statuses = Vec::new();
    for i in 0..40 {
        let forged = format!("Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.{i}");
        let r = site.get("/guarded/x", &[("authorization", &forged)]).await;
        statuses.push(r.status().as_u16());
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(unauthorized, 5, "{statuses:?}");
    assert_eq!(limited, 35, "{statuses:?}");
    let r = site
        .get("/guarded/x", &[("authorization", "Bearer junk")])
        .await;
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
}

#[tokio::test]
async fn user_keyed_limits_count_per_verified_user_not_per_address() {
    let site = site_with_routes(
        "[limit.per-user]\nkey = \"user\"\nrate = \"1/m\"\nburst = 3\n\
         [[route]]\nname = \"mine\"\npath = \"/mine\"\nupstream = \"movies\"\n\
         auth = \"optional\"\nlimits = [\"per-user\"]\n",
    );
    site.s.create_user("ann@example.com", &[]);
    site.s.create_user("bob@example.com", &[]);
    let ann = site.token_of("ann@example.com").await;
    let bob = site.token_of("bob@example.com").await;
    let admitted = |c: reqwest::Client, token: Option<String>, n: usize| {
        let url = site.s.url("/mine/x");
        async move {
            let mut ok = 0;
            for _ in 0..n {
                let mut req = c.get(&url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                if req.send().await.unwrap().status() == StatusCode::OK {
                    ok += 1;
                }
            }
            ok
        }
    };
    // two users behind one address: a bucket each
    assert_eq!(
        admitted(client_from("127.0.0.1"), Some(ann.clone()), 5).await,
        3
    );
    assert_eq!(
        admitted(client_from("127.0.0.1"), Some(bob.clone()), 5).await,
        3
    );
    // one user from three addresses: still one bucket, already spent
    for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        assert_eq!(
            admitted(client_from(ip), Some(ann.clone()), 2).await,
            0,
            "{ip}"
        );
    }
    // anonymous requests count by address
    assert_eq!(admitted(client_from("127.0.0.5"), None, 5).await, 3);
    assert_eq!(admitted(client_from("127.0.0.6"), None, 5).await, 3);
    // keys name the subject, not an address
    let keys = site.s.redis.cli(&["--scan", "--pattern", "rl:per-user:*"]);
    let c = crate::support::auth::claims(&ann).1;
    assert!(
        keys.contains(&format!("rl:per-user:user:{}", c["sub"].as_str().unwrap())),
        "{keys}"
    );
    assert!(keys.contains("rl:per-user:ip:127.0.0.5/32"), "{keys}");
    // the token still works for the owner's other routes: only this policy is spent
    let _ = PASSWORD;
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64_and_mapped_addresses_as_ipv4() {
    let u = Upstream::start("u");
    let redis = Redis::start();
    let v6_port = free_port_v6();
    let conf = format!(
        "[redis]\nurl = \"{r}\"\ntimeout = \"50ms\"\n\
         [client_ip]\ntrusted_proxies = [\"127.0.0.1\"]\n\
         [limit.per-ip]\nkey = \"ip\"\nrate = \"1/m\"\nburst = 2\n\
         [[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"p\"\nlimits = [\"per-ip\"]\n\
         [upstream.p]\nservers = [\"{a}\"]\n",
        r = redis.url(),
        a = u.addr(),
    );
    let edge = Edge::start_with(&conf, |_, _| {
        format!("[[listener]]\naddress = \"[::1]:{v6_port}\"\n")
    });
    let http = client();
    let statuses = |xff: &'static str| {
        let http = http.clone();
        let url = edge.url("/x");
        async move {
            let mut out = Vec::new();
            for _ in 0..3 {
                let r = http
                    .get(&url)
                    .header("x-forwarded-for", xff)
                    .send()
                    .await
                    .unwrap();
                out.push(r.status().as_u16());
            }
            out
        }
    };
    // three addresses of one /64 (through a trusted proxy): one bucket of 2
    assert_eq!(statuses("2001:db8:1:2::1").await, [200, 200, 429]);
    assert_eq!(statuses("2001:db8:1:2:ffff::9").await, [429, 429, 429]);
    // the next /64 is another client
    assert_eq!(statuses("2001:db8:1:3::1").await, [200, 200, 429]);
    // an IPv4-mapped address is the IPv4 client it carries
    assert_eq!(statuses("198.51.100.7").await, [200, 200, 429]);
    assert_eq!(statuses("::ffff:198.51.100.7").await, [429, 429, 429]);
    // straight from the IPv6 loopback listener: the socket peer ::1, counted as ::/64
    let url = format!("http://[::1]:{v6_port}/x");
    let mut direct = Vec::new();
    for _ in 0..3 {
        let r = http.get(&url).send().await.unwrap();
        direct.push(r.status().as_u16());
        if r.status() == StatusCode::OK {
            let seen: serde_json::Value = r.json().await.unwrap();
            assert_eq!(seen["headers"]["x-real-ip"], "::1");
        }
    }
    assert_eq!(direct, [200, 200, 429]);
    let keys = redis.cli(&["--scan", "--pattern", "rl:per-ip:*"]);
    assert!(keys.contains("rl:per-ip:ip:2001:db8:1:2::/64"), "{keys}");
    assert!(keys.contains("rl:per-ip:ip:198.51.100.7/32"), "{keys}");
    assert!(keys.contains("rl:per-ip:ip:::/64"), "{keys}");
}

/// A port nobody listens on at [::1].
fn free_port_v6() -> u16 {
    std::net::TcpListener::bind("[::1]:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free IPv6 loopback port")
}

/// A TV app's API call, from `ip` through the trusted proxy (the test client).
async fn tv_get(edge: &Edge, ip: &str) -> reqwest::Response {
    crate::bot_filter::Tv {
        edge,
        ua: crate::bot_filter::TV,
        ip,
    }
    .get("/api/v1/movies", &[])
    .await
}

#[tokio::test]
async fn a_tv_flood_writes_a_bounded_number_of_questions() {
    let u = Upstream::start("u");
    let redis = Redis::start();
    let edge = Edge::start(&crate::bot_filter::conf(&u, Some(&redis), "1s"));
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..3000 {
        let r = tv_get(&edge, "198.51.100.7").await;
        *statuses.entry(r.status().as_u16()).or_default() += 1;
    }
    let questions = redis.cli(&["--scan", "--pattern", "bf:q:*"]);
    let written = questions.lines().filter(|l| !l.is_empty()).count();
    // 3 at once, plus one more per 40 s (challenge_ttl 2m / 3) while the flood lasts
    assert!(
        (1..=4).contains(&written),
        "{written} questions written: {statuses:?}"
    );
    assert!(
        statuses.get(&429).copied().unwrap_or(0) >= 2900,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get(&403).copied().unwrap_or(0),
        written,
        "{statuses:?}"
    );
    // another TV on another network is untouched
    let r = tv_get(&edge, "203.0.113.8").await;
    assert_eq!(r.status(), StatusCode::OK, "under its rate: untouched");
}

#[tokio::test]
async fn client_limits_answer_before_the_bot_filter_asks() {
    let u = Upstream::start("u");
    let redis = Redis::start();
    let conf = crate::bot_filter::conf(&u, Some(&redis), "1s").replace(
        "[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"p\"\n",
        "[limit.per-ip]\nkey = \"ip\"\nrate = \"1/m\"\nburst = 7\n\
         [[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"p\"\nlimits = [\"per-ip\"]\n",
    );
    assert!(conf.contains("limits = [\"per-ip\"]"), "{conf}");
    let edge = Edge::start(&conf);
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = tv_get(&edge, "198.51.100.9").await;
        let status = r.status().as_u16();
        if status == 429 {
            // the limit's answer (it names its policy), not the bot filter's
            let policy = r
                .headers()
                .get("ratelimit-policy")
                .map(|v| v.to_str().unwrap().to_string());
            assert!(
                policy.is_some_and(|p| p.contains("per-ip")),
                "429 without the policy"
            );
        }
        statuses.push(status);
    }
    // the 7 the limit admits: 5 at a human rate, then the filter asks; the rest never reach it
    let mut want = vec![200; 5];
    want.extend([403; 2]);
    want.extend([429; 23]);
    assert_eq!(statuses, want);
    let questions = redis.cli(&["--scan", "--pattern", "bf:q:*"]);
    assert_eq!(questions.lines().filter(|l| !l.is_empty()).count(), 2);
}

#[tokio::test]
async fn a_concurrent_burst_within_the_limit_is_admitted_and_one_beyond_it_is_not() {
    let u = Upstream::start("u");
    let redis = Redis::start();
    let edge = Edge::start(&format!(
        "[redis]\nurl = \"{r}\"\ntimeout = \"50ms\"\n\
         [limit.leased]\nkey = \"ip\"\nrate = \"1/m\"\nburst = 100\nlease = 10\n\
         [[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"p\"\nlimits = [\"leased\"]\n\
         [[route]]\nname = \"warm\"\npath = \"/warm\"\nupstream = \"p\"\n\
         [upstream.p]\nservers = [\"{a}\"]\n",
        r = redis.url(),
        a = u.addr(),
    ));
    // each client holds a connection already (through the unlimited route), and all wait at
    // a barrier: the requests reach the edge together, before any lease exists
    let burst = |n: usize| {
        let (url, warm) = (edge.url("/x"), edge.url("/warm"));
        async move {
            let clients: Vec<reqwest::Client> = (0..n).map(|_| client()).collect();
            for c in &clients {
                assert_eq!(c.get(&warm).send().await.unwrap().status(), 200);
            }
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
            let mut set = tokio::task::JoinSet::new();
            for c in clients {
                let (url, barrier) = (url.clone(), barrier.clone());
                set.spawn(async move {
                    barrier.wait().await;
                    c.get(url).send().await.map(|r| r.status().as_u16())
                });
            }
            let mut ok = 0;
            while let Some(r) = set.join_next().await {
                ok += usize::from(r.unwrap().unwrap() == 200);
            }
            ok
        }
    };
    // each concurrent request that finds no lease takes one of 10 tokens from Redis; their
    // tokens pool instead of replacing each other, so all 30 fit in the burst of 100
    assert_eq!(burst(30).await, 30);
    // and the bucket still holds: 100 in all at most (leased tokens left unspent when their
    // lease expires are lost, so it can be fewer)
    let more = burst(150).await;
    assert!(
        more <= 70,
        "{more} more admitted after 30 of a burst of 100"
    );
}
