//! Validation of `[social]` into the auth core's `SocialSettings`: every URL, origin,
//! duration and provider checked here, with the file and key named, so a bad provider entry
//! is refused at load (and on reload) instead of failing a user's sign-in.

use crate::config::error::Problems;
use crate::config::file::{SocialFile, SocialProviderFile};
use crate::config::values::{duration, http_url};
use auth_core::social::endpoints::default_scopes;
use auth_core::social::return_to::valid_origin;
use auth_core::social::settings::{
    EndpointOverrides, ProviderKind, ProviderSettings, SocialSettings,
};
use std::time::Duration;

pub(in crate::config) fn settings(
    file: &str,
    s: SocialFile,
    token_cookie: Option<&str>,
    p: &mut Problems,
) -> Option<SocialSettings> {
    let before = p.0.len();
    let public_url = s.public_url.trim_end_matches('/').to_string();
    if !valid_origin(&public_url) {
        p.add(
            file,
            "social.public_url",
            format!(
                "\"{}\" is not an origin like \"https://cinema.example\" (no path)",
                s.public_url
            ),
        );
    }
    for (i, o) in s.return_to_allow.iter().enumerate() {
        if !valid_origin(o) {
            p.add(
                file,
                format!("social.return_to_allow[{i}]"),
                format!("\"{o}\" is not an origin like \"https://app.cinema.example\""),
            );
        }
    }
    let token_cookie = match token_cookie {
        Some(c) => c.to_string(),
        None => {
            p.add(
                file,
                "social",
                "needs auth.token_cookie: a browser sign-in ends with the access token in that cookie",
            );
            String::new()
        }
    };
    let d = |key: &str, v: &Option<String>, default: &str, p: &mut Problems| {
        duration(file, key, v.as_deref(), default, false, p)
    };
    let flow_ttl = d("social.flow_ttl", &s.flow_ttl, "10m", p);
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&flow_ttl) {
        p.add(file, "social.flow_ttl", "must be between 1s and 1h");
    }
    let recent_login = d("social.recent_login", &s.recent_login, "10m", p);
    let http_timeout = d("social.http_timeout", &s.http_timeout, "5s", p);
    if http_timeout > Duration::from_secs(30) {
        p.add(
            file,
            "social.http_timeout",
            "must be at most 30s: a user is waiting",
        );
    }
    let max_response_bytes = s.max_response_bytes.unwrap_or(1 << 20);
    if !(1024..=16 << 20).contains(&max_response_bytes) {
        p.add(
            file,
            "social.max_response_bytes",
            "must be between 1024 and 16777216",
        );
    }
    if s.provider.is_empty() {
        p.add(file, "social.provider", "no provider is configured");
    }
    let providers = s
        .provider
        .into_iter()
        .filter_map(|(name, f)| provider(file, name, f, p))
        .collect();
    let settings = SocialSettings {
        public_url,
        return_to_allow: s
            .return_to_allow
            .iter()
            .map(|o| o.trim_end_matches('/').to_string())
            .collect(),
        flow_ttl,
        recent_login,
        http_timeout,
        max_response_bytes,
        token_cookie,
        providers,
    };
    (p.0.len() == before).then_some(settings)
}

fn provider(
    file: &str,
    name: String,
    f: SocialProviderFile,
    p: &mut Problems,
) -> Option<ProviderSettings> {
    let at = |key: &str| format!("social.provider.{name}.{key}");
    let before = p.0.len();
    let name_ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !name_ok {
        p.add(
            file,
            format!("social.provider.{name}"),
            "a provider name is 1-32 lower-case letters, digits, '-' or '_', starting with a letter (it is part of the callback URL)",
        );
    }
    let kind_text = f.kind.clone().unwrap_or_else(|| name.clone());
    let Some(kind) = ProviderKind::parse(&kind_text) else {
        p.add(
            file,
            at("kind"),
            format!("\"{kind_text}\" is not one of yandex, vk, google, mailru, generic_oidc"),
        );
        return None;
    };
    if f.client_id.trim().is_empty() {
        p.add(file, at("client_id"), "must not be empty");
    }
    let client_secret = match &f.client_secret_env {
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                p.add(
                    file,
                    at("client_secret_env"),
                    format!("environment variable {var} is not set"),
                );
                None
            }
        },
        None => None,
    };
    let endpoints = EndpointOverrides {
        authorize_url: url(file, &at("authorize_url"), f.authorize_url, p),
        token_url: url(file, &at("token_url"), f.token_url, p),
        userinfo_url: url(file, &at("userinfo_url"), f.userinfo_url, p),
        jwks_url: url(file, &at("jwks_url"), f.jwks_url, p),
        issuer: f.issuer,
        discovery_url: url(file, &at("discovery_url"), f.discovery_url, p),
    };
    if kind == ProviderKind::GenericOidc && endpoints.discovery_url.is_none() {
        let complete = endpoints.authorize_url.is_some()
            && endpoints.token_url.is_some()
            && endpoints.jwks_url.is_some()
            && endpoints.issuer.is_some();
        if !complete {
            p.add(
                file,
                at("discovery_url"),
                "is required for generic_oidc (or set authorize_url, token_url, jwks_url and issuer)",
            );
        }
    }
    let scopes = f.scopes.unwrap_or_else(|| default_scopes(kind));
    if kind.is_oidc() && !scopes.iter().any(|s| s == "openid") {
        p.add(
            file,
            at("scopes"),
            "must include \"openid\" for an OpenID Connect provider",
        );
    }
    if scopes
        .iter()
        .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        p.add(file, at("scopes"), "a scope is one word without spaces");
    }
    (p.0.len() == before).then_some(ProviderSettings {
        name,
        kind,
        client_id: f.client_id,
        client_secret,
        scopes,
        endpoints,
    })
}

fn url(file: &str, key: &str, v: Option<String>, p: &mut Problems) -> Option<String> {
    let v = v?;
    http_url(file, key, &v, p);
    Some(v)
}
