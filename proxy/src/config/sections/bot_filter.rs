//! Validation of `[bot_filter]` and its `[[bot_filter.rule]]` list. Regexes are compiled here
//! once to report mistakes by key; the runtime compiles them again from the checked sources.

use crate::config::error::Problems;
use crate::config::file::{BotFilterFile, BotRuleFile};
use crate::config::runtime::{BotAction, BotFilterSpec, BotRuleSpec};
use crate::config::values::{choice, cidrs, cookie_name, duration, normalize_prefix, parse_rate};
use std::time::Duration;

/// Environment variable read for the HMAC key when the file has none.
pub const SECRET_ENV: &str = "EDGE_BOT_FILTER_SECRET";
const MIN_SECRET_BYTES: usize = 32;

pub(in crate::config) fn settings(
    file: &str,
    b: BotFilterFile,
    limits: &[crate::config::runtime::LimitSpec],
    p: &mut Problems,
) -> Option<BotFilterSpec> {
    let before = p.0.len();
    let secret = match b.secret.or_else(|| std::env::var(SECRET_ENV).ok()) {
        Some(s) if s.len() >= MIN_SECRET_BYTES => Some(s.into_bytes()),
        Some(_) => {
            p.add(
                file,
                "bot_filter.secret",
                format!("must be at least {MIN_SECRET_BYTES} bytes (or unset {SECRET_ENV})"),
            );
            None
        }
        None => None,
    };
    let d = |key: &str, v: &Option<String>, default: &str, p: &mut Problems| {
        duration(
            file,
            &format!("bot_filter.{key}"),
            v.as_deref(),
            default,
            false,
            p,
        )
    };
    let pass_ttl = d("pass_ttl", &b.pass_ttl, "45m", p);
    if !(Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(&pass_ttl) {
        p.add(file, "bot_filter.pass_ttl", "must be between 1m and 24h");
    }
    let challenge_ttl = d("challenge_ttl", &b.challenge_ttl, "2m", p);
    let min_answer_time = duration(
        file,
        "bot_filter.min_answer_time",
        b.min_answer_time.as_deref(),
        "1500ms",
        true,
        p,
    );
    if min_answer_time >= challenge_ttl {
        p.add(
            file,
            "bot_filter.min_answer_time",
            "must be shorter than challenge_ttl, or no answer could ever pass",
        );
    }
    let max_failures = b.max_failures.unwrap_or(5);
    if max_failures == 0 {
        p.add(file, "bot_filter.max_failures", "must be at least 1");
    }
    let failure_window = d("failure_window", &b.failure_window, "10m", p);
    let lockout_texts = b
        .lockouts
        .unwrap_or_else(|| vec!["1m".into(), "5m".into(), "30m".into()]);
    if lockout_texts.is_empty() {
        p.add(
            file,
            "bot_filter.lockouts",
            "must list at least one duration",
        );
    }
    let lockouts = lockout_texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            duration(
                file,
                &format!("bot_filter.lockouts[{i}]"),
                Some(t),
                "",
                false,
                p,
            )
        })
        .collect();
    let app_header = b
        .app_header
        .and_then(|h| match http::HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) => Some(name),
            Err(_) => {
                p.add(
                    file,
                    "bot_filter.app_header",
                    format!("\"{h}\" is not a header name"),
                );
                None
            }
        });
    let pass_rate = match parse_rate(b.pass_rate.as_deref().unwrap_or("10/s")) {
        Ok(r) => r,
        Err(why) => {
            p.add(file, "bot_filter.pass_rate", why);
            1.0
        }
    };
    let pass_burst = b.pass_burst.unwrap_or(50).max(1);
    let cookie = b.cookie.unwrap_or_else(|| "edge_pass".into());
    cookie_name(file, "bot_filter.cookie", &cookie, p);
    if let Some(name) = &b.answer_limit {
        if !limits.iter().any(|l| &l.name == name) {
            p.add(
                file,
                "bot_filter.answer_limit",
                format!("no [limit.{name}] is defined"),
            );
        }
    }
    let rules = b
        .rule
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| rule(file, i, r, p))
        .collect();
    (p.0.len() == before).then_some(BotFilterSpec {
        secret,
        pass_ttl,
        challenge_ttl,
        min_answer_time,
        max_failures,
        failure_window,
        lockouts,
        app_header,
        pass_rate,
        pass_burst,
        cookie,
        answer_limit: b.answer_limit,
        rules,
    })
}

fn rule(file: &str, i: usize, r: BotRuleFile, p: &mut Problems) -> Option<BotRuleSpec> {
    let key = format!("bot_filter.rule[{i}]");
    let before = p.0.len();
    if r.name.trim().is_empty() {
        p.add(file, format!("{key}.name"), "must not be empty");
    }
    let regex = |k: String, src: &str, p: &mut Problems| {
        if let Err(e) = regex::Regex::new(src) {
            p.add(file, k, format!("is not a valid regex: {e}"));
        }
    };
    if let Some(ua) = &r.user_agent {
        regex(format!("{key}.user_agent"), ua, p);
    }
    let mut headers = Vec::new();
    for (name, src) in &r.header {
        regex(format!("{key}.header.{name}"), src, p);
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => headers.push((h, src.clone())),
            Err(_) => p.add(file, format!("{key}.header.{name}"), "is not a header name"),
        }
    }
    let paths = r
        .path
        .iter()
        .enumerate()
        .filter_map(|(j, path)| match normalize_prefix(path) {
            Ok(prefix) => Some(prefix),
            Err(why) => {
                p.add(file, format!("{key}.path[{j}]"), why);
                None
            }
        })
        .collect();
    let clients = cidrs(file, &format!("{key}.client"), &r.client, p);
    let rate = r.rate.map(|rate| {
        let window = duration(
            file,
            &format!("{key}.rate.window"),
            Some(&rate.window),
            "",
            false,
            p,
        );
        if rate.requests == 0 {
            p.add(file, format!("{key}.rate.requests"), "must be at least 1");
        }
        (rate.requests, window)
    });
    let action: BotAction = choice(file, format!("{key}.action"), Some(&r.action), p);
    (p.0.len() == before).then_some(BotRuleSpec {
        name: r.name,
        user_agent: r.user_agent,
        paths,
        clients,
        headers,
        rate,
        failed_challenges: r.failed_challenges,
        action,
    })
}
