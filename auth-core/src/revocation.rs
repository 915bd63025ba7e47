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
    let Some(conn) = conn_of(redis) else {
        return;
    };
    if sids.is_empty() {
        return;
    }
    // one SET per session, not a pipeline (on a Redis Cluster the keys live in different
    // slots, and a pipeline across slots is refused with CROSSSLOT), all sent at once: the
    // connections multiplex, so a thousand sessions cost about one round trip, and an
    // attacker holding many sessions cannot push the victim's past the timeout
    let mut sets = tokio::task::JoinSet::new();
    for sid in sids {
        let mut conn = conn.clone();
        let mut set = redis::cmd("SET");
        set.arg(key(&sid.to_string()))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis() as u64);
        sets.spawn(async move { set.exec_async(&mut conn).await });
    }
    let mut listed = 0usize;
    let mut error = None;
    let all = async {
        while let Some(done) = sets.join_next().await {
            match done {
                Ok(Ok(())) => listed += 1,
                Ok(Err(e)) => error = Some(e.to_string()),
                Err(e) => error = Some(e.to_string()),
            }
        }
    };
    let timed_out = tokio::time::timeout(timeout, all).await.is_err();
    // late answers still list their session: let the SETs finish rather than abort them
    sets.detach_all();
    if listed < sids.len() {
        tracing::warn!(
            sessions = sids.len(),
            unlisted = sids.len() - listed,
            error = error.as_deref().unwrap_or(if timed_out { "timeout" } else { "" }),
            "cannot list every revoked session in redis: those tokens work at the edge until they expire"
        );
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
