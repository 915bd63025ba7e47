//! Runs the core: the HTTP router on its listener, plus the key reloader and the housekeeping
//! task (partitions, ended sessions), until `shutdown` resolves.

use crate::Auth;
use chrono::Utc;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(6 * 3600);

pub async fn serve(
    auth: Arc<Auth>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if auth.config.migrate_on_start {
        tokio::spawn(migrate_until_done(auth.clone()));
    } else {
        tokio::spawn(housekeeping(auth.clone()));
    }
    tokio::spawn(reload_keys(auth.clone()));
    if let Some(mail) = auth.config.mail.clone() {
        tokio::spawn(crate::mail::sender::run(auth.clone(), mail));
    }
    tokio::spawn(probe_database(auth.clone()));
    axum::serve(listener, crate::http::router(auth))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The database may come up after the edge: retry until the migrations are applied.
async fn migrate_until_done(auth: Arc<Auth>) {
    let mut wait = Duration::from_millis(500);
    loop {
        match auth.migrate().await {
            Ok(()) => {
                tracing::info!("database migrations applied");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e.detail(), retry_in = ?wait, "database migrations failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
    housekeeping(auth).await;
}

async fn housekeeping(auth: Arc<Auth>) {
    loop {
        if let Err(e) = auth.maintain(Utc::now()).await {
            tracing::warn!(error = %e.detail(), "database housekeeping failed");
        }
        tokio::time::sleep(HOUSEKEEPING_EVERY).await;
    }
}

async fn reload_keys(auth: Arc<Auth>) {
    let every = auth.config.keys.reload_interval;
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = auth.reload_keys(Utc::now()) {
            tracing::error!(error = %e.detail(), "cannot reload signing keys; keeping the current ones");
        }
    }
}

/// The circuit breaker's probe (`db_gate.rs`): often while the database is down, so the core
/// serves again soon after it is back; rarely while it is up, to notice an idle outage.
async fn probe_database(auth: Arc<Auth>) {
    loop {
        tokio::time::sleep(auth.db_gate.probe_interval()).await;
        crate::http::db_guard::probe(&auth).await;
    }
}
