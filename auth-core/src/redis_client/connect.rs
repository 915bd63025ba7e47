//! Building the crate's clients from the settings: TLS material, ACL user, timeouts.

use super::settings::{RedisSettings, TlsFiles};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, ClientTlsConfig, ConnectionInfo, IntoConnectionInfo, RedisResult, TlsCertificates,
    TlsMode,
};
use std::time::Duration;

/// The connections' own response timeout only catches a dead connection: every caller puts
/// its own, shorter, timeout around each call (the proxy's 10 ms, the auth core's 100 ms), so
/// one client serves both.
const DEAD_CONNECTION: Duration = Duration::from_secs(1);

/// rustls needs a process-wide crypto provider before the first TLS connection; installing
/// it twice is harmless (the second attempt is refused and ignored).
pub(super) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn certificates(tls: &TlsFiles) -> TlsCertificates {
    TlsCertificates {
        client_tls: tls.client.as_ref().map(|(cert, key)| ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.clone(),
        }),
        root_cert: tls.ca.clone(),
    }
}

/// A private CA or a client certificate: the crate then builds its own TLS config rather than
/// trusting the system's roots.
fn custom_tls(s: &RedisSettings) -> Option<&TlsFiles> {
    s.tls
        .as_ref()
        .filter(|t| t.ca.is_some() || t.client.is_some())
}

fn connect_timeout(s: &RedisSettings) -> Duration {
    s.timeout.max(Duration::from_millis(250))
}

/// The URL with the configured ACL user and password applied (a password in the URL is kept
/// when none is configured).
fn info(url: &str, s: &RedisSettings) -> RedisResult<ConnectionInfo> {
    let info = url.into_connection_info()?;
    let mut redis = info.redis_settings().clone();
    if let Some(user) = &s.username {
        redis = redis.set_username(user);
    }
    if let Some(password) = &s.password {
        redis = redis.set_password(password);
    }
    Ok(info.set_redis_settings(redis))
}

/// A lazily connecting manager for one server: it reconnects by itself.
pub(super) fn single(url: &str, s: &RedisSettings) -> RedisResult<ConnectionManager> {
    let info = info(url, s)?;
    let client = match custom_tls(s) {
        Some(tls) => Client::build_with_tls(info, certificates(tls))?,
        None => Client::open(info)?,
    };
    manager(client, s)
}

pub(super) fn manager(client: Client, s: &RedisSettings) -> RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect_timeout(s)))
        .set_response_timeout(Some(DEAD_CONNECTION))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config)
}

/// Connects to the cluster through its seed nodes (the client then learns every node).
pub(super) async fn cluster(s: &RedisSettings) -> RedisResult<ClusterConnection> {
    let mut builder = ClusterClientBuilder::new(s.urls.clone())
        .connection_timeout(connect_timeout(s))
        .response_timeout(DEAD_CONNECTION)
        // a request caught by a failover is retried after the slots are re-read; the callers'
        // own timeouts bound the whole
        .retries(3)
        .min_retry_wait(10)
        .max_retry_wait(200);
    if let Some(user) = &s.username {
        builder = builder.username(user);
    }
    if let Some(password) = &s.password {
        builder = builder.password(password);
    }
    if let Some(tls) = custom_tls(s) {
        builder = builder.certs(certificates(tls));
    }
    builder.build()?.get_async_connection().await
}

/// The sentinel client that finds the current master of `master_name`.
pub(super) fn sentinel(s: &RedisSettings, master_name: &str) -> RedisResult<SentinelClient> {
    let mut addrs = Vec::with_capacity(s.urls.len());
    let mut sentinel_auth = None;
    for url in &s.urls {
        let info = url.as_str().into_connection_info()?;
        let r = info.redis_settings();
        if sentinel_auth.is_none() && r.password().is_some() {
            sentinel_auth = Some((
                r.username().map(str::to_string),
                r.password().unwrap_or_default().to_string(),
            ));
        }
        addrs.push(info.addr().clone());
    }
    let sentinels_tls = s.urls.iter().any(|u| u.starts_with("rediss://"));
    let mut b = SentinelClientBuilder::new(addrs, master_name, SentinelServerType::Master)?;
    if let Some(user) = &s.username {
        b = b.set_client_to_redis_username(user);
    }
    if let Some(password) = &s.password {
        b = b.set_client_to_redis_password(password);
    }
    if let Some(tls) = &s.tls {
        b = b.set_client_to_redis_tls_mode(TlsMode::Secure);
        if tls.ca.is_some() || tls.client.is_some() {
            b = b.set_client_to_redis_certificates(certificates(tls));
        }
        if sentinels_tls {
            b = b.set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if tls.ca.is_some() || tls.client.is_some() {
                b = b.set_client_to_sentinel_certificates(certificates(tls));
            }
        }
    }
    if let Some((user, password)) = sentinel_auth {
        if let Some(user) = user {
            b = b.set_client_to_sentinel_username(user);
        }
        b = b.set_client_to_sentinel_password(password);
    }
    b.build()
}

/// Builds the crate's clients without connecting: what the crate refuses (a cluster seed with a
/// database, TLS material it cannot use, a URL it cannot read) is refused by `edge check`.
pub fn check(s: &RedisSettings) -> RedisResult<()> {
    install_crypto();
    match &s.mode {
        super::Mode::Standalone => {
            for url in &s.urls {
                let info = info(url, s)?;
                match custom_tls(s) {
                    Some(tls) => Client::build_with_tls(info, certificates(tls))?,
                    None => Client::open(info)?,
                };
            }
        }
        super::Mode::Cluster => {
            let mut builder = ClusterClientBuilder::new(s.urls.clone());
            if let Some(tls) = custom_tls(s) {
                builder = builder.certs(certificates(tls));
            }
            builder.build()?;
        }
        super::Mode::Sentinel { master_name } => {
            sentinel(s, master_name)?;
        }
    }
    Ok(())
}
