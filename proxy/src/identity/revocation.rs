//! The deny list of revoked sessions (`edge:revoked:<sid>`, written by the auth core on
//! logout), read through a small in-process cache. Fails open: with Redis down, a token stays
//! valid until it expires (at most `access_ttl`), as a signature alone would.

use crate::shared_redis::SharedRedis;
use std::sync::Arc;
use std::time::Duration;

/// How long a session's deny-list answer is reused: a session revoked (logout) is refused by
/// every edge within this time plus one Redis round trip.
pub const REVOCATION_STALENESS: Duration = Duration::from_secs(5);

pub struct Revocations {
    cache: moka::sync::Cache<String, bool>,
    redis: Option<Arc<SharedRedis>>,
}

impl Revocations {
    pub fn new(redis: Option<Arc<SharedRedis>>) -> Revocations {
        Revocations {
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(REVOCATION_STALENESS)
                .build(),
            redis,
        }
    }

    pub async fn is_revoked(&self, sid: &str) -> bool {
        if let Some(known) = self.cache.get(sid) {
            return known;
        }
        let Some(redis) = &self.redis else {
            return false;
        };
        let Some(mut conn) = redis.conn() else {
            return false;
        };
        let mut exists = redis::cmd("EXISTS");
        exists.arg(auth_core::revocation::key(sid));
        match tokio::time::timeout(redis.spec.timeout, exists.query_async::<bool>(&mut conn)).await
        {
            Ok(Ok(revoked)) => {
                self.cache.insert(sid.to_string(), revoked);
                revoked
            }
            // not cached: the next request asks again
            Ok(Err(_)) | Err(_) => false,
        }
    }
}
