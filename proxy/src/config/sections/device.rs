//! `[auth.device]`: TV sign-in by a code approved on a phone (RFC 8628).

use crate::config::error::Problems;
use crate::config::file::AuthDeviceFile;
use crate::config::values::duration;
use auth_core::device_grant::settings::{DeviceClient, DeviceSettings};
use std::time::Duration;

pub(in crate::config) fn device(
    file: &str,
    f: &AuthDeviceFile,
    token_cookie: Option<&str>,
    p: &mut Problems,
) -> Option<DeviceSettings> {
    let before = p.0.len();
    let Some(token_cookie) = token_cookie else {
        p.add(
            file,
            "auth.device",
            "needs auth.token_cookie: the phone's sign-in and the TV browser keep the session in it",
        );
        return None;
    };
    if f.clients.is_empty() {
        p.add(
            file,
            "auth.device.clients",
            "list at least one TV app: { id = \"…\", name = \"…\" }",
        );
    }
    let mut clients: Vec<DeviceClient> = Vec::new();
    for (i, c) in f.clients.iter().enumerate() {
        let ok_id = !c.id.is_empty()
            && c.id.len() <= 64
            && c.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok_id {
            p.add(
                file,
                format!("auth.device.clients[{i}].id"),
                "1 to 64 of A-Z a-z 0-9 . _ -",
            );
        } else if clients.iter().any(|x| x.id == c.id) {
            p.add(
                file,
                format!("auth.device.clients[{i}].id"),
                format!("\"{}\" is listed twice", c.id),
            );
        }
        if c.name.trim().is_empty() || c.name.chars().count() > 80 {
            p.add(
                file,
                format!("auth.device.clients[{i}].name"),
                "1 to 80 characters (shown to viewers)",
            );
        }
        clients.push(DeviceClient {
            id: c.id.clone(),
            name: c.name.trim().to_string(),
        });
    }
    let ttl = duration(
        file,
        "auth.device.user_code_ttl",
        f.user_code_ttl.as_deref(),
        "10m",
        false,
        p,
    );
    if !(Duration::from_secs(60)..=Duration::from_secs(3600)).contains(&ttl) {
        p.add(
            file,
            "auth.device.user_code_ttl",
            "must be between 1m and 1h (RFC 8628 suggests minutes)",
        );
    }
    let interval = duration(
        file,
        "auth.device.interval",
        f.interval.as_deref(),
        "5s",
        false,
        p,
    );
    if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&interval)
        || interval.subsec_nanos() != 0
    {
        p.add(
            file,
            "auth.device.interval",
            "whole seconds between 1s and 60s",
        );
    }
    let activate_path = verification_path(file, &f.verification_uri, p);
    (p.0.len() == before).then(|| DeviceSettings {
        clients,
        user_code_ttl: ttl,
        interval,
        verification_uri: f.verification_uri.clone(),
        activate_path: activate_path.unwrap_or_default(),
        token_cookie: token_cookie.to_string(),
    })
}

/// The path of the verification URI: absolute, https (http only on loopback), no query or
/// fragment (the core appends `?user_code=`), outside the core's own `/auth/device`.
fn verification_path(file: &str, uri: &str, p: &mut Problems) -> Option<String> {
    const KEY: &str = "auth.device.verification_uri";
    let parsed = uri
        .parse::<http::Uri>()
        .ok()
        .filter(|u| u.authority().is_some());
    let Some(url) = parsed.filter(|_| !uri.contains('#')) else {
        p.add(
            file,
            KEY,
            format!("\"{uri}\" is not an absolute URL without a fragment"),
        );
        return None;
    };
    let host = url.host().unwrap_or_default();
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1");
    let scheme = url.scheme_str().unwrap_or_default();
    if scheme != "https" && !(scheme == "http" && loopback) {
        p.add(
            file,
            KEY,
            "must be https (http only on a loopback host, for development)",
        );
    }
    if url.query().is_some() || url.authority().is_some_and(|a| a.as_str().contains('@')) {
        p.add(
            file,
            KEY,
            "must have no query or user (the code is appended as ?user_code=)",
        );
    }
    let path = url.path().to_string();
    // a plain path: it becomes a route of the core's router, where `{…}` or `*` would be a
    // pattern and a core path (/auth/…) a clash that stops the core at start
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
    if path == "/"
        || path.ends_with('/')
        || !plain
        || path == "/auth"
        || path.starts_with("/auth/")
        || path.starts_with("/_edge")
    {
        p.add(
            file,
            KEY,
            "needs a plain path of its own, such as /activate (letters, digits, / _ . -; not /, not under /auth or /_edge)",
        );
        return None;
    }
    Some(path)
}
