//! `[mail]`: the embedded auth core's SMTP relay, links and token lifetimes.

use crate::config::error::Problems;
use crate::config::file::MailFile;
use crate::config::values::{choice, duration, http_url, is_loopback_url, Choice};
use auth_core::mail::settings::{check_from, MailSettings, SmtpSecurity};
use std::time::Duration;

impl Choice for SmtpSecurity {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("starttls", SmtpSecurity::StartTls),
        ("tls", SmtpSecurity::Tls),
        ("none", SmtpSecurity::None),
    ];
}

pub(in crate::config) fn settings(
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
    let within = |key: &str, d: Duration, lo: u64, hi: u64, what: &str, p: &mut Problems| {
        if !(Duration::from_secs(lo)..=Duration::from_secs(hi)).contains(&d) {
            p.add(file, key, format!("must be between {what}"));
        }
    };
    let timeout = duration(file, "mail.timeout", m.timeout.as_deref(), "10s", false, p);
    within("mail.timeout", timeout, 1, 120, "1s and 2m", p);
    let retry_base = duration(
        file,
        "mail.retry_base",
        m.retry_base.as_deref(),
        "30s",
        false,
        p,
    );
    let retry_max = duration(
        file,
        "mail.retry_max",
        m.retry_max.as_deref(),
        "1h",
        false,
        p,
    );
    if retry_max < retry_base {
        p.add(
            file,
            "mail.retry_max",
            "must not be shorter than retry_base",
        );
    }
    let poll_interval = duration(
        file,
        "mail.poll_interval",
        m.poll_interval.as_deref(),
        "2s",
        false,
        p,
    );
    within("mail.poll_interval", poll_interval, 1, 300, "1s and 5m", p);
    let confirm_ttl = duration(
        file,
        "mail.confirm_ttl",
        m.confirm_ttl.as_deref(),
        "24h",
        false,
        p,
    );
    within(
        "mail.confirm_ttl",
        confirm_ttl,
        3600,
        7 * 86400,
        "1h and 7d",
        p,
    );
    let reset_ttl = duration(
        file,
        "mail.reset_ttl",
        m.reset_ttl.as_deref(),
        "30m",
        false,
        p,
    );
    within("mail.reset_ttl", reset_ttl, 300, 7200, "5m and 2h", p);
    let max_attempts = m.max_attempts.unwrap_or(8);
    if !(1..=50).contains(&max_attempts) {
        p.add(file, "mail.max_attempts", "must be between 1 and 50");
    }
    (p.0.len() == before).then(|| MailSettings {
        from: m.from.clone(),
        host,
        port,
        security,
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
