//! Merging the files' sections (each section once across the dir, named tables unique) and
//! assembling the validated `Config`, with the cross-section checks.

use super::error::Problems;
use super::file::*;
use super::runtime::*;
use super::sections::*;
use super::{read::*, values::*};
use std::collections::BTreeMap;
use std::path::Path;

pub(super) fn validate(
    dir: &Path,
    dir_name: &str,
    files: Vec<Parsed>,
    all_parsed: bool,
    p: &mut Problems,
) -> Config {
    let mut server = None;
    let mut log = None;
    let mut listeners = Vec::new();
    let mut routes = Vec::new();
    let mut upstreams: BTreeMap<String, (String, UpstreamFile)> = BTreeMap::new();
    let mut redis = None;
    let mut rate_limit = None;
    let mut client_ip = None;
    let mut metrics = None;
    let mut auth = None;
    let mut bot_filter = None;
    let mut tracing = None;
    let mut social = None;
    let mut mail = None;
    let mut http = None;
    let mut forward_auth = None;
    let mut issuers = Vec::new();
    let mut limits: BTreeMap<String, (String, LimitFile)> = BTreeMap::new();

    for Parsed { name, conf } in files {
        once(&mut redis, &name, "redis", conf.redis, p);
        once(&mut rate_limit, &name, "rate_limit", conf.rate_limit, p);
        once(&mut client_ip, &name, "client_ip", conf.client_ip, p);
        once(&mut metrics, &name, "metrics", conf.metrics, p);
        once(&mut auth, &name, "auth", conf.auth, p);
        once(&mut bot_filter, &name, "bot_filter", conf.bot_filter, p);
        once(&mut tracing, &name, "tracing", conf.tracing, p);
        once(&mut social, &name, "social", conf.social, p);
        once(&mut mail, &name, "mail", conf.mail, p);
        once(&mut http, &name, "http", conf.http, p);
        once(
            &mut forward_auth,
            &name,
            "forward_auth",
            conf.forward_auth,
            p,
        );
        for (limit_name, l) in conf.limit {
            if let Some((first, _)) = limits.get(&limit_name) {
                p.add(
                    &name,
                    format!("limit.{limit_name}"),
                    format!("limit \"{limit_name}\" is already defined in {first}"),
                );
            } else {
                limits.insert(limit_name, (name.clone(), l));
            }
        }
        once(&mut server, &name, "server", conf.server, p);
        once(&mut log, &name, "log", conf.log, p);
        for (i, l) in conf.listener.into_iter().enumerate() {
            listeners.push((name.clone(), i, l));
        }
        for (i, f) in conf.issuer.into_iter().enumerate() {
            issuers.push((name.clone(), i, f));
        }
        for (i, r) in conf.route.into_iter().enumerate() {
            routes.push((name.clone(), i, r));
        }
        for (up_name, u) in conf.upstream {
            if let Some((first, _)) = upstreams.get(&up_name) {
                p.add(
                    &name,
                    format!("upstream.{up_name}"),
                    format!("upstream \"{up_name}\" is already defined in {first}"),
                );
            } else {
                upstreams.insert(up_name, (name.clone(), u));
            }
        }
    }

    let server = server_settings(server, p);
    let log = log_settings(log, p);
    if listeners.is_empty() && all_parsed {
        p.add(dir_name, "listener", "no [[listener]] is configured");
    }
    let listeners = listener_specs(dir, listeners, p);
    let upstream_specs: Vec<UpstreamSpec> = upstreams
        .iter()
        .filter_map(|(n, (file, u))| upstream_spec(file, n, u, p))
        .collect();
    let verifies_tokens = auth.is_some();
    let redis = redis.and_then(|(file, r)| redis_spec(dir, &file, r, p));
    let (mut auth, mut identity) = match auth {
        Some((file, a)) => auth_settings(&file, a, redis.as_ref(), p),
        None => (None, None),
    };
    let own_issuer = identity.as_ref().map(|i| i.issuer.clone());
    if !issuers.is_empty() && !verifies_tokens {
        let file = issuers[0].0.clone();
        p.add(
            &file,
            "issuer",
            "external issuers need the [auth] section (token verification at the edge)",
        );
    }
    let issuers = issuer_specs(issuers, own_issuer.as_deref(), p);
    let http = http_settings(http, p);
    let refs = RouteRefs {
        upstreams: &upstreams,
        limits: &limits,
        all_parsed,
        verifies_tokens,
        http: &http,
        issuers: &issuers,
    };
    let routes = route_specs(routes, &refs, p);
    let rate_limit = rate_limit_settings(rate_limit, p);
    let limits: Vec<LimitSpec> = limits
        .iter()
        .filter_map(|(n, (file, l))| limit_spec(file, n, l, p))
        .collect();
    let bot_filter = bot_filter.and_then(|(file, b)| bot_filter_settings(&file, b, &limits, p));
    let client_ip = client_ip.map_or_else(ClientIpSpec::default, |(file, c)| {
        client_ip_spec(&file, &c, p)
    });
    let metrics_allow = match metrics {
        Some((file, m)) => cidrs(&file, "metrics.allow", &m.allow, p),
        // loopback only by default
        None => ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
    };
    if let Some(core) = auth.as_mut() {
        core.client_networks = client_ip.networks;
    }
    if let Some((file, s)) = social {
        let cookie = identity.as_ref().and_then(|i| i.cookie.as_deref());
        let settings = social_settings(&file, s, cookie, p);
        // behind TLS the sign-in sets `__Host-<token_cookie>`: read the token from that name,
        // never from the bare one another subdomain could set
        if let (Some(s), Some(cookie)) =
            (&settings, identity.as_mut().and_then(|i| i.cookie.as_mut()))
        {
            *cookie = s.access_cookie();
        }
        match auth.as_mut() {
            Some(core) if redis.is_some() => core.social = settings,
            // a bad [auth] was reported already; only say what is missing
            _ if identity.is_none() && p.0.iter().any(|e| e.key.starts_with("auth")) => {}
            _ => p.add(
                &file,
                "social",
                "needs the embedded auth core ([auth] with database_url) and [redis] (sign-ins in progress live there)",
            ),
        }
    }
    if let Some((file, m)) = mail {
        let settings = mail_settings(dir, &file, &m, p);
        match auth.as_mut() {
            Some(core) if redis.is_some() => core.mail = settings,
            _ if identity.is_none() && p.0.iter().any(|e| e.key.starts_with("auth")) => {}
            _ => p.add(
                &file,
                "mail",
                "needs the embedded auth core ([auth] with database_url) and [redis] (the limits on mail live there)",
            ),
        }
    }
    let forward_auth = forward_auth.and_then(|(file, f)| {
        let verifies = identity.is_some() || !all_parsed;
        forward_auth_spec(&file, f, verifies, &issuers, all_parsed, p)
    });
    Config {
        dir: dir.to_path_buf(),
        server,
        log,
        listeners,
        routes,
        upstreams: upstream_specs,
        redis,
        rate_limit,
        limits,
        client_ip,
        metrics_allow,
        auth,
        identity,
        bot_filter,
        tracing: tracing.and_then(|(file, t)| tracing_spec(&file, t, p)),
        http,
        forward_auth,
        issuers,
    }
}

/// Keeps the first file's section and reports any other file that sets it again.
pub(super) fn once<T>(
    slot: &mut Option<(String, T)>,
    file: &str,
    section: &str,
    value: Option<T>,
    p: &mut Problems,
) {
    let Some(value) = value else { return };
    match slot {
        Some((first, _)) => p.add(
            file,
            section,
            format!("[{section}] is already set in {first}"),
        ),
        None => *slot = Some((file.to_string(), value)),
    }
}
