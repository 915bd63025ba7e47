//! The session deny list in Redis: when a session is revoked its id is listed until every
//! access token it carried has expired, so edges can refuse those tokens without asking the
//! core. Writes are best effort: the database stays the source of truth.

use redis::aio::ConnectionManager;
use std::time::Duration;
use uuid::Uuid;

/// The Redis key of a revoked session; the edge reads the same key.
pub fn key(sid: &str) -> String {
    format!("edge:revoked:{sid}")
}

pub async fn deny(
    redis: &Option<ConnectionManager>,
    sids: &[Uuid],
    ttl: Duration,
    timeout: Duration,
) {
    let Some(mut conn) = redis.clone() else {
        return;
    };
    if sids.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for sid in sids {
        pipe.cmd("SET")
            .arg(key(&sid.to_string()))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .ignore();
    }
    match tokio::time::timeout(timeout, pipe.exec_async(&mut conn)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, sessions = sids.len(), "cannot list revoked sessions in redis")
        }
        Err(_) => tracing::warn!(
            sessions = sids.len(),
            "redis timeout listing revoked sessions"
        ),
    }
}
