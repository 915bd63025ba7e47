//! How each section of the conf takes effect on a running edge. Every section is in
//! `SECTIONS`, declared live (the next generation is built with it) or restart (read once
//! when the process starts). A reload compares every section: live changes are named in the
//! reload's log line; restart changes are named at every reload until the next start (or, for
//! listeners and `[server]`, a binary upgrade), and the new generation keeps the values the
//! process started with, so what runs is what the generation says.

use super::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Rebuilt on reload.
    Live,
    /// Read at start; a reload keeps the start value.
    Restart,
}

/// One section of the conf and how it changes.
pub struct Section {
    pub name: &'static str,
    pub applies: Applies,
    changed: fn(&Config, &Config) -> bool,
    /// For restart sections: puts the start value back into a new conf.
    keep: fn(&mut Config, &Config),
}

fn nothing(_: &mut Config, _: &Config) {}

/// The listeners as read at start: addresses, protocols, redirects, but not certificates.
fn without_certificates(c: &Config) -> Vec<super::ListenerSpec> {
    let mut listeners = c.listeners.clone();
    for tls in listeners.iter_mut().filter_map(|l| l.tls.as_mut()) {
        tls.certificates.clear();
    }
    listeners
}

fn certificates(c: &Config) -> Vec<(std::net::SocketAddr, &[super::CertificateSpec])> {
    c.listeners
        .iter()
        .filter_map(|l| Some((l.address, l.tls.as_ref()?.certificates.as_slice())))
        .collect()
}

/// The start's listeners, each TLS one with the certificates the new conf gives it.
fn keep_listeners(new: &mut Config, started: &Config) {
    let mut kept = started.listeners.clone();
    for l in &mut kept {
        let fresh = new
            .listeners
            .iter()
            .find(|n| n.address == l.address)
            .and_then(|n| n.tls.as_ref());
        if let (Some(tls), Some(fresh)) = (l.tls.as_mut(), fresh) {
            tls.certificates = fresh.certificates.clone();
        }
    }
    new.listeners = kept;
}

/// The embedded core's settings without the `[client_ip]` prefixes it was handed (those are
/// compared as their own section).
fn core_settings(c: &Config) -> Option<auth_core::Config> {
    c.auth.clone().map(|mut core| {
        core.client_networks = Default::default();
        core
    })
}

/// Whether the embedded core's own settings differ (read when it starts). With the core in
/// the process the edge's token checks follow its keys, issuer and cookie: they wait with it.
fn core_changed(a: &Config, b: &Config) -> bool {
    core_settings(a) != core_settings(b)
        || ((a.auth.is_some() || b.auth.is_some()) && a.identity != b.identity)
}

/// The prefixes the running core counts login attempts by.
fn core_networks(c: &Config) -> Option<&auth_core::client_network::ClientNetworks> {
    c.auth.as_ref().map(|core| &core.client_networks)
}

