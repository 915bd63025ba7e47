//! Rate limiting with a real Redis and several real edge processes.

use crate::support::{
    client, edge::Edge, eventually, free_port, one_route, redis::Redis, upstream::Upstream,
};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One limited catch-all route; `redis` may be None (no [redis] at all).
fn conf(u: &Upstream, redis: Option<&str>, limit: &str, extra: &str) -> String {
    let redis = redis.map_or(String::new(), |url| {
        format!("[redis]\nurl = \"{url}\"\ntimeout = \"50ms\"\n")
    });
    let route = one_route(&[u.addr()], "")
        .replace("upstream = \"p\"\n", "upstream = \"p\"\nlimits = [\"l\"]\n");
    format!("{route}{redis}[limit.l]\n{limit}\n{extra}")
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn allowed_and_refused_responses_carry_the_headers_and_a_json_429() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    let edge = Edge::start(&conf(
        &u,
        Some(&redis.url()),
        "key = \"ip\"\nrate = \"1/m\"\nburst = 3",
        "",
    ));
    for remaining in ["2", "1", "0"] {
        let r = get(&edge.url("/x"), &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ratelimit-limit"], "3");
        assert_eq!(r.headers()["ratelimit-remaining"], remaining);
        assert_eq!(r.headers()["ratelimit-policy"], "3;w=180;name=\"l\"");
        assert!(
            r.headers()["ratelimit-reset"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 0
        );
    }
    let r = get(&edge.url("/x"), &[("x-request-id", "rid-429")]).await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.headers()["retry-after"],
        "60",
        "1/m: the next token comes in 60 s"
    );
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": "rate limit exceeded", "code": "rate_limited", "request_id": "rid-429"})
    );
    assert_eq!(u.hits(), 3, "refused requests never reach the upstream");
    // the bucket lives in Redis and expires once it would be full again
    let keys = redis.cli(&["KEYS", "rl:*"]);
    assert_eq!(keys, "rl:l:ip:127.0.0.1/32");
    let ttl: i64 = redis
        .cli(&["PTTL", "rl:l:ip:127.0.0.1/32"])
        .parse()
        .unwrap();
    assert!(ttl > 170_000 && ttl <= 180_001, "{ttl}");
}

#[tokio::test]
async fn a_refused_client_costs_no_redis_call() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    let edge = Edge::start(&conf(
        &u,
        Some(&redis.url()),
        "key = \"ip\"\nrate = \"1/m\"\nburst = 2",
        "",
    ));
    for _ in 0..3 {
        get(&edge.url("/x"), &[]).await;
    }
    let calls = || redis.command_calls("evalsha") + redis.command_calls("eval");
    let before = calls();
    for _ in 0..100 {
        assert_eq!(get(&edge.url("/x"), &[]).await.status(), 429);
    }
    let per_request = (calls() - before) as f64 / 100.0;
    assert!(
        per_request <= 0.2,
        "{per_request} Redis calls per refused request"
    );
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    let limit = "key = \"ip\"\nrate = \"1/m\"\nburst = 1";
    let untrusted = Edge::start(&conf(&u, Some(&redis.url()), limit, ""));
    assert_eq!(
        get(&untrusted.url("/x"), &[("x-forwarded-for", "1.1.1.1")])
            .await
            .status(),
        200
    );
    let r = get(&untrusted.url("/x"), &[("x-forwarded-for", "2.2.2.2")]).await;
    assert_eq!(
        r.status(),
        429,
        "a client cannot pick a fresh IP with X-Forwarded-For"
    );

    redis.cli(&["FLUSHALL"]);
    let trusted = Edge::start(&conf(
        &u,
        Some(&redis.url()),
        limit,
        "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    ));
    for ip in ["3.3.3.3", "4.4.4.4", "5.5.5.5"] {
        assert_eq!(
            get(&trusted.url("/x"), &[("x-forwarded-for", ip)])
                .await
                .status(),
            200,
            "{ip}"
        );
    }
    assert_eq!(
        get(&trusted.url("/x"), &[("x-forwarded-for", "3.3.3.3")])
            .await
            .status(),
        429
    );
    assert_eq!(
        get(&trusted.url("/x"), &[("forwarded", "for=6.6.6.6")])
            .await
            .status(),
        200
    );
    let keys = redis.cli(&["KEYS", "rl:l:ip:3.3.3.3/32"]);
    assert_eq!(keys, "rl:l:ip:3.3.3.3/32");
    // the access log shows the resolved client
    let logged = eventually(Duration::from_secs(3), || {
        trusted
            .json_logs()
            .iter()
            .any(|l| l["target"] == "edge::access" && l["client_ip"] == "4.4.4.4")
    })
    .await;
    assert!(logged, "{}", trusted.logs());
}

/// One value from the edge's /_edge/metrics.
pub(crate) async fn metric(edge: &Edge, name: &str) -> u64 {
    let text = edge.metrics_text().await;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name} "))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
}

