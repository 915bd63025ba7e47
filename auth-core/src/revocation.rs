//! The session deny list in Redis: when a session is revoked its id is listed until every
//! access token it carried has expired, so edges can refuse those tokens without asking the
//! core. Writes are best effort: the database stays the source of truth.

use crate::redis_client::{conn_of, SharedRedis};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The Redis key of a revoked session; the edge reads the same key.
pub fn key(sid: &str) -> String {
    format!("edge:revoked:{sid}")
}

/// Past the token's `exp`, verifiers accept it for the leeway; the entry outlives that by
/// this margin (clock skew between the core, Redis and the edges).
const MARGIN: Duration = Duration::from_secs(60);

/// How long a revoked session stays listed: as long as any token it carried can still pass a
/// verifier (`access_ttl` plus the verification leeway), plus a margin.
pub fn listed_for(access_ttl: Duration) -> Duration {
    let leeway = Duration::from_secs(crate::token::LEEWAY_SECS.unsigned_abs());
    access_ttl + leeway + MARGIN
}

/// Lists `sids` as revoked for `listed_for(access_ttl)`.
pub async fn deny(
    redis: &Option<Arc<SharedRedis>>,
    sids: &[Uuid],
    access_ttl: Duration,
    timeout: Duration,
) {
    let ttl = listed_for(access_ttl);
    let Some(mut conn) = conn_of(redis) else {
        return;
    };
    if sids.is_empty() {
        return;
    }
    // one SET per session, not a pipeline: on a Redis Cluster the keys live in different
    // slots and a pipeline across slots is refused (CROSSSLOT)
    let all = async {
        for sid in sids {
            let mut set = redis::cmd("SET");
            set.arg(key(&sid.to_string()))
                .arg(1)
                .arg("PX")
                .arg(ttl.as_millis() as u64);
            set.exec_async(&mut conn).await?;
        }
        Ok::<(), redis::RedisError>(())
    };
    match tokio::time::timeout(timeout, all).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_outlive_every_token_of_the_session() {
        let ttl = Duration::from_secs(900);
        let listed = listed_for(ttl);
        // a token issued just before the revocation verifies until exp + leeway
        let last_valid = ttl + Duration::from_secs(crate::token::LEEWAY_SECS as u64);
        assert!(listed > last_valid, "{listed:?} <= {last_valid:?}");
    }
}
