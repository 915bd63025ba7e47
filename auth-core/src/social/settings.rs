//! Validated settings of social login. The edge parses `[social]` from the conf dir into
//! these (proxy/src/config/social.rs); nothing here derives `Deserialize`.

use std::fmt;
use std::time::Duration;

#[derive(Clone, PartialEq, Debug)]
pub struct SocialSettings {
    /// The site's public origin, e.g. "https://cinema.example": callbacks are
    /// `{public_url}/auth/oauth/{provider}/callback`, registered at each provider as is.
    pub public_url: String,
    /// Origins an absolute `return_to` may point at; relative paths are always allowed.
    pub return_to_allow: Vec<String>,
    /// Lifetime of a started sign-in (state, PKCE verifier, nonce) in Redis.
    pub flow_ttl: Duration,
    /// A link needs a session opened (password or provider sign-in) at most this long ago.
    pub recent_login: Duration,
    /// One outbound call to a provider gives up after this long.
    pub http_timeout: Duration,
    /// Largest provider response read (token, userinfo, discovery, JWKS).
    pub max_response_bytes: usize,
    /// Browser flows end with the access token in this cookie (the edge's `auth.token_cookie`).
    pub token_cookie: String,
    pub providers: Vec<ProviderSettings>,
}

impl SocialSettings {
    /// TLS in front: cookies get `Secure` and the flow cookie its `__Host-` prefix.
    pub fn secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The access-token cookie's name: behind TLS `__Host-` + `token_cookie`, which no other
    /// subdomain can set or shadow (browsers keep `__Host-` cookies to this host, Path=/,
    /// Secure); on plain HTTP, where browsers refuse the prefix, `token_cookie` itself. The
    /// edge reads the token from the same name.
    pub fn access_cookie(&self) -> String {
        if self.secure() {
            format!("__Host-{}", self.token_cookie)
        } else {
            self.token_cookie.clone()
        }
    }

    /// The refresh cookie's name (Path=/auth/refresh, so `__Secure-` rather than `__Host-`).
    pub fn refresh_cookie(&self) -> String {
        if self.secure() {
            format!("__Secure-{}_refresh", self.token_cookie)
        } else {
            format!("{}_refresh", self.token_cookie)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProviderKind {
    Yandex,
    Vk,
    Google,
    MailRu,
    GenericOidc,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<ProviderKind> {
        Some(match s {
            "yandex" => ProviderKind::Yandex,
            "vk" => ProviderKind::Vk,
            "google" => ProviderKind::Google,
            "mailru" => ProviderKind::MailRu,
            "generic_oidc" => ProviderKind::GenericOidc,
            _ => return None,
        })
    }

    /// Providers that sign an `id_token` we verify (nonce, audience, issuer).
    pub fn is_oidc(self) -> bool {
        matches!(self, ProviderKind::Google | ProviderKind::GenericOidc)
    }
}

/// Endpoints of a provider. Built-in kinds have defaults (`endpoints.rs`); every one can be
/// overridden, which is how tests point them at local servers.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct EndpointOverrides {
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
}

#[derive(Clone, PartialEq)]
pub struct ProviderSettings {
    /// The name in URLs and in `social_accounts.provider`.
    pub name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    /// Read from the environment variable the conf names; never printed.
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub endpoints: EndpointOverrides,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("scopes", &self.scopes)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}
