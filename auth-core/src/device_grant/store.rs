//! Device authorizations in Redis. One hash per device code (`auth:device:dc:<sha256>`) holds
//! the state machine — pending → approved | denied → spent — and a pointer from the user code
//! (`auth:device:uc:<CODE>`) leads to it. Every call touches one key (cluster-safe); every
//! transition is one script, so a code is approved once, by one account, and spent once.
//! Time comes from the caller (`now_ms`), so tests control it.

use crate::error::{Dependency, Error, Result};
use crate::redis_client::{conn_of, RedisConn, SharedRedis};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

const STORE: Dependency = Dependency::SignInStore;
/// Past its expiry a code's hash stays this long, so a late poll learns `expired_token`
/// rather than `invalid_grant`.
pub const AFTERLIFE: Duration = Duration::from_secs(600);

pub fn device_key(hash: &str) -> String {
    format!("auth:device:dc:{hash}")
}

pub fn user_code_key(code: &str) -> String {
    format!("auth:device:uc:{code}")
}

/// What the TV's request told us, shown on the approval page.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuthorization<'a> {
    pub client_id: &'a str,
    pub user_code: &'a str,
    pub scope: &'a str,
    pub tv_user_agent: &'a str,
    pub tv_network: &'a str,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub interval_ms: u64,
}

static CREATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
          redis.call('HSET', KEYS[1], 'status', 'pending', 'client', ARGV[1], 'user_code', ARGV[2],
            'scope', ARGV[3], 'tv_ua', ARGV[4], 'tv_net', ARGV[5], 'created_ms', ARGV[6],
            'expires_ms', ARGV[7], 'interval_ms', ARGV[8], 'last_poll_ms', 0)
          redis.call('PEXPIRE', KEYS[1], ARGV[9])
          return 1",
    )
});

/// One poll: `{outcome, detail}`. A poll earlier than `interval - slack` after the previous
/// one is `slow_down` and adds 5 s to this code's interval (RFC 8628 §3.5).
static POLL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local h = redis.call('HMGET', KEYS[1], 'status', 'client', 'expires_ms', 'interval_ms', 'last_poll_ms', 'user', 'session')
          if not h[1] or h[2] ~= ARGV[2] then return {'invalid_grant', ''} end
          if h[1] == 'spent' then return {'invalid_grant', ''} end
          local now = tonumber(ARGV[1])
          if now >= tonumber(h[3]) then return {'expired_token', ''} end
          if h[1] == 'denied' then return {'access_denied', ''} end
          -- an approved code is delivered even to an early poll: a TV page reloaded by hand
          -- must not slow itself out of its own sign-in
          if h[1] == 'approved' then
            redis.call('HSET', KEYS[1], 'status', 'spent', 'last_poll_ms', now)
            return {'approved', h[6] .. ' ' .. (h[7] or '')}
          end
          local interval = tonumber(h[4])
          local last = tonumber(h[5])
          if last > 0 and now - last < interval - tonumber(ARGV[3]) then
            interval = interval + 5000
            redis.call('HSET', KEYS[1], 'interval_ms', interval, 'last_poll_ms', now)
            return {'slow_down', tostring(interval)}
          end
          redis.call('HSET', KEYS[1], 'last_poll_ms', now)
          return {'authorization_pending', ''}",
    )
});

/// The viewer's decision on a pending code: `ok`, `decided` (not pending any more), `expired`
/// or `unknown`.
static DECIDE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local h = redis.call('HMGET', KEYS[1], 'status', 'expires_ms')
          if not h[1] then return 'unknown' end
          if tonumber(ARGV[1]) >= tonumber(h[2]) then return 'expired' end
          if h[1] ~= 'pending' then return 'decided' end
          redis.call('HSET', KEYS[1], 'status', ARGV[2], 'user', ARGV[3], 'session', ARGV[4], 'decided_ms', ARGV[1])
          return 'ok'",
    )
});

/// Tokens could not be issued after the poll spent the code: approved again, for the next poll.
static UNSPEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('HGET', KEYS[1], 'status') == 'spent' and redis.call('HGET', KEYS[1], 'user') == ARGV[1] then
            redis.call('HSET', KEYS[1], 'status', 'approved')
          end
          return 1",
    )
});

fn conn(redis: &Option<Arc<SharedRedis>>) -> Result<RedisConn> {
    conn_of(redis).ok_or(Error::Unavailable(STORE))
}

async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "device authorization: redis error");
            Err(Error::Unavailable(STORE))
        }
        Err(_) => {
            tracing::warn!("device authorization: redis timeout");
            Err(Error::Unavailable(STORE))
        }
    }
}

