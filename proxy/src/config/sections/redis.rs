//! `[redis]`: one server, Sentinel or Cluster; ACL user, password from the environment, TLS.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;
use auth_core::redis_client::{Mode, TlsFiles};
use std::path::Path;

pub(in crate::config) fn redis_spec(
    dir: &Path,
    file: &str,
    r: RedisFile,
    p: &mut Problems,
) -> Option<RedisSpec> {
    let before = p.0.len();
    let mode = match r.mode.as_deref().unwrap_or("standalone") {
        "standalone" => Mode::Standalone,
        "cluster" => Mode::Cluster,
        "sentinel" => match r.master_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => Mode::Sentinel {
                master_name: name.to_string(),
            },
            _ => {
                p.add(
                    file,
                    "redis.master_name",
                    "sentinel mode needs the master's name as the sentinels know it",
                );
                Mode::Standalone
            }
        },
        other => {
            p.add(
                file,
                "redis.mode",
                format!("\"{other}\" is not one of standalone, sentinel, cluster"),
            );
            Mode::Standalone
        }
    };
    if r.master_name.is_some() && !matches!(mode, Mode::Sentinel { .. }) && r.mode.is_some() {
        p.add(
            file,
            "redis.master_name",
            "only sentinel mode has a master name",
        );
    }
    let urls = match (r.url, r.urls) {
        (Some(_), Some(_)) => {
            p.add(file, "redis.urls", "give url or urls, not both");
            Vec::new()
        }
        (Some(url), None) => vec![url],
        (None, Some(urls)) if !urls.is_empty() => urls,
        _ => {
            p.add(
                file,
                "redis.url",
                "missing: the Redis server (or redis.urls for sentinel and cluster)",
            );
            Vec::new()
        }
    };
    if mode == Mode::Standalone && urls.len() > 1 {
        p.add(
            file,
            "redis.urls",
            "standalone mode takes one server: set mode = \"cluster\" or \"sentinel\" for several",
        );
    }
    for (i, url) in urls.iter().enumerate() {
        let key = if urls.len() == 1 {
            "redis.url".to_string()
        } else {
            format!("redis.urls[{i}]")
        };
        let scheme_ok = url.starts_with("redis://")
            || url.starts_with("rediss://")
            || (url.starts_with("unix://") && mode == Mode::Standalone);
        if !scheme_ok {
            p.add(
                file,
                key,
                format!(
                    "\"{}\" is not a redis:// or rediss:// URL",
                    auth_core::plumbing::redact::url(url)
                ),
            );
        } else if let Err(e) = redis::IntoConnectionInfo::into_connection_info(url.as_str()) {
            p.add(file, key, format!("not a valid Redis URL: {e}"));
        }
    }
    // TLS is all or nothing for the data nodes: a mixed list would send the password in clear
    // to some of them. Sentinels may differ (their URLs say).
    let tls_urls = urls.iter().filter(|u| u.starts_with("rediss://")).count();
    let data_tls = match &mode {
        Mode::Sentinel { .. } => r.tls.is_some() || tls_urls > 0,
        _ => {
            if tls_urls > 0 && tls_urls < urls.len() {
                p.add(
                    file,
                    "redis.urls",
                    "mixes redis:// and rediss://: use rediss:// for every node",
                );
            }
            if r.tls.is_some() && tls_urls == 0 && !urls.is_empty() {
                p.add(
                    file,
                    "redis.tls",
                    "is set but the URLs are redis://: use rediss:// URLs for TLS",
                );
            }
            tls_urls > 0
        }
    };
    let tls = if data_tls {
        Some(tls_files(dir, file, r.tls.as_ref(), p))
    } else {
        None
    };
    if r.username.as_deref().is_some_and(|u| u.trim().is_empty()) {
        p.add(file, "redis.username", "must not be empty");
    }
    let password = match &r.password_env {
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                p.add(
                    file,
                    "redis.password_env",
                    format!("environment variable {var} is not set"),
                );
                None
            }
        },
        None => None,
    };
    let timeout = duration(
        file,
        "redis.timeout",
        r.timeout.as_deref(),
        "10ms",
        false,
        p,
    );
    if p.0.len() > before {
        return None;
    }
    Some(RedisSpec {
        mode,
        urls,
        username: r.username,
        password,
        tls,
        timeout,
    })
}

/// Reads the PEM files now, so a wrong path is refused by `edge check`, not found at the
/// first connection.
fn tls_files(dir: &Path, file: &str, t: Option<&RedisTlsFile>, p: &mut Problems) -> TlsFiles {
    let Some(t) = t else {
        return TlsFiles::default(); // the system's roots, no client certificate
    };
    let mut read = |key: &str, path: &Option<String>| -> Option<Vec<u8>> {
        let path = path.as_ref()?;
        match std::fs::read(dir.join(path)) {
            Ok(bytes) if String::from_utf8_lossy(&bytes).contains("-----BEGIN ") => Some(bytes),
            Ok(_) => {
                p.add(
                    file,
                    format!("redis.tls.{key}"),
                    format!("{path} is not a PEM file"),
                );
                None
            }
            Err(e) => {
                p.add(
                    file,
                    format!("redis.tls.{key}"),
                    format!("cannot read {path}: {e}"),
                );
                None
            }
        }
    };
    let ca = read("ca", &t.ca);
    let cert = read("cert", &t.cert);
    let key = read("key", &t.key);
    let client = match (cert, key, t.cert.is_some(), t.key.is_some()) {
        (Some(c), Some(k), _, _) => Some((c, k)),
        (_, _, true, false) => {
            p.add(file, "redis.tls.key", "a client certificate needs its key");
            None
        }
        (_, _, false, true) => {
            p.add(file, "redis.tls.cert", "a client key needs its certificate");
            None
        }
        _ => None,
    };
    TlsFiles { ca, client }
}
