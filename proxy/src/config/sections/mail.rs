//! `[mail]`: the embedded auth core's SMTP relay, links and token lifetimes.

use crate::config::error::Problems;
use crate::config::file::MailFile;
use crate::config::values::{choice, duration, http_url, is_loopback_url, Choice};
use auth_core::mail::settings::{check_ca, check_from, MailSettings, SmtpSecurity};
use std::path::Path;
use std::time::Duration;

impl Choice for SmtpSecurity {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("starttls", SmtpSecurity::StartTls),
        ("tls", SmtpSecurity::Tls),
        ("none", SmtpSecurity::None),
    ];
}

/// `dir`: the conf dir, against which a relative `ca` path is read.
pub(in crate::config) fn settings(
    dir: &Path,
    file: &str,
    m: &MailFile,
    p: &mut Problems,
) -> Option<MailSettings> {
    let before = p.0.len();
    if let Err(e) = check_from(&m.from) {
        p.add(
            file,
            "mail.from",
            format!(
                "\"{}\" is not a mailbox like \"Cinema <no-reply@cinema.example>\": {e}",
                m.from
            ),
        );
    }
    let (host, port) = match m
        .smtp
        .rsplit_once(':')
        .map(|(h, port)| (h, port.parse::<u16>()))
    {
        Some((h, Ok(port))) if !h.is_empty() && port > 0 => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
        ),
        _ => {
            p.add(
                file,
                "mail.smtp",
                format!(
                    "\"{}\" is not host:port like \"smtp.example.com:587\"",
                    m.smtp
                ),
            );
            (String::new(), 0)
        }
    };
    let security: SmtpSecurity = choice(file, "mail.security", m.security.as_deref(), p);
    let env = |key: &str, var: &Option<String>, p: &mut Problems| match var {
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                p.add(file, key, format!("environment variable {var} is not set"));
                None
            }
        },
        None => None,
    };
    let ca = m.ca.as_ref().and_then(|path| {
        let read = std::fs::read(dir.join(path)).map_err(|e| e.to_string());
        match read.and_then(|pem| check_ca(&pem).map(|_| pem)) {
            Ok(pem) => Some(pem),
            Err(e) => {
                p.add(
                    file,
                    "mail.ca",
                    format!("\"{path}\": not a readable PEM certificate: {e}"),
                );
                None
            }
        }
    });
    if m.ca.is_some() && security == SmtpSecurity::None {
        p.add(
            file,
            "mail.ca",
            "a CA is only used with security = \"starttls\" or \"tls\"",
        );
    }
    let username = env("mail.username_env", &m.username_env, p);
    let password = env("mail.password_env", &m.password_env, p);
    if username.is_some() != password.is_some() && p.0.len() == before {
        p.add(
            file,
            "mail.password_env",
            "give both username_env and password_env, or neither",
        );
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if security == SmtpSecurity::None && password.is_some() && !loopback {
        p.add(
            file,
            "mail.security",
            "\"none\" would send the SMTP password in clear: use \"starttls\" or \"tls\"",
        );
    }
    for (key, url) in [
        ("mail.confirm_url", &m.confirm_url),
        ("mail.reset_url", &m.reset_url),
    ] {
        if !http_url(file, key, url, p) {
            continue;
        }
        if url.matches("{token}").count() != 1 {
            p.add(
                file,
                key,
                "must hold {token} once: the link's token goes there",
            );
        } else if url.starts_with("http://") && !is_loopback_url(url) {
            // the token is a password for a moment: it must not travel in clear
            p.add(file, key, "must be https:// (http only on loopback)");
        }
    }
    // a duration with its default, inside [lo, hi] seconds
    let mut bounded =
        |key: &str, value: &Option<String>, default: &str, lo: u64, hi: u64, words: &str| {
            let d = duration(file, key, value.as_deref(), default, false, p);
            if !(Duration::from_secs(lo)..=Duration::from_secs(hi)).contains(&d) {
                p.add(file, key, format!("must be between {words}"));
            }
            d
        };
    let timeout = bounded("mail.timeout", &m.timeout, "10s", 1, 120, "1s and 2m");
    let retry_base = bounded(
        "mail.retry_base",
        &m.retry_base,
        "30s",
        1,
        86400,
        "1s and 1d",
    );
    let retry_max = bounded("mail.retry_max", &m.retry_max, "1h", 1, 86400, "1s and 1d");
    let poll_interval = bounded(
        "mail.poll_interval",
        &m.poll_interval,
        "2s",
        1,
        300,
        "1s and 5m",
    );
    let confirm_ttl = bounded(
        "mail.confirm_ttl",
        &m.confirm_ttl,
        "24h",
        3600,
        7 * 86400,
        "1h and 7d",
    );
    let reset_ttl = bounded(
        "mail.reset_ttl",
        &m.reset_ttl,
        "30m",
        300,
        7200,
        "5m and 2h",
    );
    if retry_max < retry_base {
        p.add(
            file,
            "mail.retry_max",
            "must not be shorter than retry_base",
        );
    }
    let max_attempts = m.max_attempts.unwrap_or(8);
    if !(1..=50).contains(&max_attempts) {
        p.add(file, "mail.max_attempts", "must be between 1 and 50");
    }
    (p.0.len() == before).then(|| MailSettings {
        from: m.from.clone(),
        host,
        port,
        security,
        ca,
        username,
        password,
        timeout,
        max_attempts,
        retry_base,
        retry_max,
        poll_interval,
        confirm_url: m.confirm_url.clone(),
        reset_url: m.reset_url.clone(),
        confirm_ttl,
        reset_ttl,
    })
}
