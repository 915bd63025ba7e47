//! Login throttling: a Redis counter per account and per client IP, incremented *before* the
//! password is checked, so a guesser pays for every attempt. Fails open when Redis is down:
//! the edge's own rate limit on `/auth/login` still applies (see README).

use redis::aio::ConnectionManager;
use std::sync::LazyLock;
use std::time::Duration;

/// INCR, start the window on the first hit, and return the count and the window's remaining
/// milliseconds: one atomic round trip.
static HIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local n = redis.call('INCR', KEYS[1])
          if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
          return {n, redis.call('PTTL', KEYS[1])}",
    )
});

/// Counts one attempt on `key`; `Some(retry_after)` once more than `limit` are in the window.
pub async fn hit(
    redis: &Option<ConnectionManager>,
    key: &str,
    limit: u32,
    window: Duration,
    timeout: Duration,
) -> Option<Duration> {
    let mut conn = redis.clone()?;
    let mut invocation = HIT.key(key);
    invocation.arg(window.as_millis() as u64);
    let call = invocation.invoke_async::<(u64, i64)>(&mut conn);
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok((n, ttl_ms))) if n > u64::from(limit) => {
            let ms = if ttl_ms > 0 {
                ttl_ms as u64
            } else {
                window.as_millis() as u64
            };
            Some(Duration::from_millis(ms))
        }
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "login throttle: redis error, failing open");
            None
        }
        Err(_) => {
            tracing::warn!("login throttle: redis timeout, failing open");
            None
        }
    }
}

/// Forgets an account's failures after a successful login.
pub async fn clear(redis: &Option<ConnectionManager>, key: &str, timeout: Duration) {
    if let Some(mut conn) = redis.clone() {
        let mut del = redis::cmd("DEL");
        del.arg(key);
        let _ = tokio::time::timeout(timeout, del.exec_async(&mut conn)).await;
    }
}
