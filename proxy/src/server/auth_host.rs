//! Hosts the embedded auth core: its axum router on a loopback listener, run as a Pingora
//! background service. The edge reaches it through an ordinary route (`/auth` → the `auth`
//! upstream), so limits, request ids and logs apply to login like to any other route.

use async_trait::async_trait;
use auth_core::Auth;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::{Arc, OnceLock};

pub struct AuthHost {
    pub config: auth_core::Config,
    /// Bound before the server starts, so the first health check of the `auth` pool finds
    /// the port open (connections wait in the backlog until the core accepts them).
    pub listener: std::sync::Mutex<Option<std::net::TcpListener>>,
    /// The running core, once started (read by `/_edge/ready`).
    pub running: Arc<OnceLock<Arc<Auth>>>,
    /// The edge's Redis client: the core uses it rather than opening its own.
    pub redis: Option<Arc<auth_core::redis_client::SharedRedis>>,
}

impl AuthHost {
    pub fn bind(
        config: auth_core::Config,
        redis: Option<Arc<auth_core::redis_client::SharedRedis>>,
    ) -> Result<AuthHost, String> {
        let listener = bind(config.listen)
            .map_err(|e| format!("auth core cannot listen on {}: {e}", config.listen))?;
        Ok(AuthHost {
            config,
            listener: std::sync::Mutex::new(Some(listener)),
            running: Arc::default(),
            redis,
        })
    }
}

#[async_trait]
impl BackgroundService for AuthHost {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(std_listener) = self.listener.lock().ok().and_then(|mut l| l.take()) else {
            return;
        };
        let listener = match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "auth core cannot listen");
                return;
            }
        };
        let auth = match Auth::with_redis(
            self.config.clone(),
            chrono::Utc::now(),
            self.redis.clone(),
        ) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e.detail(), "auth core cannot start; /auth answers 502");
                return;
            }
        };
        let _ = self.running.set(auth.clone());
        tracing::info!(listen = %self.config.listen, "auth core listening");
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = auth_core::serve(auth, listener, stop).await {
            tracing::error!(error = %e, "auth core stopped");
        }
    }
}

/// SO_REUSEPORT lets the new process of a binary upgrade bind the loopback port while the
/// old one still drains its requests on it.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Refuses to start an edge whose auth core could not sign tokens.
pub fn preflight(config: &auth_core::Config) -> Result<(), String> {
    if config.keys.generate_if_missing {
        // now, not in the core's task: the edge loads the public keys before it serves
        return auth_core::keys::ensure(&config.keys.dir, chrono::Utc::now(), config.access_ttl)
            .map_err(|e| e.detail());
    }
    let set = auth_core::keys::load(&config.keys.dir, chrono::Utc::now(), config.access_ttl)
        .map_err(|e| e.detail())?;
    if set.signer.is_none() {
        return Err(format!(
            "no signing key in {}: run `edge keys rotate --conf <dir>` or set auth.generate_keys",
            config.keys.dir.display()
        ));
    }
    Ok(())
}
