//! A real OpenID Provider (npm `oidc-provider`, installed by scripts/ensure-node-peers.sh) in a
//! child process, and a browser-like walk through its login and consent pages.

use super::wait_for_port;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CLIENT_ID: &str = "cinema-edge";

pub struct OpenIdProvider {
    pub port: u16,
    child: Child,
}

impl OpenIdProvider {
    /// On `port` (the edge's conf names it before the provider runs); `redirect_uris`: the
    /// edge's callbacks, the only ones this client may use; `secret`: the client's secret.
    pub fn start(port: u16, redirect_uris: &[String], secret: &str) -> OpenIdProvider {
        let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
        assert!(
            peers.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run scripts/ensure-node-peers.sh (make test does)"
        );
        let child = Command::new("node")
            .arg(peers.join("oidc-provider.mjs"))
            .env("PORT", port.to_string())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", secret)
            .env("REDIRECT_URIS", redirect_uris.join(" "))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node (oidc-provider)");
        let op = OpenIdProvider { port, child };
        assert!(
            wait_for_port(port, Duration::from_secs(15)),
            "oidc-provider did not listen"
        );
        op
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn discovery_url(&self) -> String {
        self.url("/.well-known/openid-configuration")
    }
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser at the provider: follows its redirects by hand and keeps its cookies.
pub struct ProviderBrowser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
    base: String,
}

pub struct Step {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl ProviderBrowser {
    pub fn new(op: &OpenIdProvider) -> ProviderBrowser {
        ProviderBrowser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: BTreeMap::new(),
            base: op.url(""),
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Step {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let r = req
            .header(COOKIE, cookies.join("; "))
            .send()
            .await
            .expect("provider request");
        for c in r.headers().get_all(SET_COOKIE) {
            if let Some((k, v)) = c
                .to_str()
                .ok()
                .and_then(|c| c.split(';').next()?.split_once('='))
            {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| self.absolute(l));
        let body = r.text().await.unwrap_or_default();
        Step {
            status,
            location,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> Step {
        let req = self.http.get(self.absolute(url));
        self.send(req).await
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Step {
        let body = serde_urlencoded::to_string(form).expect("form");
        let req = self
            .http
            .post(self.absolute(url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// From the authorization URL to the redirect back to the client: the login page (any
    /// `login` is accepted and becomes the subject), then the consent page. Returns the
    /// callback URL the provider sends the browser to.
    pub async fn sign_in(&mut self, authorization_url: &str, login: &str) -> String {
        let mut step = self.get(authorization_url).await;
        let mut url = step
            .location
            .clone()
            .expect("redirect to the login interaction");
        for _ in 0..8 {
            if !url.starts_with(&self.base) {
                return url; // back to the client
            }
            if url.contains("/interaction/") {
                let page = self.get(&url).await;
                assert_eq!(page.status, 200, "interaction page");
                step = if page.body.contains("name=\"login\"") {
                    self.post_form(
                        &url,
                        &[("prompt", "login"), ("login", login), ("password", "any")],
                    )
                    .await
                } else {
                    assert!(
                        page.body.contains("consent") || page.body.contains("Authorize"),
                        "consent page: {}",
                        page.body
                    );
                    self.post_form(&url, &[("prompt", "consent")]).await
                };
            } else {
                step = self.get(&url).await;
            }
            url = step.location.clone().unwrap_or_else(|| {
                panic!("provider stopped at {} {}: {}", step.status, url, step.body)
            });
        }
        panic!("the provider never sent the browser back");
    }
}
