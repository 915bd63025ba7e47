//! The deny list of revoked sessions (`edge:revoked:<sid>`, written by the auth core on
//! logout), read through a small in-process cache. Fails open: with Redis down, a token stays
//! valid until it expires (at most `access_ttl`), as a signature alone would.
//!
//! Fail-open is for Redis being down, not for Redis being busy: concurrent requests of one
//! session share a single lookup (a burst of a revoked token cannot outrun the timeout with
//! hundreds of parallel lookups), the lookup has a timeout of its own, and every fail-open is
//! counted (`edge_revocation_fail_open_total`) and logged.

use crate::server::redis_client::SharedRedis;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// How long a session's deny-list answer is reused: a session revoked (logout) is refused by
/// every edge within this time plus one Redis round trip.
pub const REVOCATION_STALENESS: Duration = Duration::from_secs(5);

/// The least time a deny-list lookup gets, whatever `[redis] timeout` says: that one is tuned
/// for the limiter, which goes on without Redis; this answer decides whether a token works.
const MIN_LOOKUP_TIMEOUT: Duration = Duration::from_millis(100);

/// At most one warning per this interval while lookups fail.
const WARN_EVERY_MS: u64 = 10_000;

pub struct Revocations {
    cache: moka::future::Cache<String, bool>,
    redis: Option<Arc<SharedRedis>>,
    /// Lookups that failed, so the token was let through unchecked (a metric shared by
    /// every generation's identity).
    fail_open: Arc<AtomicU64>,
    last_warn_ms: AtomicU64,
}

impl Revocations {
    pub fn new(redis: Option<Arc<SharedRedis>>, fail_open: Arc<AtomicU64>) -> Revocations {
        if redis.is_none() {
            tracing::warn!(
                "[auth] without [redis]: revoked sessions cannot be seen at the edge; a token \
                 stays valid until it expires (at most access_ttl) after logout"
            );
        }
        Revocations {
            cache: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(REVOCATION_STALENESS)
                .build(),
            redis,
            fail_open,
            last_warn_ms: AtomicU64::new(0),
        }
    }

    pub async fn is_revoked(&self, sid: &str) -> bool {
        let Some(redis) = &self.redis else {
            return false;
        };
        // concurrent callers for one sid wait on this one lookup; a failure is not cached
        let lookup = async {
            let Some(mut conn) = redis.conn() else {
                return Err("redis not connected".to_string());
            };
            let mut exists = redis::cmd("EXISTS");
            exists.arg(auth_core::revocation::key(sid));
            let timeout = redis.settings.timeout.max(MIN_LOOKUP_TIMEOUT);
            match tokio::time::timeout(timeout, exists.query_async::<bool>(&mut conn)).await {
                Ok(Ok(revoked)) => Ok(revoked),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {timeout:?}")),
            }
        };
        match self.cache.try_get_with_by_ref(sid, lookup).await {
            Ok(revoked) => revoked,
            Err(e) => {
                self.fail_open.fetch_add(1, Relaxed);
                self.warn(&e);
                false
            }
        }
    }

    fn warn(&self, error: &str) {
        let now = auth_core::plumbing::clock::unix_millis();
        let last = self.last_warn_ms.load(Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_MS
            && self
                .last_warn_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error,
                failed_open = self.fail_open.load(Relaxed),
                "deny list unreadable: tokens are let through without the revocation check"
            );
        }
    }
}
