//! The Redis connection shared by the edge's features: one multiplexed connection
//! (`ConnectionManager`, reconnecting by itself), created lazily on a background runtime so
//! the edge starts, and keeps serving, while Redis is down.

use crate::config::RedisSpec;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub struct SharedRedis {
    pub spec: RedisSpec,
    conn: OnceLock<ConnectionManager>,
}

impl SharedRedis {
    pub fn new(spec: RedisSpec) -> Arc<SharedRedis> {
        Arc::new(SharedRedis {
            spec,
            conn: OnceLock::new(),
        })
    }

    /// The connection, once the background service has created it.
    pub fn conn(&self) -> Option<ConnectionManager> {
        self.conn.get().cloned()
    }
}

/// Creates the connection manager on its own runtime, where its reconnect task then lives.
pub struct RedisConnector(pub Arc<SharedRedis>);

#[async_trait]
impl BackgroundService for RedisConnector {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let spec = &self.0.spec;
        let client = match redis::Client::open(spec.url.as_str()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "invalid redis url; features using Redis run in fallback");
                return;
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(spec.timeout.max(Duration::from_millis(250))))
            .set_response_timeout(Some(spec.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        match ConnectionManager::new_lazy_with_config(client, config) {
            Ok(conn) => {
                let _ = self.0.conn.set(conn);
                tracing::info!(url = %auth_core::plumbing::redact::url(&spec.url), "redis connection manager ready");
            }
            Err(e) => tracing::error!(error = %e, "cannot create the redis connection manager"),
        }
        // keep this runtime (and the manager's reconnect task on it) until shutdown
        let _ = shutdown.changed().await;
    }
}
