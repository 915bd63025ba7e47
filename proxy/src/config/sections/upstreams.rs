//! `[upstream.*]`: servers, balancing, timeouts, retries, health checks.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::resolve::*;
use crate::config::runtime::*;
use crate::config::values::*;

pub(in crate::config) fn upstream_spec(
    file: &str,
    name: &str,
    u: &UpstreamFile,
    p: &mut Problems,
) -> Option<UpstreamSpec> {
    let key = format!("upstream.{name}");
    let before = p.0.len();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        p.add(
            file,
            &key,
            "upstream names use letters, digits, '-' and '_'",
        );
    }
    if u.servers.is_empty() {
        p.add(file, format!("{key}.servers"), "needs at least one server");
    }
    let mut servers = Vec::with_capacity(u.servers.len());
    for (i, s) in u.servers.iter().enumerate() {
        match resolve(s) {
            Ok(a) if servers.contains(&a) => p.add(
                file,
                format!("{key}.servers[{i}]"),
                format!("{s} is listed twice"),
            ),
            Ok(a) => servers.push(a),
            Err(why) => p.add(file, format!("{key}.servers[{i}]"), why),
        }
    }
    let balance = match (u.balance.as_deref(), u.hash_key.as_deref()) {
        (None | Some("round_robin"), None) => Balance::RoundRobin,
        (None | Some("round_robin"), Some(_)) => {
            p.add(
                file,
                format!("{key}.hash_key"),
                "only used with balance = \"consistent_hash\"",
            );
            Balance::RoundRobin
        }
        (Some("consistent_hash"), Some(k)) => match hash_key(k) {
            Ok(k) => Balance::ConsistentHash(k),
            Err(why) => {
                p.add(file, format!("{key}.hash_key"), why);
                Balance::RoundRobin
            }
        },
        (Some("consistent_hash"), None) => {
            p.add(file, format!("{key}.hash_key"), "consistent_hash needs a hash_key: \"ip\", \"path\", \"header:<name>\" or \"cookie:<name>\"");
            Balance::RoundRobin
        }
        (Some(other), _) => {
            p.add(
                file,
                format!("{key}.balance"),
                format!("\"{other}\" is not one of \"round_robin\", \"consistent_hash\""),
            );
            Balance::RoundRobin
        }
    };
    let d = |field: &str, value: &Option<String>, default: &str, p: &mut Problems| {
        duration(
            file,
            &format!("{key}.{field}"),
            value.as_deref(),
            default,
            false,
            p,
        )
    };
    let connect_timeout = d("connect_timeout", &u.connect_timeout, "1s", p);
    let read_timeout = d("read_timeout", &u.read_timeout, "30s", p);
    let write_timeout = d("write_timeout", &u.write_timeout, "30s", p);
    let idle_timeout = d("idle_timeout", &u.idle_timeout, "60s", p);
    let tls_sni = match (u.tls.unwrap_or(false), &u.sni) {
        (true, Some(sni)) => Some(sni.clone()),
        (true, None) => Some(
            u.servers
                .first()
                .and_then(|s| s.rsplit_once(':'))
                .map_or(String::new(), |(h, _)| h.to_string()),
        ),
        (false, Some(_)) => {
            p.add(file, format!("{key}.sni"), "only used with tls = true");
            None
        }
        (false, None) => None,
    };
    let protocol: UpstreamProtocol =
        choice(file, format!("{key}.protocol"), u.protocol.as_deref(), p);
    match (protocol, tls_sni.is_some()) {
        (UpstreamProtocol::H2, false) => p.add(
            file,
            format!("{key}.protocol"),
            "\"h2\" is negotiated over TLS: set tls = true, or use \"h2c\" for plain HTTP/2",
        ),
        (UpstreamProtocol::H2c, true) => p.add(
            file,
            format!("{key}.protocol"),
            "\"h2c\" is plain HTTP/2: with tls = true use \"h2\"",
        ),
        _ => {}
    }
    let health_check = u.health_check.as_ref().map(|h| {
        let hk = format!("{key}.health_check");
        if let Some(path) = &h.path {
            if !path.starts_with('/') {
                p.add(file, format!("{hk}.path"), "must start with '/'");
            }
        }
        let threshold = |field: &str, v: Option<usize>, p: &mut Problems| {
            let v = v.unwrap_or(1);
            if v == 0 {
                p.add(file, format!("{hk}.{field}"), "must be at least 1");
            }
            v
        };
        HealthCheckSpec {
            http_path: h.path.clone(),
            interval: duration(
                file,
                &format!("{hk}.interval"),
                h.interval.as_deref(),
                "5s",
                false,
                p,
            ),
            timeout: duration(
                file,
                &format!("{hk}.timeout"),
                h.timeout.as_deref(),
                "1s",
                false,
                p,
            ),
            healthy_threshold: threshold("healthy_threshold", h.healthy_threshold, p),
            unhealthy_threshold: threshold("unhealthy_threshold", h.unhealthy_threshold, p),
        }
    });
    if p.0.len() > before {
        return None;
    }
    Some(UpstreamSpec {
        name: name.to_string(),
        servers,
        balance,
        connect_timeout,
        read_timeout,
        write_timeout,
        idle_timeout,
        retries: u.retries.unwrap_or(1),
        tls_sni,
        protocol,
        health_check,
    })
}
