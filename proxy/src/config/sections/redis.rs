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
    if r.master_name.is_some() && !matches!(mode, Mode::Sentinel { .. }) {
        // without mode = "sentinel" the edge would talk to a sentinel as if it were Redis
        p.add(
            file,
            "redis.master_name",
            "only sentinel mode has a master name: add mode = \"sentinel\"",
        );
    }
    let listed = r.urls.is_some();
    let urls = match (r.url, r.urls) {
        (Some(_), Some(_)) => {
            p.add(file, "redis.urls", "give url or urls, not both");
            Vec::new()
        }
        (Some(url), None) => vec![url],
        (None, Some(urls)) if !urls.is_empty() => urls,
        (None, Some(_)) => {
            p.add(file, "redis.urls", "is empty");
            Vec::new()
        }
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
    let mut credentials = std::collections::HashSet::new();
    for (i, url) in urls.iter().enumerate() {
        let key = if listed {
            format!("redis.urls[{i}]")
        } else {
            "redis.url".to_string()
        };
        let scheme_ok = url.starts_with("redis://")
            || url.starts_with("rediss://")
            || (url.starts_with("unix://") && mode == Mode::Standalone);
        if url.contains('#') {
            // the redis crate reads `#insecure` as "do not verify the server's certificate"
            p.add(
                file,
                key,
                "a URL fragment is refused (#insecure would turn certificate checks off); use tls.ca for a private CA",
            );
        } else if !scheme_ok {
            p.add(
                file,
                key,
                format!(
                    "\"{}\" is not a redis:// or rediss:// URL",
                    auth_core::plumbing::redact::url(url)
                ),
            );
        } else {
            match redis::IntoConnectionInfo::into_connection_info(url.as_str()) {
                Err(e) => p.add(file, key, format!("not a valid Redis URL: {e}")),
                Ok(info) if mode == Mode::Cluster && info.redis_settings().db() != 0 => p.add(
                    file,
                    key,
                    "a cluster has one database (0): drop the /N from the URL",
                ),
                Ok(info) => {
                    let r = info.redis_settings();
                    credentials.insert((
                        r.username().map(str::to_string),
                        r.password().map(str::to_string),
                    ));
                }
            }
        }
    }
    if mode == Mode::Cluster && credentials.len() > 1 {
        // the cluster client uses one user for every node
        p.add(
            file,
            "redis.urls",
            "the seed URLs carry different credentials: give them once with username and password_env",
        );
    }
    // TLS is all or nothing for the data nodes: a mixed list would send the password in clear
    // to some of them. Sentinels may differ (their URLs say).
    let tls_urls = urls.iter().filter(|u| u.starts_with("rediss://")).count();
    if tls_urls > 0 && tls_urls < urls.len() {
        p.add(
            file,
            "redis.urls",
            "mixes redis:// and rediss://: use rediss:// for every node",
        );
    }
    let data_tls = match &mode {
        // the sentinels' URLs say whether the sentinels speak TLS; `tls` says the data nodes do
        Mode::Sentinel { .. } => r.tls.is_some() || tls_urls > 0,
        _ => {
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
    let spec = RedisSpec {
        mode,
        urls,
        username: r.username,
        password,
        tls,
        timeout,
    };
    // what the redis crate itself refuses (a seed URL with a database, a malformed key),
    // found now rather than by the connection task at every retry
    if let Err(e) = auth_core::redis_client::check(&spec) {
        p.add(file, "redis", e);
        return None;
    }
    Some(spec)
}

/// Reads the PEM files now, so a wrong path is refused by `edge check`, not found at the
/// first connection.
fn tls_files(dir: &Path, file: &str, t: Option<&RedisTlsFile>, p: &mut Problems) -> TlsFiles {
    let Some(t) = t else {
        return TlsFiles::default(); // the system's roots, no client certificate
    };
    let mut read = |key: &str, path: &Option<String>| -> Option<Vec<u8>> {
        let path = path.as_ref()?;
        let pem = if key == "key" {
            auth_core::redis_client::TlsFiles::check_key
        } else {
            auth_core::redis_client::TlsFiles::check_certificates
        };
        match std::fs::read(dir.join(path)) {
            Ok(bytes) => match pem(&bytes) {
                Ok(()) => Some(bytes),
                Err(e) => {
                    p.add(file, format!("redis.tls.{key}"), format!("{path}: {e}"));
                    None
                }
            },
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
