//! `[auth.device]`: the TV apps allowed to ask for a code, and the flow's timings.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceClient {
    /// The `client_id` the TV app sends.
    pub id: String,
    /// Shown on the approval page ("Cinema for Smart TV").
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSettings {
    pub clients: Vec<DeviceClient>,
    /// How long a code may wait for approval (RFC 8628 `expires_in`).
    pub user_code_ttl: Duration,
    /// The least time between two polls (`interval`); faster polls get `slow_down`.
    pub interval: Duration,
    /// Where the viewer enters the code, absolute (what the TV shows and the QR encodes).
    pub verification_uri: String,
    /// The path of `verification_uri`: the core serves the phone page there (route it to
    /// the core at the edge).
    pub activate_path: String,
    /// The browser session's access-token cookie (the edge's `auth.token_cookie`).
    pub token_cookie: String,
}

impl DeviceSettings {
    pub fn client(&self, id: &str) -> Option<&DeviceClient> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// Behind TLS: cookies get `Secure` and the `__Host-` prefix.
    pub fn secure(&self) -> bool {
        self.verification_uri.starts_with("https://")
    }

    /// The access-token cookie, named as social sign-in names it (the edge reads it).
    pub fn access_cookie(&self) -> String {
        if self.secure() {
            format!("__Host-{}", self.token_cookie)
        } else {
            self.token_cookie.clone()
        }
    }

    /// The double-submit CSRF cookie of the approval page.
    pub fn csrf_cookie(&self) -> &'static str {
        if self.secure() {
            "__Host-device-csrf"
        } else {
            "device-csrf"
        }
    }

    /// The refresh cookie (Path=/auth/refresh), named as social sign-in names it.
    pub fn refresh_cookie(&self) -> String {
        if self.secure() {
            format!("__Secure-{}_refresh", self.token_cookie)
        } else {
            format!("{}_refresh", self.token_cookie)
        }
    }

    /// `Set-Cookie` value for every path: HttpOnly always, `Secure` behind TLS.
    pub fn cookie(&self, name: &str, value: &str, max_age: u64, same_site: &str) -> String {
        self.cookie_at(name, value, "/", max_age, same_site)
    }

    pub fn cookie_at(
        &self,
        name: &str,
        value: &str,
        path: &str,
        max_age: u64,
        same_site: &str,
    ) -> String {
        let secure = if self.secure() { "; Secure" } else { "" };
        format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
        )
    }
}
