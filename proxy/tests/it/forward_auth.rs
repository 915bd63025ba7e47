//! Forward auth with a real nginx (`auth_request`) in front of a service that is not behind
//! the edge: nginx asks `/_edge/auth/<policy>` for each request and copies the identity
//! headers of the answer upstream. Also the Envoy `ext_authz` shape, bad asks, and the
//! allow-list.

use crate::support::auth::error_of;
use crate::support::nginx::Nginx;
use crate::support::site::{good_claims, site_with_routes, Site};
use crate::support::upstream::Upstream;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

const FORWARD_AUTH: &str = "[forward_auth]\nallow = [\"127.0.0.1/32\"]\n\
    [forward_auth.policy.signed-in]\nauth = \"required\"\n\
    [forward_auth.policy.staff]\nauth = \"required\"\nroles = [\"admin\"]\n\
    [forward_auth.policy.guest]\nauth = \"optional\"\n";

/// The nginx config of docs/integration.md: one location per policy, the answer's identity
/// headers copied upstream (replacing what the client sent).
fn nginx_for(site: &Site, service: &Upstream) -> Nginx {
    let copy = |policy: &str, prefix: &str| {
        format!(
            "    location {prefix} {{\n      auth_request /_auth/{policy};\n\
             auth_request_set $uid $upstream_http_x_user_id;\n\
             auth_request_set $roles $upstream_http_x_user_roles;\n\
             auth_request_set $auth $upstream_http_x_auth_status;\n\
             proxy_set_header X-User-Id $uid;\n      proxy_set_header X-User-Roles $roles;\n\
             proxy_set_header X-Auth-Status $auth;\n      proxy_pass http://{};\n    }}\n",
            service.addr()
        )
    };
    let server = format!(
        "{}{}{}    location /_auth/ {{\n      internal;\n\
         proxy_pass http://127.0.0.1:{}/_edge/auth/;\n      proxy_pass_request_body off;\n\
         proxy_set_header Content-Length \"\";\n\
         proxy_set_header X-Forwarded-Method $request_method;\n\
         proxy_set_header X-Forwarded-Uri $request_uri;\n\
         proxy_set_header X-Forwarded-Host $host;\n    }}\n",
        copy("signed-in", "/api/"),
        copy("staff", "/staff/"),
        copy("guest", "/guest/"),
        site.s.edge.port
    );
    Nginx::start("", &server)
}

async fn via(nginx: &Nginx, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(nginx.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request through nginx")
}

async fn seen(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["headers"].clone()
}

#[tokio::test]
async fn nginx_auth_request_takes_the_edges_decisions() {
    let site = site_with_routes(FORWARD_AUTH);
    let service = Upstream::start("legacy");
    let nginx = nginx_for(&site, &service);
    site.s.create_user("viewer@example.com", &["subscriber"]);
    let token = site.token_of("viewer@example.com").await;
    let bearer = format!("Bearer {token}");
    let spoof = [
        ("x-user-id", "admin-id"),
        ("x-user-roles", "admin"),
        ("x-auth-status", "verified"),
    ];

    // no token: nginx refuses with the edge's 401 and its challenge; the service never hears
    let r = via(&nginx, "/api/movies", &spoof).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(service.hits(), 0);
    // a valid token: the service sees the token's identity, not the client's
    let mut with_token = spoof.to_vec();
    with_token.push(("authorization", &bearer));
    let h = seen(via(&nginx, "/api/movies?page=2", &with_token).await).await;
    let sub = crate::support::auth::claims(&token).1["sub"].clone();
    assert_eq!(h["x-user-id"], sub, "{h}");
    assert_eq!(h["x-user-roles"], "subscriber");
    assert_eq!(h["x-auth-status"], "verified");
    // a role the token lacks: 403
    let r = via(&nginx, "/staff/panel", &with_token).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // an optional policy lets a guest through, anonymous: the spoofed identity is gone
    let h = seen(via(&nginx, "/guest/x", &spoof).await).await;
    assert_eq!(h["x-auth-status"], "anonymous", "{h}");
    assert!(h.get("x-user-id").is_none(), "{h}");
    assert!(h.get("x-user-roles").is_none(), "{h}");
    // ... but a forged token is refused there too
    let mut forged = good_claims();
    forged.roles = vec!["admin".into()];
    let forged_token = {
        let mut parts: Vec<String> = site.signed(&forged).split('.').map(String::from).collect();
        parts[2] = "AAAA".into();
        parts.join(".")
    };
    let r = via(
        &nginx,
        "/guest/x",
        &[("authorization", &format!("Bearer {forged_token}"))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // a signed-out session stops working within the deny list's bound (5 s), as on the
    // edge's own routes
    site.s.logout(&token).await;
    let mut refused = false;
    for _ in 0..80 {
        if via(&nginx, "/api/movies", &with_token).await.status() == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the revoked token still passed after 8 s");
    // the decision endpoint behind nginx is internal: clients cannot call it through nginx
    let r = via(&nginx, "/_auth/signed-in", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn envoy_shape_bad_asks_and_the_allow_list() {
    let site = site_with_routes(FORWARD_AUTH);
    site.s.create_user("boss@example.com", &["admin"]);
    let token = site.token_of("boss@example.com").await;
    let http = reqwest::Client::new();
    let edge = |p: &str| site.s.url(p);
    // Envoy ext_authz with path_prefix: the original method and path follow the policy
    let r = http
        .delete(edge("/_edge/auth/staff/admin/users/7"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-user-roles"], "admin");
    assert_eq!(r.headers()["x-auth-status"], "verified");
    assert!(r.headers().contains_key("x-request-id"));
    // the nginx/Traefik shape without the original request described: a clear 400
    let r = http
        .get(edge("/_edge/auth/staff"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("X-Forwarded-Uri"),
        "{body}"
    );
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    // an absolute URI is not an origin-form target
    let r = http
        .get(edge("/_edge/auth/staff"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "http://evil.example/")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Envoy appends the client's raw path after the policy: its `..` cannot climb into
    // another policy (here from "staff", which needs a token, to "guest", which does not)
    let addr = ([127, 0, 0, 1], site.s.edge.port).into();
    for sneaky in [
        "/_edge/auth/staff/../guest/x",
        "/_edge/auth/staff/%2e%2e/guest/x",
        "/_edge/auth/staff/./../guest",
    ] {
        let r = crate::support::raw::get(addr, "cinema.test", sneaky, &[]).expect("an answer");
        assert_eq!(r.status, 401, "{sneaky}: {}", r.text());
    }
    // an unknown policy, or none: 404
    for p in ["/_edge/auth/nope", "/_edge/auth"] {
        let r = http.get(edge(p)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{p}");
    }
    // a peer outside `allow` learns nothing: after a reload that no longer lists loopback,
    // the endpoint is a 404 like any unknown path
    let routes = site.s.edge.conf_dir().join("routes.toml");
    let text = std::fs::read_to_string(&routes).unwrap();
    site.s
        .edge
        .write_routes(&text.replace("allow = [\"127.0.0.1/32\"]", "allow = [\"192.0.2.0/24\"]"));
    let hidden = crate::support::eventually(Duration::from_secs(10), || {
        let addr = ([127, 0, 0, 1], site.s.edge.port).into();
        let ask = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/")];
        crate::support::raw::get(addr, "cinema.test", "/_edge/auth/guest", &ask)
            .is_some_and(|r| r.status == 404)
    })
    .await;
    assert!(hidden, "the allow-list follows a reload");
}
