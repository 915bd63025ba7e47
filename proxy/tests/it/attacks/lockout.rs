//! Failing on purpose must not lock anyone out of their own account (OWASP: lock the
//! attacker's network, slow the account), and logging out must outlive every token.

use crate::support::auth::{claims, AuthStack, Options, PASSWORD};
use crate::support::client_from;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

async fn login(
    s: &AuthStack,
    c: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    c.post(s.url("/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failures_from_one_network_do_not_lock_the_owner_out() {
    let s = AuthStack::start();
    s.create_user("owner@example.com", &[]);
    let attacker = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for i in 0..11 {
        let r = login(
            &s,
            &attacker,
            "owner@example.com",
            &format!("guess-{i}-wrong"),
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
    // the attacker's network is locked for this account, even with the right password
    let r = login(&s, &attacker, "owner@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // the owner, on another network, signs in at once
    let owner = client_from("127.0.0.2");
    let started = Instant::now();
    let r = login(&s, &owner, "owner@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "the owner was locked out");
    assert!(started.elapsed() < Duration::from_secs(1));
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // changing the profile asks for the current password: not blocked either
    let r = owner
        .patch(s.url("/auth/me"))
        .bearer_auth(&token)
        .json(&json!({ "current_password": PASSWORD, "email": "owner2@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn parallel_guesses_queue_behind_one_schedule_per_account() {
    // small numbers: 2 free failures, then attempts 250 ms apart, at most 500 ms of queue
    let s = AuthStack::start_with(Options {
        auth_extra: "throttle = { per_account = 2, per_ip = 100, window = \"15m\", \
                     slowdown_step = \"250ms\", slowdown_max = \"500ms\" }\n",
        ..Options::default()
    });
    s.create_user("target@example.com", &[]);
    let owner = client_from("127.0.0.2");
    assert_eq!(
        login(&s, &owner, "target@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    // four failures from four networks: the account is under attack, spacing 500 ms
    for ip in ["127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.4"] {
        let r = login(&s, &client_from(ip), "target@example.com", "wrong-guess-1").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{ip}");
    }
    // ten guesses at once from ten more networks: one schedule, so at most the queue's worth
    // are checked and the rest are refused; in parallel they are not ten times faster
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..10 {
        let c = client_from(&format!("127.0.3.{}", i + 1));
        let url = s.url("/auth/login");
        burst.spawn(async move {
            c.post(url)
                .json(&json!({ "email": "target@example.com", "password": "wrong-guess-2" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(r) = burst.join_next().await {
        *statuses.entry(r.unwrap().unwrap()).or_default() += 1;
    }
    let checked = statuses.get(&401).copied().unwrap_or(0);
    assert!(
        checked <= 3,
        "{checked} guesses checked at once: {statuses:?}"
    );
    assert_eq!(
        checked + statuses.get(&429).copied().unwrap_or(0),
        10,
        "{statuses:?}"
    );
    // the owner, on a network they signed in from, is neither refused nor slowed
    let started = Instant::now();
    let r = login(&s, &owner, "target@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // the owner's success does not hand the attacker a fresh start: the account's failures
    // stay counted (the key is the first 16 bytes of SHA-256 of the email, in hex)
    use sha2::Digest;
    let digest = sha2::Sha256::digest(b"target@example.com");
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let failures: u64 = s
        .redis
        .cli(&["GET", &format!("auth:login:acct:{hex}")])
        .trim()
        .parse()
        .unwrap();
    assert!(
        failures >= 5,
        "{failures} failures left after the owner's sign-in"
    );
}

#[tokio::test]
async fn a_revoked_session_stays_listed_until_its_last_token_is_dead() {
    let s = AuthStack::start();
    s.create_user("viewer@example.com", &[]);
    let pair = s.login("viewer@example.com", PASSWORD).await;
    let token = pair["access_token"].as_str().unwrap();
    let (_, c) = claims(token);
    s.logout(token).await;
    let key = format!("edge:revoked:{}", c["sid"].as_str().unwrap());
    let pttl: i64 = s.redis.cli(&["PTTL", &key]).trim().parse().unwrap();
    assert!(pttl > 0, "{key} not listed");
    let now = chrono::Utc::now().timestamp_millis();
    // verifiers accept the token until exp + leeway: the entry must outlive that
    let last_accepted_ms = (c["exp"].as_i64().unwrap() + auth_core::token::LEEWAY_SECS) * 1000;
    assert!(
        now + pttl > last_accepted_ms,
        "listed until {} but the token verifies until {last_accepted_ms}",
        now + pttl
    );
    // and the edge refuses it
    let r = s.get("/auth/me", token).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Argon2 verifications so far, from the edge's metrics.
async fn password_checks(s: &AuthStack) -> u64 {
    s.edge.metric("edge_auth_password_checks_total").await
}

#[tokio::test]
async fn an_unknown_email_costs_the_same_hash_as_a_wrong_password() {
    let s = AuthStack::start();
    s.create_user("known@example.com", &[]);
    let c = client_from("127.0.0.1");
    for (email, password, hashes) in [
        ("known@example.com", "wrong password here", 1),
        ("nobody@example.com", "wrong password here", 1),
        // longer than any stored password can be: refused without hashing, for both
        ("known@example.com", &"x".repeat(2000)[..], 0),
        ("nobody@example.com", &"x".repeat(2000)[..], 0),
    ] {
        let before = password_checks(&s).await;
        let r = login(&s, &c, email, password).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(
            password_checks(&s).await - before,
            hashes,
            "{email} {}",
            password.len()
        );
    }
}

#[tokio::test]
async fn a_burst_of_a_revoked_token_is_refused_every_time() {
    let site = crate::support::site::site();
    site.s.create_user("burst@example.com", &["subscriber"]);
    let token = site.token_of("burst@example.com").await;
    let auth = format!("Bearer {token}");
    assert_eq!(
        site.get("/req/x", &[("authorization", &auth)])
            .await
            .status(),
        200
    );
    site.s.logout(&token).await;
    // past the edge's 5 s cache of deny-list answers: the burst finds nothing cached. Each
    // client holds a connection already, and all wait at a barrier: truly concurrent.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let clients: Vec<reqwest::Client> = (0..200)
        .map(|i| client_from(&format!("127.0.1.{}", 1 + i % 50)))
        .collect();
    for c in &clients {
        let r = c.get(site.s.url("/pub/warm")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let exists_before = site.s.redis.command_calls("exists");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(clients.len()));
    let mut burst = tokio::task::JoinSet::new();
    for c in clients {
        let (url, auth, barrier) = (site.s.url("/req/x"), auth.clone(), barrier.clone());
        burst.spawn(async move {
            barrier.wait().await;
            c.get(url)
                .header("authorization", auth)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(r) = burst.join_next().await {
        *statuses.entry(r.unwrap().unwrap()).or_default() += 1;
    }
    assert_eq!(statuses.get(&401), Some(&200), "{statuses:?}");
    let metrics = site.s.edge.metrics_text().await;
    assert!(
        metrics.contains("edge_revocation_fail_open_total 0"),
        "{metrics}"
    );
    // one lookup served the burst (a few at most, should it straddle the cache's expiry)
    let lookups = site.s.redis.command_calls("exists") - exists_before;
    assert!(
        lookups <= 3,
        "{lookups} deny-list lookups for one session's burst"
    );
}
