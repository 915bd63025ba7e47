//! Validation of `[auth]`: the embedded auth core's settings (with `database_url`), or only a
//! JWKS URL of a core running elsewhere; either way, how the edge verifies tokens.

use crate::config::error::Problems;
use crate::config::file::AuthFile;
use crate::config::runtime::{IdentitySpec, KeysFrom, RedisSpec};
use crate::config::values::{cookie_name, duration, http_url};
use auth_core::config::{KeySettings, PasswordSettings, ThrottleSettings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The core's settings when it runs in this process, and the edge's verification settings.
pub(in crate::config) fn settings(
    file: &str,
    mut a: AuthFile,
    redis: Option<&RedisSpec>,
    p: &mut Problems,
) -> (Option<auth_core::Config>, Option<IdentitySpec>) {
    let before = p.0.len();
    for (key, value) in [("auth.issuer", &a.issuer), ("auth.audience", &a.audience)] {
        if value.trim().is_empty() {
            p.add(file, key, "must not be empty");
        }
    }
    let refresh_every = duration(
        file,
        "auth.keys_reload_interval",
        a.keys_reload_interval.as_deref(),
        "10s",
        false,
        p,
    );
    let cookie = a
        .token_cookie
        .take()
        .filter(|c| cookie_name(file, "auth.token_cookie", c, p));
    let identity = |keys| IdentitySpec {
        keys,
        issuer: a.issuer.clone(),
        audience: a.audience.clone(),
        refresh_every,
        cookie: cookie.clone(),
    };
    if let Some(url) = a.jwks_url.take() {
        http_url(file, "auth.jwks_url", &url, p);
        refuse_core_keys(file, &a, p);
        let spec = identity(KeysFrom::Jwks { url });
        return (None, (p.0.len() == before).then_some(spec));
    }
    let Some(mut core) = core(file, &a, redis, refresh_every, p) else {
        return (None, None);
    };
    core.device = a
        .device
        .as_ref()
        .and_then(|d| super::device::device(file, d, cookie.as_deref(), p));
    let spec = identity(KeysFrom::Dir {
        dir: core.keys.dir.clone(),
        token_ttl: core.access_ttl,
    });
    if p.0.len() == before {
        (Some(core), Some(spec))
    } else {
        (None, None)
    }
}

/// With `jwks_url` the core runs elsewhere: its own settings here would be silently unused.
fn refuse_core_keys(file: &str, a: &AuthFile, p: &mut Problems) {
    let set = [
        ("listen", a.listen.is_some()),
        ("database_url", a.database_url.is_some()),
        ("migrate_on_start", a.migrate_on_start.is_some()),
        ("db_max_connections", a.db_max_connections.is_some()),
        ("db_timeout", a.db_timeout.is_some()),
        ("access_ttl", a.access_ttl.is_some()),
        ("refresh_ttl", a.refresh_ttl.is_some()),
        ("refresh_reuse_grace", a.refresh_reuse_grace.is_some()),
        ("keys_dir", a.keys_dir.is_some()),
        ("generate_keys", a.generate_keys.is_some()),
        ("history_months_ahead", a.history_months_ahead.is_some()),
        ("password", a.password.is_some()),
        ("throttle", a.throttle.is_some()),
        ("device", a.device.is_some()),
    ];
    for (key, _) in set.iter().filter(|(_, is_set)| *is_set) {
        p.add(
            file,
            format!("auth.{key}"),
            "belongs to the embedded auth core: remove it, or remove auth.jwks_url",
        );
    }
}

/// The embedded core's settings.
fn core(
    file: &str,
    a: &AuthFile,
    redis: Option<&RedisSpec>,
    reload_interval: Duration,
    p: &mut Problems,
) -> Option<auth_core::Config> {
    let before = p.0.len();
    let listen_text = a.listen.as_deref().unwrap_or("127.0.0.1:8090");
    let listen = match listen_text.parse::<SocketAddr>() {
        // the core trusts x-real-ip from the edge: it must not be reachable from outside
        Ok(addr) if addr.ip().is_loopback() => addr,
        Ok(_) => {
            p.add(
                file,
                "auth.listen",
                "must be a loopback address (the edge routes /auth to it)",
            );
            SocketAddr::from(([127, 0, 0, 1], 8090))
        }
        Err(_) => {
            p.add(
                file,
                "auth.listen",
                format!("\"{listen_text}\" is not an ip:port address"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8090))
        }
    };
    let database_url = match a
        .database_url
        .clone()
        .or_else(|| std::env::var("DATABASE_URL").ok())
    {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => url,
        Some(_) => {
            p.add(file, "auth.database_url", "must be a postgres:// URL");
            String::new()
        }
        None => {
            p.add(
                file,
                "auth.database_url",
                "is not set, and neither is DATABASE_URL (or set auth.jwks_url to use a core running elsewhere)",
            );
            String::new()
        }
    };
    let keys_dir = a.keys_dir.clone().unwrap_or_default();
    if keys_dir.trim().is_empty() {
        p.add(
            file,
            "auth.keys_dir",
            "must be set for the embedded auth core",
        );
    }
    let d = |key: &str, v: &Option<String>, default: &str, p: &mut Problems| {
        duration(file, key, v.as_deref(), default, false, p)
    };
    let access_ttl = d("auth.access_ttl", &a.access_ttl, "15m", p);
    if !(Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(&access_ttl)
        && !access_ttl.is_zero()
    {
        p.add(file, "auth.access_ttl", "must be between 1m and 24h");
    }
    let refresh_ttl = d("auth.refresh_ttl", &a.refresh_ttl, "30d", p);
    if refresh_ttl < access_ttl {
        p.add(file, "auth.refresh_ttl", "must be at least auth.access_ttl");
    }
    let grace = duration(
        file,
        "auth.refresh_reuse_grace",
        a.refresh_reuse_grace.as_deref(),
        "10s",
        true,
        p,
    );
    if grace > Duration::from_secs(60) {
        p.add(
            file,
            "auth.refresh_reuse_grace",
            "must be at most 60s: a longer window lets a stolen token be replayed",
        );
    }
    let password = password(file, a.password.as_ref(), p);
    let throttle = throttle(file, a.throttle.as_ref(), p);
    let config = auth_core::Config {
        listen,
        database_url,
        migrate_on_start: a.migrate_on_start.unwrap_or(false),
        db_max_connections: a.db_max_connections.unwrap_or(10).max(1),
        db_timeout: d("auth.db_timeout", &a.db_timeout, "2s", p),
        redis: redis.cloned(),
        // the core's Redis calls sit on the login path, not the proxy path: allow more time
        redis_timeout: redis.map_or(Duration::from_millis(100), |r| {
            r.timeout.max(Duration::from_millis(100))
        }),
        issuer: a.issuer.clone(),
        audience: a.audience.clone(),
        access_ttl,
        refresh_ttl,
        refresh_reuse_grace: grace,
        keys: KeySettings {
            dir: PathBuf::from(keys_dir),
            generate_if_missing: a.generate_keys.unwrap_or(false),
            reload_interval,
        },
        password,
        throttle,
        history_months_ahead: a.history_months_ahead.unwrap_or(3),
        // filled from [client_ip] by validate.rs
        client_networks: Default::default(),
        // filled from [social] by validate.rs
        social: None,
        // `[auth.device]`, by `settings`
        device: None,
        // filled from [mail] by assemble.rs
        mail: None,
    };
    (p.0.len() == before).then_some(config)
}

fn password(
    file: &str,
    f: Option<&crate::config::file::AuthPasswordFile>,
    p: &mut Problems,
) -> PasswordSettings {
    let d = PasswordSettings::default();
    let Some(f) = f else { return d };
    let s = PasswordSettings {
        memory_kib: f.memory_kib.unwrap_or(d.memory_kib),
        iterations: f.iterations.unwrap_or(d.iterations),
        parallelism: f.parallelism.unwrap_or(d.parallelism),
        max_concurrent: f.max_concurrent.unwrap_or(d.max_concurrent),
    };
    if s.iterations == 0 {
        p.add(file, "auth.password.iterations", "must be at least 1");
    }
    if s.parallelism == 0 || s.parallelism > 16 {
        p.add(
            file,
            "auth.password.parallelism",
            "must be between 1 and 16",
        );
    }
    if s.memory_kib < 8 * s.parallelism.max(1) {
        p.add(
            file,
            "auth.password.memory_kib",
            "must be at least 8 x parallelism",
        );
    }
    if s.max_concurrent == 0 {
        p.add(file, "auth.password.max_concurrent", "must be at least 1");
    }
    s
}

fn throttle(
    file: &str,
    f: Option<&crate::config::file::AuthThrottleFile>,
    p: &mut Problems,
) -> ThrottleSettings {
    let d = ThrottleSettings::default();
    let Some(f) = f else { return d };
    let s = ThrottleSettings {
        per_account: f.per_account.unwrap_or(d.per_account),
        per_ip: f.per_ip.unwrap_or(d.per_ip),
        window: duration(
            file,
            "auth.throttle.window",
            f.window.as_deref(),
            "15m",
            false,
            p,
        ),
        slowdown_step: duration(
            file,
            "auth.throttle.slowdown_step",
            f.slowdown_step.as_deref(),
            "200ms",
            true,
            p,
        ),
        slowdown_max: duration(
            file,
            "auth.throttle.slowdown_max",
            f.slowdown_max.as_deref(),
            "2s",
            true,
            p,
        ),
    };
    if s.slowdown_max > Duration::from_secs(10) {
        // a request held longer than this holds a connection for nothing
        p.add(file, "auth.throttle.slowdown_max", "must be at most 10s");
    }
    if s.per_account == 0 {
        p.add(file, "auth.throttle.per_account", "must be at least 1");
    }
    if s.per_ip == 0 {
        p.add(file, "auth.throttle.per_ip", "must be at least 1");
    }
    s
}
