//! How each part of the conf takes effect on a running edge. Everything not named here is
//! live: routes, upstreams, limits, `[rate_limit] replicas` and `headers_on_success`,
//! `[client_ip]` for the edge's own decisions, `[metrics]`, the bot filter's rules and the
//! settings it reads per request. The parts below are read once, when the process starts;
//! a reload keeps their start values and names them, every time, until the next start.

use super::Config;

/// The parts of `new` that differ from what the process started with and wait for a restart
/// (or, for listeners and `[server]`, a binary upgrade).
pub fn pending_restart(started: &Config, new: &Config) -> Vec<&'static str> {
    let mut pending = Vec::new();
    let mut check = |changed: bool, what: &'static str| {
        if changed {
            pending.push(what);
        }
    };
    check(
        new.listeners != started.listeners || new.server != started.server,
        "[[listener]] and [server] (a binary upgrade: edge run --upgrade)",
    );
    check(new.redis != started.redis, "[redis]");
    check(new.log != started.log, "[log]");
    check(
        new.auth != started.auth,
        "[auth] and [social] of the embedded core (with the [client_ip] prefixes it counts by)",
    );
    check(
        new.identity != started.identity,
        "[auth] token verification (keys, jwks_url, issuer, audience, token_cookie)",
    );
    check(new.tracing != started.tracing, "[tracing]");
    let (s, n) = (&started.rate_limit, &new.rate_limit);
    check(
        (s.breaker_failures, s.breaker_cooldown, s.local_capacity)
            != (n.breaker_failures, n.breaker_cooldown, n.local_capacity),
        "[rate_limit] breaker_failures, breaker_cooldown, local_capacity",
    );
    match (&started.bot_filter, &new.bot_filter) {
        (None, Some(_)) => check(
            true,
            "[bot_filter] added (the filter is built at start; once running, its rules reload)",
        ),
        (Some(s), Some(n)) => check(
            s.failure_window != n.failure_window
                || (started.redis.is_none() && s.challenge_ttl != n.challenge_ttl),
            "[bot_filter] failure_window (and challenge_ttl without [redis])",
        ),
        _ => {}
    }
    pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BotFilterSpec;
    use std::time::Duration;

    fn bot() -> BotFilterSpec {
        BotFilterSpec {
            secret: None,
            pass_ttl: Duration::from_secs(60),
            challenge_ttl: Duration::from_secs(60),
            min_answer_time: Duration::from_secs(1),
            max_failures: 3,
            failure_window: Duration::from_secs(600),
            lockouts: vec![],
            app_header: None,
            pass_rate: 1.0,
            pass_burst: 1,
            cookie: "p".into(),
            answer_limit: None,
            rules: vec![],
        }
    }

    fn base() -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("edge.toml"),
            "[[listener]]\naddress = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        crate::config::load(dir.path()).unwrap()
    }

    #[test]
    fn live_parts_are_not_named_and_start_only_parts_are() {
        let started = base();
        let mut live = started.clone();
        live.rate_limit.replicas = 4;
        live.metrics_allow.clear();
        live.client_ip.header = crate::config::ForwardedHeader::XRealIp;
        assert!(pending_restart(&started, &live).is_empty());

        let mut new = started.clone();
        new.rate_limit.breaker_failures += 1;
        new.bot_filter = Some(bot());
        new.log.level = "debug".into();
        let pending = pending_restart(&started, &new);
        assert_eq!(pending.len(), 3, "{pending:?}");
        assert!(pending.iter().any(|p| p.starts_with("[bot_filter] added")));

        let mut with_bot = started.clone();
        with_bot.bot_filter = Some(bot());
        let mut changed = with_bot.clone();
        if let Some(b) = changed.bot_filter.as_mut() {
            b.failure_window = Duration::from_secs(60);
            b.pass_ttl = Duration::from_secs(1);
        }
        assert_eq!(
            pending_restart(&with_bot, &changed),
            ["[bot_filter] failure_window (and challenge_ttl without [redis])"]
        );
    }
}
