//! Where questions, failures and lockouts live: Redis, shared by every replica, or process
//! memory when no `[redis]` is configured. Taking a question is one atomic, single-use step
//! (GETDEL); counting a failure and locking out is one Lua script. With Redis configured but
//! unreachable every call fails, and the bot filter fails closed (503) for answers.

use crate::server::redis_client::SharedRedis;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A question as stored under its random id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// HMAC of the challenge id and the answer: the answer itself is never stored.
    pub answer_mac: String,
    pub client_id: String,
    pub issued_ms: u64,
    pub level: u32,
}

impl Record {
    fn encode(&self) -> String {
        format!(
            "v1|{}|{}|{}|{}",
            self.answer_mac, self.client_id, self.issued_ms, self.level
        )
    }

    fn decode(s: &str) -> Option<Record> {
        let mut f = s.split('|');
        if f.next()? != "v1" {
            return None;
        }
        Some(Record {
            answer_mac: f.next()?.to_string(),
            client_id: f.next()?.to_string(),
            issued_ms: f.next()?.parse().ok()?,
            level: f.next()?.parse().ok()?,
        })
    }
}

/// A client's record: locked out (for how long), and failures in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub locked_for: Option<Duration>,
    pub failures: u32,
}

/// Failure counting settings, from `[bot_filter]`.
pub struct FailurePolicy<'a> {
    pub max_failures: u32,
    pub window: Duration,
    pub lockouts: &'a [Duration],
}

/// The store could not be reached.
#[derive(Debug)]
pub struct Unavailable;

/// How long the lockout level (1 → 5 → 30 minutes) is remembered.
const LOCKOUT_MEMORY: Duration = Duration::from_secs(24 * 3600);

pub enum Store {
    Redis(Arc<SharedRedis>),
    Memory(Memory),
}

pub struct Memory {
    /// Each question with its own time to live: a reload may change `challenge_ttl`.
    questions: Cache<String, (Record, Duration)>,
    /// client → (failures, window end ms)
    failures: Cache<String, (u32, u64)>,
    /// client → (lockouts so far, locked until ms)
    lockouts: Cache<String, (u32, u64)>,
}

const STANDING: &str = r"
local ttl = redis.call('PTTL', KEYS[1])
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
return {ttl, failures}
";

/// KEYS: failures, lockout level, lock. ARGV: window ms, max failures, lockout ms...
const FAIL: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n < tonumber(ARGV[2]) then return {n, 0} end
local level = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local i = math.min(level, #ARGV - 3)
local ms = tonumber(ARGV[3 + i])
redis.call('SET', KEYS[3], '1', 'PX', ms)
redis.call('DEL', KEYS[1])
return {n, ms}
";

/// A client's failure count, lockout level and lockout. One script reads and writes them
/// together, so they share a Redis Cluster hash slot: the `{client}` hash tag (the client id
/// is hex, so it holds no brace of its own).
fn keys(client: &str) -> [String; 3] {
    [
        format!("bf:{{{client}}}:fail"),
        format!("bf:{{{client}}}:lockouts"),
        format!("bf:{{{client}}}:lock"),
    ]
}

/// Expiry of cache entries that carry their own time to live, `(value, ttl)`: settings a
/// reload changes apply to the entries written after it.
pub struct OwnTtl;

impl<K, V> moka::Expiry<K, (V, Duration)> for OwnTtl {
    fn expire_after_create(&self, _: &K, v: &(V, Duration), _: Instant) -> Option<Duration> {
        Some(v.1)
    }

    fn expire_after_update(
        &self,
        _: &K,
        v: &(V, Duration),
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.1)
    }
}

impl Store {
    pub fn memory() -> Store {
        Store::Memory(Memory {
            questions: Cache::builder()
                .max_capacity(100_000)
                .expire_after(OwnTtl)
                .build(),
            failures: Cache::builder().max_capacity(100_000).build(),
            lockouts: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LOCKOUT_MEMORY)
                .build(),
        })
    }

    pub async fn put(&self, id: &str, record: &Record, ttl: Duration) -> Result<(), Unavailable> {
        match self {
            Store::Memory(m) => {
                m.questions.insert(id.to_string(), (record.clone(), ttl));
                Ok(())
            }
            Store::Redis(redis) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(format!("bf:q:{id}"))
                    .arg(record.encode())
                    .arg("PX")
                    .arg(ttl.as_millis() as u64);
                query::<()>(redis, cmd).await
            }
        }
    }

    /// The question, removed in the same step: a second answer to it finds nothing.
    pub async fn take(&self, id: &str) -> Result<Option<Record>, Unavailable> {
        match self {
            Store::Memory(m) => Ok(m.questions.remove(id).map(|(record, _)| record)),
            Store::Redis(redis) => {
                let mut cmd = redis::cmd("GETDEL");
                cmd.arg(format!("bf:q:{id}"));
                let raw = query::<Option<String>>(redis, cmd).await?;
                Ok(raw.as_deref().and_then(Record::decode))
            }
        }
    }

    pub async fn standing(&self, client: &str, now_ms: u64) -> Result<Standing, Unavailable> {
        match self {
            Store::Memory(m) => Ok(m.standing(client, now_ms)),
            Store::Redis(redis) => {
                let [fail, _, lock] = keys(client);
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(STANDING).arg(2).arg(lock).arg(fail);
                let (ttl, failures) = query::<(i64, u32)>(redis, cmd).await?;
                Ok(Standing {
                    locked_for: (ttl > 0).then(|| Duration::from_millis(ttl as u64)),
                    failures,
                })
            }
        }
    }

    /// Counts a failure; at `max_failures` in the window, locks the client out for the next
    /// lockout length and starts counting again.
    pub async fn fail(
        &self,
        client: &str,
        policy: &FailurePolicy<'_>,
        now_ms: u64,
    ) -> Result<Standing, Unavailable> {
        match self {
            Store::Memory(m) => Ok(m.fail(client, policy, now_ms)),
            Store::Redis(redis) => {
                let [fail, level, lock] = keys(client);
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(FAIL)
                    .arg(3)
                    .arg(fail)
                    .arg(level)
                    .arg(lock)
                    .arg(policy.window.as_millis() as u64)
                    .arg(policy.max_failures)
                    .arg(LOCKOUT_MEMORY.as_millis() as u64);
                for l in policy.lockouts {
                    cmd.arg(l.as_millis() as u64);
                }
                let (failures, locked_ms) = query::<(u32, u64)>(redis, cmd).await?;
                Ok(Standing {
                    locked_for: (locked_ms > 0).then(|| Duration::from_millis(locked_ms)),
                    failures,
                })
            }
        }
    }
}