pub const SECTIONS: &[Section] = &[
    Section {
        name: "[[listener]]",
        applies: Applies::Restart,
        changed: |a, b| without_certificates(a) != without_certificates(b),
        keep: keep_listeners,
    },
    Section {
        // new handshakes use them at once (server/tls.rs); established connections keep theirs
        name: "[[listener.certificate]]",
        applies: Applies::Live,
        changed: |a, b| certificates(a) != certificates(b),
        keep: nothing,
    },
    Section {
        name: "[server]",
        applies: Applies::Restart,
        changed: |a, b| a.server != b.server,
        keep: |n, s| n.server = s.server.clone(),
    },
    Section {
        name: "[log]",
        applies: Applies::Restart,
        changed: |a, b| a.log != b.log,
        keep: |n, s| n.log = s.log.clone(),
    },
    Section {
        name: "[redis]",
        applies: Applies::Restart,
        changed: |a, b| a.redis != b.redis,
        keep: |n, s| n.redis = s.redis.clone(),
    },
    Section {
        name: "[tracing]",
        applies: Applies::Restart,
        changed: |a, b| a.tracing != b.tracing,
        keep: |n, s| n.tracing = s.tracing.clone(),
    },
    Section {
        // the core, its database, keys, social providers and throttles run from start; the
        // edge's token checks follow its keys and issuer, so they wait with it
        name: "[auth] and [social] of the embedded core",
        applies: Applies::Restart,
        changed: core_changed,
        keep: |n, s| {
            n.auth = s.auth.clone();
            n.identity = s.identity.clone();
        },
    },
    Section {
        name: "[client_ip] prefixes the embedded core counts logins by",
        applies: Applies::Restart,
        changed: |a, b| {
            a.auth.is_some() && b.auth.is_some() && core_networks(a) != core_networks(b)
        },
        keep: |n, s| {
            if let (Some(new), Some(start)) = (n.auth.as_mut(), s.auth.as_ref()) {
                new.client_networks = start.client_networks;
            }
        },
    },
    Section {
        // with a core running elsewhere (jwks_url); the embedded core's are restart above
        name: "[auth] token verification (keys, jwks_url, issuer, audience, token_cookie)",
        applies: Applies::Live,
        changed: |a, b| a.identity != b.identity,
        keep: nothing,
    },
    Section {
        name: "[rate_limit] local_capacity",
        applies: Applies::Restart,
        changed: |a, b| a.rate_limit.local_capacity != b.rate_limit.local_capacity,
        keep: |n, s| n.rate_limit.local_capacity = s.rate_limit.local_capacity,
    },
    Section {
        name: "[rate_limit]",
        applies: Applies::Live,
        changed: |a, b| {
            let (a, b) = (&a.rate_limit, &b.rate_limit);
            (
                a.replicas,
                a.headers_on_success,
                a.breaker_failures,
                a.breaker_cooldown,
            ) != (
                b.replicas,
                b.headers_on_success,
                b.breaker_failures,
                b.breaker_cooldown,
            )
        },
        keep: nothing,
    },
    Section {
        name: "[limit.*]",
        applies: Applies::Live,
        changed: |a, b| a.limits != b.limits,
        keep: nothing,
    },
    Section {
        name: "[[upstream]]",
        applies: Applies::Live,
        changed: |a, b| a.upstreams != b.upstreams,
        keep: nothing,
    },
    Section {
        name: "[[route]]",
        applies: Applies::Live,
        changed: |a, b| a.routes != b.routes,
        keep: nothing,
    },
    Section {
        name: "[client_ip]",
        applies: Applies::Live,
        changed: |a, b| a.client_ip != b.client_ip,
        keep: nothing,
    },
    Section {
        name: "[metrics]",
        applies: Applies::Live,
        changed: |a, b| a.metrics_allow != b.metrics_allow,
        keep: nothing,
    },
    Section {
        name: "[[issuer]]",
        applies: Applies::Live,
        changed: |a, b| a.issuers != b.issuers,
        keep: nothing,
    },
    Section {
        name: "[forward_auth]",
        applies: Applies::Live,
        changed: |a, b| a.forward_auth != b.forward_auth,
        keep: nothing,
    },
    Section {
        name: "[http]",
        applies: Applies::Live,
        changed: |a, b| a.http != b.http,
        keep: nothing,
    },
    Section {
        name: "[bot_filter]",
        applies: Applies::Live,
        changed: |a, b| a.bot_filter != b.bot_filter,
        keep: nothing,
    },
];

/// What a reload changes.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Live sections that differ from the running generation: applied by this reload.
    pub applied: Vec<&'static str>,
    /// Restart sections that differ from the start: kept at their start values.
    pub pending: Vec<&'static str>,
}

