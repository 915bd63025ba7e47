//! Login throttling in Redis (OWASP Authentication Cheat Sheet, "account lockout"): counters
//! per (account, client network) and per client network, incremented *before* the password is
//! checked so a guesser pays for every attempt, refuse that network; a counter of failures per
//! account only slows attempts down, so nobody can lock an owner out of their account by
//! failing on purpose. The slow-down is a schedule kept in Redis (`pace`), not a sleep in each
//! request: attempts sent in parallel from many networks queue one behind the other, and past
//! a short queue they are refused. Networks the owner signed in from are not paced. Fails open
//! when Redis is down: the edge's own rate limit on `/auth/login` still applies (see README).

use crate::redis_client::{conn_of, SharedRedis};
use std::sync::Arc;
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

/// Reserves the account's next attempt slot: the slot is `spacing` after the previous one (or
/// now), and the caller waits for it. Returns the wait, or `Err(retry_after)` when the queue
/// is already longer than `max_wait`. One atomic round trip on Redis's clock.
static PACE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local t = redis.call('TIME')
          local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
          if slot < now then slot = now end
          local wait = slot - now
          if wait > tonumber(ARGV[2]) then return {-1, wait - tonumber(ARGV[2])} end
          redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', wait + tonumber(ARGV[1]) + 1000)
          return {wait, 0}",
    )
});

/// Takes the account's next attempt slot (see `PACE`): `Ok(wait)`, or `Err(retry_after)`.
/// Fails open (no wait) when Redis does not answer.
pub async fn pace(
    redis: &Option<Arc<SharedRedis>>,
    key: &str,
    spacing: Duration,
    max_wait: Duration,
    timeout: Duration,
) -> Result<Duration, Duration> {
    let Some(mut conn) = conn_of(redis) else {
        return Ok(Duration::ZERO);
    };
    let mut invocation = PACE.key(key);
    invocation
        .arg(spacing.as_millis() as u64)
        .arg(max_wait.as_millis() as u64);
    let call = invocation.invoke_async::<(i64, i64)>(&mut conn);
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok((wait, _))) if wait >= 0 => Ok(Duration::from_millis(wait as u64)),
        Ok(Ok((_, retry_ms))) => Err(Duration::from_millis(retry_ms.max(1) as u64)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "login pacing: redis error, failing open");
            Ok(Duration::ZERO)
        }
        Err(_) => Ok(Duration::ZERO),
    }
}

/// Whether `key` exists (false when Redis does not answer).
pub async fn exists(redis: &Option<Arc<SharedRedis>>, key: &str, timeout: Duration) -> bool {
    let Some(mut conn) = conn_of(redis) else {
        return false;
    };
    let mut cmd = redis::cmd("EXISTS");
    cmd.arg(key);
    matches!(
        tokio::time::timeout(timeout, cmd.query_async::<bool>(&mut conn)).await,
        Ok(Ok(true))
    )
}

/// Sets `key` for `ttl` (best effort).
pub async fn remember(
    redis: &Option<Arc<SharedRedis>>,
    key: &str,
    ttl: Duration,
    timeout: Duration,
) {
    if let Some(mut conn) = conn_of(redis) {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(1).arg("PX").arg(ttl.as_millis() as u64);
        let _ = tokio::time::timeout(timeout, cmd.exec_async(&mut conn)).await;
    }
}

/// Counts one attempt on `key`; `Some(retry_after)` once more than `limit` are in the window.
pub async fn hit(
    redis: &Option<Arc<SharedRedis>>,
    key: &str,
    limit: u32,
    window: Duration,
    timeout: Duration,
) -> Option<Duration> {
    let mut conn = conn_of(redis)?;
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

/// The count and remaining window of a counter, without counting: one round trip.
static PEEK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1])}",
    )
});

/// For limits that must hold even when Redis misbehaves (guessing codes, passwords typed
/// where the edge's login limit does not apply): `Err(Throttled)` at the limit and
/// `Err(Unavailable)` when Redis does not answer — failing closed, unlike `hit`.
pub async fn hit_strict(
    redis: &Option<Arc<SharedRedis>>,
    key: &str,
    limit: u32,
    window: Duration,
    timeout: Duration,
) -> crate::error::Result<()> {
    let mut conn = conn_of(redis).ok_or(STRICT_STORE)?;
    let mut invocation = HIT.key(key);
    invocation.arg(window.as_millis() as u64);
    let call = invocation.invoke_async::<(u64, i64)>(&mut conn);
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok((n, ttl_ms))) if n > u64::from(limit) => Err(throttled(ttl_ms, window)),
        Ok(Ok(_)) => Ok(()),
        _ => Err(STRICT_STORE),
    }
}

/// `Err(Throttled)` when `key` is already at `limit`, without counting this attempt (failures
/// are counted afterwards with `hit_strict`); fails closed like it.
pub async fn over_strict(
    redis: &Option<Arc<SharedRedis>>,
    key: &str,
    limit: u32,
    window: Duration,
    timeout: Duration,
) -> crate::error::Result<()> {
    let mut conn = conn_of(redis).ok_or(STRICT_STORE)?;
    let invocation = PEEK.key(key);
    let call = invocation.invoke_async::<(u64, i64)>(&mut conn);
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok((n, ttl_ms))) if n >= u64::from(limit) => Err(throttled(ttl_ms, window)),
        Ok(Ok(_)) => Ok(()),
        _ => Err(STRICT_STORE),
    }
}

const STRICT_STORE: crate::error::Error =
    crate::error::Error::Unavailable(crate::error::Dependency::SignInStore);

fn throttled(ttl_ms: i64, window: Duration) -> crate::error::Error {
    let ms = if ttl_ms > 0 {
        ttl_ms as u64
    } else {
        window.as_millis() as u64
    };
    crate::error::Error::Throttled {
        retry_after: Duration::from_millis(ms),
    }
}

/// The current value of a counter; 0 when it is absent or Redis does not answer.
pub async fn count(redis: &Option<Arc<SharedRedis>>, key: &str, timeout: Duration) -> u64 {
    let Some(mut conn) = conn_of(redis) else {
        return 0;
    };
    let mut get = redis::cmd("GET");
    get.arg(key);
    match tokio::time::timeout(timeout, get.query_async::<Option<u64>>(&mut conn)).await {
        Ok(Ok(n)) => n.unwrap_or(0),
        _ => 0,
    }
}

/// The spacing between attempts on an account that has `failures` in the window.
pub fn slowdown(failures: u64, free: u32, step: Duration, max: Duration) -> Duration {
    let over = failures.saturating_sub(u64::from(free));
    step.saturating_mul(u32::try_from(over).unwrap_or(u32::MAX))
        .min(max)
}

/// Forgets an account's failures after a successful login.
pub async fn clear(redis: &Option<Arc<SharedRedis>>, key: &str, timeout: Duration) {
    if let Some(mut conn) = conn_of(redis) {
        let mut del = redis::cmd("DEL");
        del.arg(key);
        let _ = tokio::time::timeout(timeout, del.exec_async(&mut conn)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowdown_grows_past_the_free_failures_and_is_capped() {
        let step = Duration::from_millis(200);
        let max = Duration::from_secs(2);
        assert_eq!(slowdown(0, 10, step, max), Duration::ZERO);
        assert_eq!(slowdown(10, 10, step, max), Duration::ZERO);
        assert_eq!(slowdown(11, 10, step, max), step);
        assert_eq!(slowdown(13, 10, step, max), step * 3);
        assert_eq!(slowdown(1_000_000, 10, step, max), max);
    }
}
