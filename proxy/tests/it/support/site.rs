//! A site for identity tests: the auth stack (edge + core + PostgreSQL + Redis) with an echo
//! upstream behind four routes, one per policy: `/pub`, `/opt`, `/req`, `/premium`.

use super::auth::{AuthStack, Options, PASSWORD};
use super::upstream::Upstream;
use auth_core::token::Claims;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

pub struct Site {
    pub s: AuthStack,
    _up: Upstream,
}

/// The auth stack plus an echo upstream behind four routes, one per policy.
pub fn site() -> Site {
    site_with("")
}

pub fn site_with(auth_extra: &str) -> Site {
    site_full(auth_extra, "")
}

/// `site` plus more conf text (routes to the `movies` upstream, limits).
pub fn site_with_routes(routes_extra: &str) -> Site {
    site_full("", routes_extra)
}

fn site_full(auth_extra: &str, routes_extra: &str) -> Site {
    let up = Upstream::start("movies");
    let mut routes = format!(
        "[upstream.movies]\nservers = [\"{a}\"]\n\
         [[route]]\nname = \"public\"\npath = \"/pub\"\nupstream = \"movies\"\n\
         [[route]]\nname = \"optional\"\npath = \"/opt\"\nupstream = \"movies\"\nauth = \"optional\"\n\
         [[route]]\nname = \"required\"\npath = \"/req\"\nupstream = \"movies\"\nauth = \"required\"\n\
         [[route]]\nname = \"premium\"\npath = \"/premium\"\nupstream = \"movies\"\nauth = \"required\"\nroles = [\"subscriber\", \"admin\"]\n",
        a = up.addr()
    );
    routes.push_str(routes_extra);
    let s = AuthStack::start_with(Options {
        routes_extra: &routes,
        auth_extra,
        ..Options::default()
    });
    Site { s, _up: up }
}

impl Site {
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.s.http.get(self.s.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// What the upstream received, for a request the edge let through.
    pub async fn upstream_saw(&self, path: &str, headers: &[(&str, &str)]) -> Value {
        let r = self.get(path, headers).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json::<Value>().await.unwrap()["headers"].clone()
    }

    pub async fn token_of(&self, email: &str) -> String {
        let pair = self.s.login(email, PASSWORD).await;
        pair["access_token"].as_str().unwrap().to_string()
    }

    /// A token with these claims, signed with the core's real key.
    pub fn signed(&self, c: &Claims) -> String {
        let set = auth_core::keys::load(
            &self.s.keys_dir(),
            chrono::Utc::now(),
            Duration::from_secs(900),
        )
        .unwrap();
        auth_core::token::sign(set.signer.as_ref().unwrap(), c).unwrap()
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn good_claims() -> Claims {
    Claims {
        iss: "https://cinema.test".into(),
        aud: "cinema".into(),
        sub: "01890000-0000-7000-8000-000000000001".into(),
        sid: "01890000-0000-7000-8000-000000000002".into(),
        roles: vec!["subscriber".into()],
        email_verified: true,
        iat: now(),
        exp: now() + 900,
        nbf: None,
    }
}