/// Compares `new` with the running generation (`current`) and the start (`started`), and
/// puts the start values of restart sections back into `new`.
pub fn reconcile(started: &Config, current: &Config, new: &mut Config) -> Changes {
    // Every field of the conf must be in SECTIONS: adding one without deciding how it
    // reloads fails to compile here.
    let Config {
        dir: _,
        server: _,
        log: _,
        listeners: _,
        routes: _,
        upstreams: _,
        redis: _,
        rate_limit: _,
        limits: _,
        client_ip: _,
        metrics_allow: _,
        auth: _,
        identity: _,
        bot_filter: _,
        tracing: _,
        http: _,
        forward_auth: _,
        issuers: _,
    } = new;
    let mut changes = Changes::default();
    for section in SECTIONS {
        match section.applies {
            Applies::Restart => {
                if (section.changed)(started, new) {
                    changes.pending.push(section.name);
                    (section.keep)(new, started);
                }
            }
            Applies::Live => {}
        }
    }
    // live sections are compared once the restart ones hold their effective values
    for section in SECTIONS.iter().filter(|s| s.applies == Applies::Live) {
        if (section.changed)(current, new) {
            changes.applied.push(section.name);
        }
    }
    changes
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
    fn live_sections_are_applied_and_restart_sections_keep_their_start_values() {
        let started = base();
        let mut new = started.clone();
        new.rate_limit.replicas = 4;
        new.rate_limit.breaker_failures += 1;
        new.metrics_allow.clear();
        new.client_ip.header = crate::config::ForwardedHeader::XRealIp;
        new.bot_filter = Some(bot());
        new.log.level = "debug".into();
        new.rate_limit.local_capacity += 1;
        let changes = reconcile(&started, &started, &mut new);
        assert_eq!(
            changes.applied,
            ["[rate_limit]", "[client_ip]", "[metrics]", "[bot_filter]"]
        );
        assert_eq!(changes.pending, ["[log]", "[rate_limit] local_capacity"]);
        // the restart values are the start ones again, the live ones the new ones
        assert_eq!(new.log, started.log);
        assert_eq!(
            new.rate_limit.local_capacity,
            started.rate_limit.local_capacity
        );
        assert_eq!(new.rate_limit.replicas, 4);
        assert!(new.bot_filter.is_some());
    }

    #[test]
    fn a_pending_change_is_named_at_every_reload_and_a_live_one_once() {
        let started = base();
        let mut first = started.clone();
        first.log.level = "debug".into();
        first.bot_filter = Some(bot());
        let changes = reconcile(&started, &started, &mut first);
        assert_eq!(changes.pending, ["[log]"]);
        assert_eq!(changes.applied, ["[bot_filter]"]);

        let current = first.clone();
        let mut second = current.clone();
        second.log.level = "debug".into();
        let changes = reconcile(&started, &current, &mut second);
        assert_eq!(changes.pending, ["[log]"]);
        assert!(changes.applied.is_empty(), "{changes:?}");
    }

    fn with_core(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("edge.toml"),
            format!(
                "[[listener]]\naddress = \"127.0.0.1:1\"\n\
                 [auth]\ndatabase_url = \"postgres://edge@127.0.0.1:5432/edge\"\n\
                 keys_dir = \"/var/lib/edge/keys\"\nissuer = \"i\"\naudience = \"a\"\n{extra}"
            ),
        )
        .unwrap();
        crate::config::load(dir.path()).unwrap()
    }

    #[test]
    fn with_the_embedded_core_token_checks_and_its_prefixes_wait_for_a_restart() {
        let started = with_core("");
        // [client_ip] is live for the edge; the core keeps the prefixes it started with
        let mut new = with_core("[client_ip]\nipv4_prefix = 24\n");
        let changes = reconcile(&started, &started, &mut new);
        assert_eq!(changes.applied, ["[client_ip]"]);
        assert_eq!(
            changes.pending,
            ["[client_ip] prefixes the embedded core counts logins by"]
        );
        assert_eq!(new.auth, started.auth);
        assert_ne!(new.client_ip, started.client_ip);

        // the token cookie belongs to the core's sign-in: it waits with the core
        let mut new = with_core("token_cookie = \"tok\"\n");
        let changes = reconcile(&started, &started, &mut new);
        assert_eq!(
            changes.pending,
            ["[auth] and [social] of the embedded core"]
        );
        assert!(changes.applied.is_empty(), "{changes:?}");
        assert_eq!(new.identity, started.identity);
    }

    #[test]
    fn every_section_has_a_distinct_name() {
        let mut names: Vec<_> = SECTIONS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SECTIONS.len());
    }
}
