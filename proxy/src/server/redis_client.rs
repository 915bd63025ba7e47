//! The process's one Redis client (`auth_core::redis_client::SharedRedis`, shared with the
//! embedded auth core), connected and watched on a background service's runtime so the edge
//! starts, and keeps serving, while Redis is down.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;

pub use auth_core::redis_client::SharedRedis;

/// Runs the client's connect-and-watch loop on its own runtime, where the connections'
/// driver tasks then live, until shutdown.
pub struct RedisConnector(pub Arc<SharedRedis>);

#[async_trait]
impl BackgroundService for RedisConnector {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        self.0.clone().run(stop).await;
    }
}
