//! Failing on purpose must not lock anyone out of their own account (OWASP: lock the
//! attacker's network, slow the account), and logging out must outlive every token.

use crate::support::auth::{claims, AuthStack, PASSWORD};
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

    // an attack spread over networks slows the account down, and the owner still gets in
    for ip in ["127.0.0.3", "127.0.0.4"] {
        let c = client_from(ip);
        for i in 0..10 {
            let r = login(&s, &c, "owner2@example.com", &format!("guess-{i}-wrong")).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{ip} #{i}");
        }
    }
    let started = Instant::now();
    let r = login(&s, &owner, "owner2@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let waited = started.elapsed();
    // 20 failures, 10 free: (20 - 10) x 200 ms, capped at 2 s
    assert!(
        waited >= Duration::from_millis(1900),
        "not slowed: {waited:?}"
    );
    // and the owner's success lifts the slow-down
    let started = Instant::now();
    let r = login(
        &s,
        &client_from("127.0.0.5"),
        "owner2@example.com",
        "one-more-wrong",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_revoked_session_stays_listed_until_its_last_token_is_dead() {
    let s = AuthStack::start();
    s.create_user("viewer@example.com", &[]);
    let pair = s.login("viewer@example.com", PASSWORD).await;
    let token = pair["access_token"].as_str().unwrap();
    let (_, c) = claims(token);
    let r = s
        .http
        .post(s.url("/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
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
    s.edge
        .metrics_text()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("edge_auth_password_checks_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("edge_auth_password_checks_total")
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
