//! The cookies of a browser sign-in, built in one place: every one HttpOnly, `Secure` behind
//! TLS (`public_url` is https), the flow and access cookies with the `__Host-` prefix there
//! and the refresh cookie with `__Secure-`.

use super::Social;
use crate::model::TokenPair;
use std::time::Duration;

impl Social {
    /// The flow cookie's name: `__Host-` needs `Secure`, which browsers refuse on plain HTTP.
    pub fn flow_cookie(&self) -> &'static str {
        if self.settings.secure() {
            "__Host-oauth-flow"
        } else {
            "oauth-flow"
        }
    }

    /// The refresh cookie's name: the token cookie's, with `_refresh`.
    pub fn refresh_cookie(&self) -> String {
        self.settings.refresh_cookie()
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: u64, same_site: &str) -> String {
        let secure = if self.settings.secure() {
            "; Secure"
        } else {
            ""
        };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}")
    }

    /// The flow secret (`max_age = 0` clears it). Lax: sent on the provider's top-level
    /// redirect back, not on cross-site subrequests.
    pub fn flow_set_cookie(&self, value: &str, max_age: u64) -> String {
        self.cookie(self.flow_cookie(), value, "/", max_age, "Lax")
    }

    /// A browser session: the access token for the edge (`auth.token_cookie`, every path, as
    /// long as it is valid), and the refresh token only for `/auth/refresh` (Strict: no other
    /// site can make the browser spend it).
    pub fn session_set_cookies(&self, pair: &TokenPair, refresh_ttl: Duration) -> [String; 2] {
        [
            self.cookie(
                &self.settings.access_cookie(),
                &pair.access_token,
                "/",
                pair.expires_in,
                "Lax",
            ),
            self.cookie(
                &self.refresh_cookie(),
                &pair.refresh_token,
                "/auth/refresh",
                refresh_ttl.as_secs(),
                "Strict",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::super::settings::SocialSettings;
    use super::*;

    fn social(public_url: &str) -> Social {
        Social::new(SocialSettings {
            public_url: public_url.into(),
            return_to_allow: vec![],
            flow_ttl: Duration::from_secs(600),
            recent_login: Duration::from_secs(600),
            http_timeout: Duration::from_secs(5),
            max_response_bytes: 1 << 20,
            token_cookie: "access_token".into(),
            providers: vec![],
        })
        .unwrap()
    }

    #[test]
    fn behind_tls_the_flow_cookie_is_host_prefixed_and_every_cookie_secure() {
        let s = social("https://cinema.test");
        assert_eq!(
            s.flow_set_cookie("v", 600),
            "__Host-oauth-flow=v; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
        );
        let pair = TokenPair {
            access_token: "a".into(),
            refresh_token: "r".into(),
            token_type: "Bearer",
            expires_in: 900,
        };
        let [access, refresh] = s.session_set_cookies(&pair, Duration::from_secs(86400));
        assert_eq!(
            access,
            "__Host-access_token=a; Path=/; Max-Age=900; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            refresh,
            "__Secure-access_token_refresh=r; Path=/auth/refresh; Max-Age=86400; HttpOnly; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn on_plain_http_no_prefix_and_no_secure() {
        let s = social("http://127.0.0.1:8080");
        assert_eq!(
            s.flow_set_cookie("", 0),
            "oauth-flow=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
    }
}