/// Sends requests from `clients` tasks spread over the edges until `until`; counts statuses.
async fn load(urls: Vec<String>, clients: usize, until: Instant) -> (usize, usize, usize) {
    let (ok, limited, other) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut tasks = Vec::new();
    for i in 0..clients {
        let url = urls[i % urls.len()].clone();
        let (ok, limited, other) = (ok.clone(), limited.clone(), other.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            while Instant::now() < until {
                match c.get(&url).send().await.map(|r| r.status().as_u16()) {
                    Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(429) => limited.fetch_add(1, Ordering::Relaxed),
                    _ => other.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (
        ok.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    )
}

/// Three edges flooded through one key for 10 s admit the configured amount ±5 %.
/// Returns what must outlive the caller's checks.
async fn three_replicas_flooding_one_key(rate: u64, burst: u64) -> (Vec<Edge>, Upstream, Redis) {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    let text = conf(
        &u,
        Some(&redis.url()),
        &format!("key = \"route\"\nrate = \"{rate}/s\"\nburst = {burst}"),
        "[rate_limit]\nreplicas = 3\n",
    );
    let edges: Vec<Edge> = (0..3).map(|_| Edge::start(&text)).collect();
    let urls = edges.iter().map(|e| e.url("/x")).collect();
    let started = Instant::now();
    let (ok, limited, other) = load(urls, 6, started + Duration::from_secs(10)).await;
    let expected = rate as f64 * started.elapsed().as_secs_f64() + burst as f64;
    let deviation = (ok as f64 - expected).abs() / expected;
    eprintln!("three replicas, {rate}/s burst {burst}: admitted {ok} (expected {expected:.0}), limited {limited}");
    assert_eq!(other, 0);
    assert!(
        limited > ok,
        "the load must exceed the limit to test it ({ok} ok, {limited} limited)"
    );
    assert!(
        deviation <= 0.05,
        "admitted {ok}, expected {expected:.0} ±5% (limited {limited})"
    );
    (edges, u, redis)
}

#[tokio::test]
async fn three_replicas_share_one_limit() {
    // a small bucket: adaptive leases stay off (burst / (2 × replicas) is one token)
    three_replicas_flooding_one_key(20, 10).await;
}

#[tokio::test]
async fn three_replicas_with_adaptive_leases_keep_the_limit() {
    // burst / (2 × replicas) = 40 tokens: leases are on by default, and must shrink to one
    // decision per request as the flood empties the bucket
    let (edges, _u, _redis) = three_replicas_flooding_one_key(150, 240).await;
    let mut hits = 0;
    for e in &edges {
        hits += metric(e, "edge_ratelimit_lease_hits_total").await;
    }
    assert!(hits > 0, "the full bucket at the start was leased");
}

#[tokio::test]
async fn redis_dying_mid_run_falls_back_locally_and_recovers() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    let port = redis.port;
    let text = conf(
        &u,
        Some(&redis.url()),
        "key = \"route\"\nrate = \"30/s\"\nburst = 15",
        "[rate_limit]\nreplicas = 3\nbreaker_cooldown = \"300ms\"\n",
    );
    let edges: Vec<Edge> = (0..3).map(|_| Edge::start(&text)).collect();
    let urls: Vec<String> = edges.iter().map(|e| e.url("/x")).collect();

    let (ok, _, other) = load(urls.clone(), 6, Instant::now() + Duration::from_secs(2)).await;
    assert_eq!(other, 0);
    assert!(
        ok <= 15 + 30 * 2 + 5,
        "shared limit before the outage: {ok}"
    );

    assert_eq!(metric(&edges[0], "edge_ratelimit_fallback").await, 0);

    redis.kill();
    let started = Instant::now();
    let (ok, limited, other) = load(urls.clone(), 6, started + Duration::from_secs(3)).await;
    assert_eq!(
        other, 0,
        "Redis down must cause no 5xx (and no transport error)"
    );
    assert!(limited > 0);
    // each replica: 10/s with a burst of 5 → the three together: 30/s + 15
    let bound = (15.0 + 30.0 * started.elapsed().as_secs_f64()) * 1.1;
    eprintln!("Redis down for 3 s: admitted {ok}, limited {limited}, bound {bound:.0}");
    assert!(
        (ok as f64) <= bound,
        "fallback admitted {ok}, bound {bound:.0}"
    );
    assert!(ok as f64 >= bound * 0.5, "fallback admitted too few: {ok}");
    for e in &edges {
        assert!(
            e.logged("redis unreachable: rate limits fall back").await,
            "{}",
            e.logs()
        );
    }
    assert_eq!(
        metric(&edges[0], "edge_ratelimit_fallback").await,
        1,
        "the fallback shows as a metric"
    );
    assert!(metric(&edges[0], "edge_ratelimit_fallback_decisions_total").await > 0);

    let redis = Redis::start_on(port);
    let (_, _, other) = load(urls, 6, Instant::now() + Duration::from_secs(3)).await;
    assert_eq!(other, 0);
    assert!(
        redis.command_calls("evalsha") + redis.command_calls("eval") > 0,
        "shared limiting resumed"
    );
    for e in &edges {
        assert!(
            e.logged("shared rate limiting resumed").await,
            "{}",
            e.logs()
        );
        assert_eq!(metric(e, "edge_ratelimit_fallback").await, 0);
    }
}

#[tokio::test]
async fn on_redis_down_deny_answers_503_and_allow_passes() {
    let u = Upstream::start("u");
    let dead = format!("redis://127.0.0.1:{}/", free_port());
    let deny = Edge::start(&conf(
        &u,
        Some(&dead),
        "key = \"ip\"\nrate = \"100/s\"\non_redis_down = \"deny\"",
        "",
    ));
    let started = Instant::now();
    let r = get(&deny.url("/x"), &[("x-request-id", "rid-503")]).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "never hangs on a dead Redis"
    );
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate limiter unavailable");
    assert_eq!(body["request_id"], "rid-503");

    let allow = Edge::start(&conf(
        &u,
        Some(&dead),
        "key = \"ip\"\nrate = \"1/m\"\nburst = 1\non_redis_down = \"allow\"",
        "",
    ));
    for _ in 0..5 {
        assert_eq!(get(&allow.url("/x"), &[]).await.status(), 200);
    }
}

#[tokio::test]
async fn without_redis_the_edge_limits_in_process_and_says_so() {
    let u = Upstream::start("u");
    let edge = Edge::start(&conf(
        &u,
        None,
        "key = \"header:x-api-key\"\nrate = \"1/m\"\nburst = 2",
        "",
    ));
    let key = [("x-api-key", "k1")];
    assert_eq!(get(&edge.url("/x"), &key).await.status(), 200);
    assert_eq!(get(&edge.url("/x"), &key).await.status(), 200);
    assert_eq!(get(&edge.url("/x"), &key).await.status(), 429);
    assert_eq!(
        get(&edge.url("/x"), &[("x-api-key", "k2")]).await.status(),
        200,
        "another key, another bucket"
    );
    assert!(edge.logged("no [redis] configured").await);
}

#[tokio::test]
async fn metrics_are_served_only_to_allowed_clients() {
    let u = Upstream::start("u");
    let limit = "key = \"ip\"\nrate = \"1/m\"\nburst = 1";
    let edge = Edge::start(&conf(&u, None, limit, ""));
    get(&edge.url("/x"), &[]).await;
    get(&edge.url("/x"), &[]).await;
    let r = get(&edge.url("/_edge/metrics"), &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "# TYPE edge_ratelimit_denied_total counter\nedge_ratelimit_denied_total 1\n"
        ),
        "{text}"
    );
    assert!(text.contains("edge_ratelimit_allowed_total 1\n"), "{text}");

    // loopback is not in this list, and X-Forwarded-For cannot change that
    let closed = Edge::start(&conf(
        &u,
        None,
        limit,
        "[metrics]\nallow = [\"10.0.0.0/8\"]\n[client_ip]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    ));
    let r = get(
        &closed.url("/_edge/metrics"),
        &[("x-forwarded-for", "10.0.0.1")],
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        u.hits(),
        1,
        "one allowed request; /_edge/ paths are never proxied"
    );
}

#[tokio::test]
async fn leases_cut_redis_calls_for_traffic_under_the_limit() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    let edge = Edge::start(&conf(
        &u,
        Some(&redis.url()),
        "key = \"route\"\nrate = \"1000/s\"\nburst = 1000\nlease = 10",
        "",
    ));
    let calls = || redis.command_calls("evalsha") + redis.command_calls("eval");
    let before = calls();
    // one keep-alive client, as a busy API consumer is
    let c = client();
    for _ in 0..200 {
        let r = c.get(edge.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("ratelimit-remaining"));
    }
    let used = calls() - before;
    assert!(
        used <= 30,
        "{used} Redis calls for 200 requests with leases of 10"
    );
    assert!(metric(&edge, "edge_ratelimit_lease_hits_total").await >= 170);
}

/// One request to `/x` under the `x-api-key` key.
async fn keyed(c: &reqwest::Client, edge: &Edge, key: &str) -> reqwest::Response {
    c.get(edge.url("/x"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn adaptive_leases_follow_a_busy_key_and_leave_a_quiet_one_alone() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    // no `lease` setting: adaptive
    let edge = Edge::start(&conf(
        &u,
        Some(&redis.url()),
        "key = \"header:x-api-key\"\nrate = \"2000/s\"\nburst = 2000",
        "",
    ));
    let calls = || redis.command_calls("evalsha") + redis.command_calls("eval");
    let c = client();
    // the first call loads the script (EVALSHA refused, then EVAL): not counted
    let r = keyed(&c, &edge, "warm").await;
    assert_eq!(r.status(), 200);
    // a quiet key: a request every 100 ms is one Redis decision each
    let before = calls();
    for _ in 0..5 {
        let r = keyed(&c, &edge, "quiet").await;
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(calls() - before, 5, "a quiet key leases nothing");
    assert_eq!(metric(&edge, "edge_ratelimit_lease_hits_total").await, 0);
    // a busy key: one keep-alive client as fast as it can go
    let before = calls();
    for _ in 0..400 {
        let r = keyed(&c, &edge, "busy").await;
        assert_eq!(r.status(), 200);
        let remaining: u64 = r.headers()["ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(remaining < 2000);
    }
    let used = calls() - before;
    eprintln!("busy key: {used} Redis calls for 400 requests");
    assert!(
        used <= 80,
        "{used} Redis calls for 400 requests of a busy key"
    );
    assert!(metric(&edge, "edge_ratelimit_lease_hits_total").await >= 320);
    // `lease = "off"` goes back to one decision per request
    let edge = Edge::start(&conf(
        &u,
        Some(&redis.url()),
        "key = \"header:x-api-key\"\nrate = \"2000/s\"\nburst = 2000\nlease = \"off\"",
        "",
    ));
    let before = calls();
    for _ in 0..50 {
        let r = keyed(&c, &edge, "off").await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(calls() - before, 50);
}

#[tokio::test]
async fn leased_tokens_never_spent_go_back_to_the_bucket() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    // a slow bucket (1/s) with a large burst: an honest client's page load of 30 quick
    // requests makes the key look busy and takes leases it will not finish
    let edge = Edge::start(&conf(
        &u,
        Some(&redis.url()),
        "key = \"ip\"\nrate = \"1/s\"\nburst = 100",
        "",
    ));
    let c = client();
    let remaining = |r: &reqwest::Response| -> u64 {
        r.headers()["ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    for _ in 0..30 {
        assert_eq!(c.get(edge.url("/x")).send().await.unwrap().status(), 200);
    }
    assert!(
        metric(&edge, "edge_ratelimit_lease_hits_total").await > 0,
        "the burst was leased"
    );
    // the lease expires (200 ms); the next call gives its unspent tokens back
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = c.get(edge.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let left = remaining(&r);
    assert!(
        (68..=70).contains(&left),
        "31 requests spent from a bucket of 100 leave 69 (+ refill), not {left}"
    );
    // and 60 more pass before the first refusal
    for i in 0..60 {
        let r = c.get(edge.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i} of 60 after the page load");
    }
}

#[tokio::test]
async fn leases_never_admit_more_than_the_bucket() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    let text = conf(
        &u,
        Some(&redis.url()),
        "key = \"route\"\nrate = \"20/s\"\nburst = 10\nlease = 5",
        "[rate_limit]\nreplicas = 3\n",
    );
    let edges: Vec<Edge> = (0..3).map(|_| Edge::start(&text)).collect();
    let started = Instant::now();
    let (ok, limited, other) = load(
        edges.iter().map(|e| e.url("/x")).collect(),
        6,
        started + Duration::from_secs(5),
    )
    .await;
    let most = 10.0 + 20.0 * started.elapsed().as_secs_f64();
    eprintln!(
        "leases of 5, three replicas, 5 s: admitted {ok} (at most {most:.0}), limited {limited}"
    );
    assert_eq!(other, 0);
    assert!(
        ok as f64 <= most * 1.02,
        "admitted {ok}, more than the bucket's {most:.0}"
    );
    assert!(
        ok as f64 >= most * 0.85,
        "admitted {ok}: leases wasted too many tokens"
    );
}

/// Redis slow rather than down (issue 15, item 5): replies held back past the 10 ms timeout
/// for 300 ms of every second, so the breaker flaps. What the replicas admit from their local
/// buckets meanwhile is charged to the shared bucket when Redis answers again (and the
/// breaker waits longer for a flapping Redis): three edges flooding one key stay within ±15 %
/// of the limit. Without the charge, each return found the shared bucket refilled by the time
/// away, one burst per flap.
#[tokio::test]
async fn a_flapping_redis_does_not_multiply_the_burst() {
    let (u, redis) = (Upstream::start("u"), Redis::start());
    let proxy = crate::support::slow_proxy::SlowProxy::start(redis.port, Duration::from_millis(30));
    let text = conf(
        &u,
        None,
        "key = \"route\"\nrate = \"100/s\"\nburst = 50",
        &format!(
            "[redis]\nurl = \"{}\"\ntimeout = \"10ms\"\n[rate_limit]\nreplicas = 3\n",
            proxy.url()
        ),
    );
    let edges: Vec<Edge> = (0..3).map(|_| Edge::start(&text)).collect();
    let urls: Vec<String> = edges.iter().map(|e| e.url("/x")).collect();
    let started = Instant::now();
    let until = started + Duration::from_secs(10);
    let flapping = tokio::spawn(async move {
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(350)).await;
            proxy.set_slow(true);
            tokio::time::sleep(Duration::from_millis(150)).await;
            proxy.set_slow(false);
        }
    });
    let (ok, limited, other) = load(urls, 6, until).await;
    flapping.await.unwrap();
    let expected = 100.0 * started.elapsed().as_secs_f64() + 50.0;
    let mut charged = 0;
    let mut opened = 0;
    for e in &edges {
        // (absent from a binary without the charge: EDGE_TEST_BIN=<older edge> shows "before")
        let text = e.metrics_text().await;
        charged += text
            .lines()
            .find_map(|l| l.strip_prefix("edge_ratelimit_fallback_tokens_charged_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        opened += e
            .logs()
            .matches("redis unreachable: rate limits fall back")
            .count();
    }
    eprintln!(
        "flapping Redis, three replicas, 100/s burst 50, 10 s: admitted {ok} (expected {expected:.0}), \
         limited {limited}, breaker openings {opened}, tokens charged after outages {charged}"
    );
    assert_eq!(other, 0, "no 5xx while Redis flaps");
    assert!(
        opened >= 3,
        "Redis must actually flap for this test ({opened} openings)"
    );
    assert!(charged > 0, "local admissions were charged back");
    let deviation = (ok as f64 - expected) / expected;
    // ±15 %: the whole suite on 2 cores once gave +10.2 %; what this guards against (a fresh
    // burst per replica at each of ~20 flaps) would be about twice the expected count
    assert!(
        deviation.abs() <= 0.15,
        "admitted {ok}, expected {expected:.0} ±15 %"
    );
    drop(redis);
}