/// Stores a new authorization; false when the user code is taken (the caller draws another).
pub async fn create(
    redis: &Option<Arc<SharedRedis>>,
    device_hash: &str,
    a: &NewAuthorization<'_>,
    timeout: Duration,
) -> Result<bool> {
    let mut c = conn(redis)?;
    let keep = a.expires_ms.saturating_sub(a.created_ms) + AFTERLIFE.as_millis() as u64;
    // the pointer first, NX: two codes never share a user code
    let mut set = redis::cmd("SET");
    set.arg(user_code_key(a.user_code))
        .arg(device_hash)
        .arg("PX")
        .arg(a.expires_ms.saturating_sub(a.created_ms))
        .arg("NX");
    let taken = bounded(timeout, set.query_async::<Option<String>>(&mut c))
        .await?
        .is_none();
    if taken {
        return Ok(false);
    }
    let mut call = CREATE.key(device_key(device_hash));
    call.arg(a.client_id)
        .arg(a.user_code)
        .arg(a.scope)
        .arg(a.tv_user_agent)
        .arg(a.tv_network)
        .arg(a.created_ms)
        .arg(a.expires_ms)
        .arg(a.interval_ms)
        .arg(keep);
    let created: i64 = bounded(timeout, call.invoke_async(&mut c)).await?;
    Ok(created == 1)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    Pending,
    SlowDown {
        interval_ms: u64,
    },
    Denied,
    Expired,
    /// Unknown, spent, or another client's code.
    Invalid,
    Approved {
        user: String,
        /// The session that approved; None for an approval stored before sessions were.
        session: Option<String>,
    },
}

/// One poll of the TV: one round trip, no database.
pub async fn poll(
    redis: &Option<Arc<SharedRedis>>,
    device_hash: &str,
    client_id: &str,
    now_ms: u64,
    slack_ms: u64,
    timeout: Duration,
) -> Result<Poll> {
    let mut c = conn(redis)?;
    let mut call = POLL.key(device_key(device_hash));
    call.arg(now_ms).arg(client_id).arg(slack_ms);
    let (outcome, detail): (String, String) = bounded(timeout, call.invoke_async(&mut c)).await?;
    Ok(match outcome.as_str() {
        "authorization_pending" => Poll::Pending,
        "slow_down" => Poll::SlowDown {
            interval_ms: detail.parse().unwrap_or(0),
        },
        "access_denied" => Poll::Denied,
        "expired_token" => Poll::Expired,
        "approved" => {
            let (user, session) = detail.split_once(' ').unwrap_or((&detail, ""));
            Poll::Approved {
                user: user.to_string(),
                session: (!session.is_empty()).then(|| session.to_string()),
            }
        }
        _ => Poll::Invalid,
    })
}

pub async fn unspend(
    redis: &Option<Arc<SharedRedis>>,
    device_hash: &str,
    user: &str,
    timeout: Duration,
) {
    if let Ok(mut c) = conn(redis) {
        let mut call = UNSPEND.key(device_key(device_hash));
        call.arg(user);
        let _ = bounded(timeout, call.invoke_async::<i64>(&mut c)).await;
    }
}

/// A pending authorization as the approval page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub device_hash: String,
    pub fields: HashMap<String, String>,
}

/// The authorization a user code points to (two single-key reads).
pub async fn find(
    redis: &Option<Arc<SharedRedis>>,
    user_code: &str,
    timeout: Duration,
) -> Result<Option<Found>> {
    let mut c = conn(redis)?;
    let mut get = redis::cmd("GET");
    get.arg(user_code_key(user_code));
    let Some(hash) = bounded(timeout, get.query_async::<Option<String>>(&mut c)).await? else {
        return Ok(None);
    };
    let mut all = redis::cmd("HGETALL");
    all.arg(device_key(&hash));
    let fields: HashMap<String, String> = bounded(timeout, all.query_async(&mut c)).await?;
    Ok((!fields.is_empty()).then_some(Found {
        device_hash: hash,
        fields,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    Done,
    AlreadyDecided,
    Expired,
    Unknown,
}

pub async fn decide(
    redis: &Option<Arc<SharedRedis>>,
    device_hash: &str,
    approve: bool,
    user: &str,
    session: &str,
    now_ms: u64,
    timeout: Duration,
) -> Result<Decided> {
    let mut c = conn(redis)?;
    let mut call = DECIDE.key(device_key(device_hash));
    call.arg(now_ms)
        .arg(if approve { "approved" } else { "denied" })
        .arg(user)
        .arg(session);
    let outcome: String = bounded(timeout, call.invoke_async(&mut c)).await?;
    Ok(match outcome.as_str() {
        "ok" => Decided::Done,
        "decided" => Decided::AlreadyDecided,
        "expired" => Decided::Expired,
        _ => Decided::Unknown,
    })
}
