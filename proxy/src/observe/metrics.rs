//! `/_edge/metrics` in Prometheus text format, answered by the edge itself: requests by route
//! and status, latency histograms and upstream errors (`request_metrics.rs`), the limiter,
//! the bot filter, logins, and the health of Redis and the auth database.
//! Served only to clients in `[metrics] allow` (loopback by default), judged by the socket
//! peer; everyone else gets the edge's 404.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

pub const PATH: &str = "/_edge/metrics";

/// Renders every metric.
pub fn render(
    generation: &crate::server::generation::Generation,
    readiness: &crate::observe::health::Readiness,
) -> String {
    let shared = &readiness.live.shared;
    let limiter = &shared.limiter;
    let s = &limiter.stats;
    let mut out = String::with_capacity(1024);
    let counters = [
        (
            "edge_ratelimit_allowed_total",
            "Requests every rate-limit policy allowed.",
            &s.allowed,
        ),
        (
            "edge_ratelimit_lease_hits_total",
            "Requests allowed from tokens leased ahead from Redis, without a Redis call.",
            &s.lease_hits,
        ),
        (
            "edge_ratelimit_denied_total",
            "Requests refused with 429.",
            &s.denied,
        ),
        (
            "edge_ratelimit_denied_cached_total",
            "Refusals answered from the local denied-until cache, without Redis.",
            &s.denied_from_cache,
        ),
        (
            "edge_ratelimit_fallback_decisions_total",
            "Decisions made without Redis (on_redis_down) because it was unreachable.",
            &s.fallback_decisions,
        ),
        (
            "edge_ratelimit_redis_errors_total",
            "Redis errors and timeouts of the limiter.",
            &s.redis_errors,
        ),
        (
            "edge_ratelimit_fallback_tokens_charged_total",
            "Tokens admitted locally during a Redis outage, charged to the shared buckets after it.",
            &s.fallback_tokens_charged,
        ),
    ];
    write_counters(&mut out, &counters);
    if generation.bot.is_some() {
        let c = &shared.bot.counters;
        write_counters(
            &mut out,
            &[
                (
                    "edge_challenges_issued_total",
                    "Math questions issued by the bot filter.",
                    &c.issued,
                ),
                (
                    "edge_challenges_passed_total",
                    "Right answers (passes issued).",
                    &c.passed,
                ),
                (
                    "edge_challenges_failed_total",
                    "Wrong, too fast or misdirected answers.",
                    &c.failed,
                ),
                (
                    "edge_challenges_lockouts_total",
                    "Clients locked out after too many failures.",
                    &c.locked,
                ),
                (
                    "edge_bot_denied_total",
                    "Requests refused by a deny rule.",
                    &c.denied,
                ),
            ],
        );
    }
    let _ = write!(
        out,
        "# HELP edge_ratelimit_fallback Whether the limiter runs without Redis (circuit open).\n\
         # TYPE edge_ratelimit_fallback gauge\nedge_ratelimit_fallback {}\n",
        u8::from(limiter.in_fallback())
    );
    shared.route_metrics.render(&mut out);
    let conns = &shared.connections;
    let _ = write!(
        out,
        "# HELP edge_client_connections Client connections counted against [server] max_connections_per_client.\n\
         # TYPE edge_client_connections gauge\nedge_client_connections {}\n",
        conns.open()
    );
    write_counters(
        &mut out,
        &[(
            "edge_client_connections_refused_total",
            "Client connections refused because their network held max_connections_per_client.",
            &conns.refused,
        )],
    );
    if generation.identity.is_some() {
        let stats = &shared.identity_stats;
        write_counters(
            &mut out,
            &[
                (
                    "edge_token_key_reads_total",
                    "Reads of the token keys (directory or JWKS), periodic or for an unknown kid.",
                    &stats.key_reads,
                ),
                (
                    "edge_revocation_fail_open_total",
                    "Tokens let through unchecked because the deny list could not be read.",
                    &stats.revocation_fail_open,
                ),
            ],
        );
    }
    if let Some(up) = readiness.redis_up() {
        gauge(
            &mut out,
            "edge_redis_up",
            "Whether the last ping of Redis answered.",
            up,
        );
    }
    if let Some(redis) = &readiness.redis {
        let t = redis.status.view();
        let mode = redis.settings.mode.name();
        let _ = write!(
            out,
            "# HELP edge_redis_nodes Redis data nodes known (cluster: every node in CLUSTER NODES).\n\
             # TYPE edge_redis_nodes gauge\nedge_redis_nodes{{mode=\"{mode}\"}} {}\n\
             # HELP edge_redis_masters Masters in force (cluster: those serving slots).\n\
             # TYPE edge_redis_masters gauge\nedge_redis_masters{{mode=\"{mode}\"}} {}\n\
             # HELP edge_redis_masters_reachable Whether every master answers (cluster: every slot served).\n\
             # TYPE edge_redis_masters_reachable gauge\nedge_redis_masters_reachable{{mode=\"{mode}\"}} {}\n\
             # HELP edge_redis_failovers_total Changes of master seen since start (Sentinel or Cluster failovers).\n\
             # TYPE edge_redis_failovers_total counter\nedge_redis_failovers_total{{mode=\"{mode}\"}} {}\n",
            t.nodes,
            t.masters.len(),
            u8::from(t.reachable),
            t.failovers,
        );
    }
    if let Some(core) = readiness.auth_core() {
        gauge(
            &mut out,
            "edge_auth_database_up",
            "Whether the auth core reaches its database (circuit closed).",
            core.database_down_since_ms().is_none(),
        );
        out.push_str(
            "# HELP edge_auth_logins_total Logins by method and outcome.
# TYPE edge_auth_logins_total counter
",
        );
        let _ = write!(
            out,
            "# HELP edge_auth_password_checks_total Argon2 password verifications (unknown emails included).\n\
             # TYPE edge_auth_password_checks_total counter\nedge_auth_password_checks_total {}\n",
            core.password_checks()
        );
        for (method, outcomes) in [
            ("password", &core.stats.password_logins),
            ("social", &core.stats.social_logins),
        ] {
            for (outcome, n) in outcomes.snapshot() {
                let _ = writeln!(
                    out,
                    "edge_auth_logins_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        write_counters(
            &mut out,
            &[
                (
                    "edge_mail_sent_total",
                    "Outbox mails delivered to the SMTP relay.",
                    &core.stats.mail_sent,
                ),
                (
                    "edge_mail_retries_total",
                    "Mail attempts that failed and will be retried.",
                    &core.stats.mail_retries,
                ),
                (
                    "edge_mail_failed_total",
                    "Mails given up on after max_attempts or a permanent refusal.",
                    &core.stats.mail_failed,
                ),
            ],
        );
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str, value: bool) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}\n",
        u8::from(value)
    );
}

fn write_counters(out: &mut String, counters: &[(&str, &str, &std::sync::atomic::AtomicU64)]) {
    for (name, help, value) in counters {
        let value = value.load(Relaxed);
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    }
}
