//! `[rate_limit]` and `[limit.*]`.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;

pub(in crate::config) fn rate_limit_settings(
    r: Option<(String, RateLimitFile)>,
    p: &mut Problems,
) -> RateLimitSettings {
    let d = RateLimitSettings::default();
    let Some((file, r)) = r else { return d };
    let replicas = r.replicas.unwrap_or(d.replicas);
    if replicas == 0 {
        p.add(&file, "rate_limit.replicas", "must be at least 1");
    }
    let breaker_failures = r.breaker_failures.unwrap_or(d.breaker_failures);
    if breaker_failures == 0 {
        p.add(&file, "rate_limit.breaker_failures", "must be at least 1");
    }
    RateLimitSettings {
        replicas: replicas.max(1),
        headers_on_success: r.headers_on_success.unwrap_or(d.headers_on_success),
        breaker_failures: breaker_failures.max(1),
        breaker_cooldown: duration(
            &file,
            "rate_limit.breaker_cooldown",
            r.breaker_cooldown.as_deref(),
            "1s",
            false,
            p,
        ),
        local_capacity: r.local_capacity.unwrap_or(d.local_capacity).max(1),
    }
}

/// The longest an empty bucket may take to fill (burst / rate): 30 days.
const MAX_FILL_SECS: f64 = 30.0 * 86_400.0;

pub(in crate::config) fn limit_spec(
    file: &str,
    name: &str,
    l: &LimitFile,
    p: &mut Problems,
) -> Option<LimitSpec> {
    let key = format!("limit.{name}");
    let before = p.0.len();
    let limit_key = match l.key.as_str() {
        "ip" => LimitKey::Ip,
        "user" => LimitKey::User,
        "route" => LimitKey::Route,
        other => {
            match other
                .strip_prefix("header:")
                .map(|h| http::HeaderName::from_bytes(h.as_bytes()))
            {
                Some(Ok(h)) => LimitKey::Header(h),
                _ => {
                    p.add(file, format!("{key}.key"), format!("\"{other}\" is not one of \"ip\", \"user\", \"route\", \"header:<name>\""));
                    LimitKey::Ip
                }
            }
        }
    };
    let rate = match parse_rate(&l.rate) {
        Ok(r) => r,
        Err(why) => {
            p.add(file, format!("{key}.rate"), why);
            1.0
        }
    };
    let burst = l.burst.unwrap_or_else(|| rate.ceil() as u64);
    if burst == 0 {
        p.add(file, format!("{key}.burst"), "must be at least 1");
    }
    // a bucket that takes longer than this to fill is a typo, and its microsecond arithmetic
    // would no longer fit in Redis's numbers
    if burst as f64 / rate > MAX_FILL_SECS {
        p.add(
            file,
            format!("{key}.burst"),
            format!("{burst} at {} takes more than 30 days to refill: lower the burst or raise the rate", l.rate),
        );
    }
    let cost = l.cost.unwrap_or(1);
    if cost == 0 || cost > burst.max(1) {
        p.add(
            file,
            format!("{key}.cost"),
            format!("must be between 1 and the burst ({burst})"),
        );
    }
    let on_redis_down: OnRedisDown = choice(
        file,
        format!("{key}.on_redis_down"),
        l.on_redis_down.as_deref(),
        p,
    );
    let lease = match &l.lease {
        None => LeaseSetting::Auto,
        Some(LeaseFile::Word(w)) if w == "auto" => LeaseSetting::Auto,
        Some(LeaseFile::Word(w)) if w == "off" => LeaseSetting::Off,
        Some(LeaseFile::Tokens(n)) if (cost..=burst.max(1)).contains(n) => LeaseSetting::Tokens(*n),
        Some(other) => {
            let shown = match other {
                LeaseFile::Tokens(n) => n.to_string(),
                LeaseFile::Word(w) => format!("\"{w}\""),
            };
            p.add(
                file,
                format!("{key}.lease"),
                format!("{shown}: write \"auto\", \"off\" or a number of tokens between the cost ({cost}) and the burst ({burst})"),
            );
            LeaseSetting::Auto
        }
    };
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        || name.is_empty()
    {
        p.add(file, &key, "limit names use letters, digits, '-' and '_'");
    }
    (p.0.len() == before).then(|| LimitSpec {
        name: name.to_string(),
        key: limit_key,
        rate,
        burst,
        cost,
        on_redis_down,
        lease,
    })
}