impl Memory {
    fn standing(&self, client: &str, now_ms: u64) -> Standing {
        let locked_for = self
            .lockouts
            .get(client)
            .filter(|(_, until)| *until > now_ms)
            .map(|(_, until)| Duration::from_millis(until - now_ms));
        let failures = self
            .failures
            .get(client)
            .filter(|(_, end)| *end > now_ms)
            .map_or(0, |(n, _)| n);
        Standing {
            locked_for,
            failures,
        }
    }

    fn fail(&self, client: &str, policy: &FailurePolicy<'_>, now_ms: u64) -> Standing {
        let window_ms = policy.window.as_millis() as u64;
        let (n, end) = match self.failures.get(client).filter(|(_, end)| *end > now_ms) {
            Some((n, end)) => (n + 1, end),
            None => (1, now_ms + window_ms),
        };
        if n < policy.max_failures {
            self.failures.insert(client.to_string(), (n, end));
            return Standing {
                locked_for: None,
                failures: n,
            };
        }
        self.failures.invalidate(client);
        let level = self.lockouts.get(client).map_or(0, |(l, _)| l) + 1;
        let i = (level as usize)
            .min(policy.lockouts.len())
            .saturating_sub(1);
        let length = policy
            .lockouts
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(60));
        self.lockouts.insert(
            client.to_string(),
            (level, now_ms + length.as_millis() as u64),
        );
        Standing {
            locked_for: Some(length),
            failures: n,
        }
    }
}

async fn query<T: redis::FromRedisValue>(
    redis: &SharedRedis,
    cmd: redis::Cmd,
) -> Result<T, Unavailable> {
    let mut conn = redis.conn().ok_or(Unavailable)?;
    // the answer path is rare and not latency-critical: allow more than the limiter's timeout
    let limit = redis.settings.timeout.max(Duration::from_millis(250));
    match tokio::time::timeout(limit, cmd.query_async::<T>(&mut conn)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "bot filter: redis call failed");
            Err(Unavailable)
        }
        Err(_) => {
            tracing::warn!("bot filter: redis call timed out");
            Err(Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_junk_is_refused() {
        let r = Record {
            answer_mac: "abcd".into(),
            client_id: "c1".into(),
            issued_ms: 42,
            level: 2,
        };
        assert_eq!(Record::decode(&r.encode()), Some(r));
        for junk in ["", "v2|a|b|1|2", "v1|a|b|x|2", "v1|a|b|1"] {
            assert_eq!(Record::decode(junk), None, "{junk}");
        }
    }

    #[test]
    fn failures_lock_out_and_lockouts_escalate() {
        let Store::Memory(m) = Store::memory() else {
            unreachable!()
        };
        let lockouts = [Duration::from_secs(60), Duration::from_secs(300)];
        let policy = FailurePolicy {
            max_failures: 3,
            window: Duration::from_secs(600),
            lockouts: &lockouts,
        };
        let mut now = 1_000_000;
        for n in 1..=2 {
            assert_eq!(
                m.fail("c", &policy, now),
                Standing {
                    locked_for: None,
                    failures: n
                }
            );
        }
        let locked = m.fail("c", &policy, now);
        assert_eq!(locked.locked_for, Some(Duration::from_secs(60)));
        assert_eq!(
            m.standing("c", now + 59_000).locked_for,
            Some(Duration::from_secs(1))
        );
        now += 61_000;
        assert_eq!(
            m.standing("c", now),
            Standing::default(),
            "the lockout ended"
        );
        for _ in 0..2 {
            m.fail("c", &policy, now);
        }
        assert_eq!(
            m.fail("c", &policy, now).locked_for,
            Some(Duration::from_secs(300))
        );
        now += 301_000;
        for _ in 0..2 {
            m.fail("c", &policy, now);
        }
        assert_eq!(
            m.fail("c", &policy, now).locked_for,
            Some(Duration::from_secs(300)),
            "the last length repeats"
        );
        // failures outside the window do not add up
        assert_eq!(m.fail("d", &policy, 0).failures, 1);
        assert_eq!(m.fail("d", &policy, 700_000).failures, 1);
    }

    #[test]
    fn a_clients_keys_share_one_cluster_slot() {
        // Redis Cluster hashes only what is between the first '{' and the next '}'
        let tag = |k: &str| {
            let open = k.find('{').unwrap();
            let close = open + k[open..].find('}').unwrap();
            k[open + 1..close].to_string()
        };
        let ks = keys("0123456789abcdef01234567");
        assert!(
            ks.iter().all(|k| tag(k) == "0123456789abcdef01234567"),
            "{ks:?}"
        );
    }
}
