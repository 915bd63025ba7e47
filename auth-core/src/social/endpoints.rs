//! Where each provider lives, from its documentation, and the OpenID Connect discovery that
//! fills in the rest for OIDC providers. Conf overrides win over both.

use super::settings::{EndpointOverrides, ProviderKind};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Endpoints {
    pub authorize: Option<String>,
    pub token: Option<String>,
    pub userinfo: Option<String>,
    pub jwks: Option<String>,
    /// Accepted `iss` of id_tokens (Google signs with two forms).
    pub issuers: Vec<String>,
    pub discovery: Option<String>,
}

/// The default scopes of a kind.
pub fn default_scopes(kind: ProviderKind) -> Vec<String> {
    let s: &[&str] = match kind {
        // email and the display name (Yandex ID: "Access to email address", "Access to user info")
        ProviderKind::Yandex => &["login:email", "login:info"],
        // VK ID: the email needs its own scope; the profile comes with vkid.personal_info
        ProviderKind::Vk => &["vkid.personal_info", "email"],
        ProviderKind::Google | ProviderKind::GenericOidc => &["openid", "email", "profile"],
        ProviderKind::MailRu => &["userinfo"],
    };
    s.iter().map(|s| s.to_string()).collect()
}

fn defaults(kind: ProviderKind) -> Endpoints {
    let s = |v: &str| Some(v.to_string());
    match kind {
        ProviderKind::Yandex => Endpoints {
            authorize: s("https://oauth.yandex.ru/authorize"),
            token: s("https://oauth.yandex.ru/token"),
            userinfo: s("https://login.yandex.ru/info?format=json"),
            ..Endpoints::default()
        },
        ProviderKind::Vk => Endpoints {
            authorize: s("https://id.vk.com/authorize"),
            token: s("https://id.vk.com/oauth2/auth"),
            userinfo: s("https://id.vk.com/oauth2/user_info"),
            ..Endpoints::default()
        },
        ProviderKind::MailRu => Endpoints {
            authorize: s("https://oauth.mail.ru/login"),
            token: s("https://oauth.mail.ru/token"),
            userinfo: s("https://oauth.mail.ru/userinfo"),
            ..Endpoints::default()
        },
        // Google's discovery document says the same; these serve when it cannot be fetched
        ProviderKind::Google => Endpoints {
            authorize: s("https://accounts.google.com/o/oauth2/v2/auth"),
            token: s("https://oauth2.googleapis.com/token"),
            userinfo: s("https://openidconnect.googleapis.com/v1/userinfo"),
            jwks: s("https://www.googleapis.com/oauth2/v3/certs"),
            issuers: vec![
                "https://accounts.google.com".into(),
                "accounts.google.com".into(),
            ],
            discovery: s("https://accounts.google.com/.well-known/openid-configuration"),
        },
        ProviderKind::GenericOidc => Endpoints::default(),
    }
}

/// Built-in defaults with the conf's overrides on top.
pub fn configured(kind: ProviderKind, o: &EndpointOverrides) -> Endpoints {
    let mut e = defaults(kind);
    let pick = |over: &Option<String>, base: &mut Option<String>| {
        if let Some(v) = over {
            *base = Some(v.clone());
        }
    };
    pick(&o.authorize_url, &mut e.authorize);
    pick(&o.token_url, &mut e.token);
    pick(&o.userinfo_url, &mut e.userinfo);
    pick(&o.jwks_url, &mut e.jwks);
    pick(&o.discovery_url, &mut e.discovery);
    if let Some(iss) = &o.issuer {
        e.issuers = vec![iss.clone()];
    }
    e
}

/// The part of an OpenID Provider's metadata we use.
#[derive(serde::Deserialize, Debug, Clone)]
pub struct Discovered {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
}

/// Discovery fills what the conf did not set; Google keeps its two issuer forms.
pub fn merge(kind: ProviderKind, o: &EndpointOverrides, d: &Discovered) -> Endpoints {
    let mut e = configured(kind, o);
    let fill = |over: &Option<String>, base: &mut Option<String>, found: &str| {
        if over.is_none() {
            *base = Some(found.to_string());
        }
    };
    fill(
        &o.authorize_url,
        &mut e.authorize,
        &d.authorization_endpoint,
    );
    fill(&o.token_url, &mut e.token, &d.token_endpoint);
    if let Some(u) = &d.userinfo_endpoint {
        fill(&o.userinfo_url, &mut e.userinfo, u);
    }
    fill(&o.jwks_url, &mut e.jwks, &d.jwks_uri);
    if o.issuer.is_none() && !e.issuers.contains(&d.issuer) {
        e.issuers = vec![d.issuer.clone()];
        if kind == ProviderKind::Google {
            e.issuers.push("accounts.google.com".into());
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_discovery_fills_the_rest() {
        let o = EndpointOverrides {
            token_url: Some("http://127.0.0.1:1/token".into()),
            ..Default::default()
        };
        let e = configured(ProviderKind::Yandex, &o);
        assert_eq!(
            e.authorize.as_deref(),
            Some("https://oauth.yandex.ru/authorize")
        );
        assert_eq!(e.token.as_deref(), Some("http://127.0.0.1:1/token"));
        let d = Discovered {
            issuer: "http://127.0.0.1:9/op".into(),
            authorization_endpoint: "http://127.0.0.1:9/auth".into(),
            token_endpoint: "http://127.0.0.1:9/token".into(),
            userinfo_endpoint: None,
            jwks_uri: "http://127.0.0.1:9/jwks".into(),
        };
        let e = merge(ProviderKind::GenericOidc, &o, &d);
        assert_eq!(e.token.as_deref(), Some("http://127.0.0.1:1/token"));
        assert_eq!(e.authorize.as_deref(), Some("http://127.0.0.1:9/auth"));
        assert_eq!(e.issuers, vec!["http://127.0.0.1:9/op".to_string()]);
        let g = configured(ProviderKind::Google, &EndpointOverrides::default());
        assert_eq!(g.issuers.len(), 2);
    }
}
