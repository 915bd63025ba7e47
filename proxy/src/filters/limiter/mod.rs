//! Rate limiting: token buckets shared by every edge replica through Redis (one atomic Lua
//! script per decision, Redis `TIME` as the clock), a local "denied until" cache so a client
//! being refused costs no Redis call, and in-process buckets when Redis is down (behind a
//! circuit breaker) or not configured.
//!
//! Leases (`lease = N` on a policy): one Redis call takes up to N tokens and this replica
//! spends the rest locally until they expire. Totals stay within the bucket (the tokens were
//! taken in Redis); within any window, admissions can exceed `burst + rate × window` by at
//! most `replicas × (N − 1)`, and unspent leased tokens are lost (under-admission).
//!
//! How it can be wrong, by design: with several policies on a route, a token taken by an
//! earlier policy is not returned when a later one refuses; while Redis is down each replica
//! admits `rate / replicas` on its own, so uneven load across replicas admits less than the
//! configured rate; the deny cache is per replica, so a refused client can still reach Redis
//! once through each replica.

mod breaker;
mod gcra;
mod key;
mod local;
mod stage;

pub use gcra::Bucket;
pub use key::Subject;
pub use local::LocalBuckets;
pub use stage::LimitStage;

use crate::config::{LimitKey, LimitSpec, OnRedisDown, RateLimitSettings};
use crate::server::redis_client::SharedRedis;
use breaker::{Breaker, Gate, Transition};
use gcra::Outcome;
use http::HeaderValue;
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A policy compiled for the request path (part of a config generation).
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub key: LimitKey,
    bucket: Bucket,
    /// The share of one replica while Redis is down.
    local_bucket: Bucket,
    cost: u64,
    on_redis_down: OnRedisDown,
    /// Tokens asked of Redis per call; more than `cost` leases the rest to this replica.
    lease: u64,
    /// How long leased tokens stay spendable: ten times what the bucket takes to refill them,
    /// within 100 ms..1 s. Leased tokens were already taken from the shared bucket, so the
    /// total never exceeds it; a lease only lets admissions move later in time, so any window
    /// admits at most `burst + rate × window + replicas × (lease − 1)`.
    lease_ttl_us: u64,
    limit_header: HeaderValue,
    policy_header: HeaderValue,
}

impl Policy {
    pub fn compile(spec: &LimitSpec, settings: &RateLimitSettings) -> Policy {
        let replicas = u64::from(settings.replicas.max(1));
        let local_burst = spec.burst.div_ceil(replicas).max(spec.cost);
        // window: how long an empty bucket takes to fill (draft-ietf-httpapi-ratelimit-headers)
        let window = (spec.burst as f64 / spec.rate).ceil().max(1.0) as u64;
        let policy = format!("{};w={};name=\"{}\"", spec.burst, window, spec.name);
        Policy {
            name: spec.name.clone(),
            key: spec.key.clone(),
            bucket: Bucket::new(spec.rate, spec.burst),
            local_bucket: Bucket::new(spec.rate / replicas as f64, local_burst),
            cost: spec.cost,
            on_redis_down: spec.on_redis_down,
            lease: spec.lease.max(spec.cost),
            lease_ttl_us: Bucket::new(spec.rate, spec.burst)
                .interval_us
                .saturating_mul(spec.lease)
                .saturating_mul(10)
                .clamp(100_000, 1_000_000),
            limit_header: HeaderValue::from(spec.burst),
            policy_header: HeaderValue::from_str(&policy)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
        }
    }
}

/// Values for the `RateLimit-*` headers of one policy's decision.
#[derive(Debug, Clone)]
pub struct Quota {
    pub limit: HeaderValue,
    pub policy: HeaderValue,
    pub remaining: u64,
    pub reset_secs: u64,
}

impl Quota {
    pub fn write_to(&self, h: &mut pingora::http::ResponseHeader) -> pingora::Result<()> {
        h.insert_header("ratelimit-limit", &self.limit)?;
        h.insert_header("ratelimit-remaining", self.remaining)?;
        h.insert_header("ratelimit-reset", self.reset_secs)?;
        h.insert_header("ratelimit-policy", &self.policy)
    }
}

#[derive(Debug)]
pub enum Verdict {
    /// Every policy allowed; the most restrictive quota for the headers (None: nothing known).
    Allow(Option<Quota>),
    /// A policy refused.
    Deny { quota: Quota, retry_after_secs: u64 },
    /// Redis is down and a policy says `on_redis_down = "deny"`.
    Unavailable,
}

/// Counters for metrics and tests.
#[derive(Default)]
pub struct Stats {
    pub allowed: AtomicU64,
    /// Requests allowed from tokens this replica had leased (no Redis call).
    pub lease_hits: AtomicU64,
    pub denied: AtomicU64,
    pub denied_from_cache: AtomicU64,
    pub fallback_decisions: AtomicU64,
    pub redis_errors: AtomicU64,
}

/// Process-wide limiter state (survives config reloads).
pub struct Limiter {
    redis: Option<Arc<SharedRedis>>,
    script: redis::Script,
    breaker: Breaker,
    local: LocalBuckets,
    denied_until: Cache<String, u64>,
    leases: Cache<String, Arc<Lease>>,
    epoch: Instant,
    pub stats: Stats,
}

impl Limiter {
    pub fn new(redis: Option<Arc<SharedRedis>>, settings: &RateLimitSettings) -> Limiter {
        if redis.is_none() {
            tracing::warn!(
                "no [redis] configured: rate limits use in-process buckets (one replica only)"
            );
        }
        Limiter {
            redis,
            script: redis::Script::new(include_str!("bucket.lua")),
            breaker: Breaker::new(
                settings.breaker_failures,
                settings.breaker_cooldown.as_micros() as u64,
            ),
            local: LocalBuckets::new(settings.local_capacity),
            denied_until: Cache::builder()
                .max_capacity(settings.local_capacity)
                .time_to_live(Duration::from_secs(60))
                .build(),
            leases: Cache::builder()
                .max_capacity(settings.local_capacity)
                .time_to_live(Duration::from_secs(1))
                .build(),
            epoch: Instant::now(),
            stats: Stats::default(),
        }
    }

    /// Applies a reload's `[rate_limit]` breaker settings (`local_capacity` sizes caches
    /// built at start and waits for a restart).
    pub fn tune(&self, settings: &RateLimitSettings) {
        self.breaker.tune(
            settings.breaker_failures,
            settings.breaker_cooldown.as_micros() as u64,
        );
    }

    /// Whether decisions are made without Redis right now (circuit open).
    pub fn in_fallback(&self) -> bool {
        self.breaker.is_open()
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Checks every policy in order; the first refusal wins.
    pub async fn check(
        &self,
        policies: &[Arc<Policy>],
        subject: &Subject<'_>,
        key_buf: &mut String,
    ) -> Verdict {
        let mut tightest: Option<Quota> = None;
        for policy in policies {
            subject.write_key(policy, key_buf);
            let now = self.now_us();
            if let Some(until) = self.denied_until.get(key_buf.as_str()).filter(|u| *u > now) {
                self.stats.denied_from_cache.fetch_add(1, Relaxed);
                self.stats.denied.fetch_add(1, Relaxed);
                let wait = until - now;
                let quota = quota(policy, 0, wait.max(policy.bucket.interval_us));
                return Verdict::Deny {
                    quota,
                    retry_after_secs: secs_ceil(wait),
                };
            }
            if let Some(q) = self.spend_lease(policy, key_buf, now) {
                if tightest.as_ref().is_none_or(|t| q.remaining < t.remaining) {
                    tightest = Some(q);
                }
                continue;
            }
            let outcome = match self.decide(policy, key_buf, now).await {
                Decided::Outcome(o) => o,
                Decided::Unavailable => return Verdict::Unavailable,
                Decided::Unlimited => continue,
            };
            let q = quota(policy, outcome.remaining, outcome.reset_us);
            if !outcome.allowed {
                // concurrent requests of this key may have leased the bucket's last tokens
                // a moment ago: spend those before refusing
                if let Some(q) = self.spend_lease(policy, key_buf, now) {
                    if tightest.as_ref().is_none_or(|t| q.remaining < t.remaining) {
                        tightest = Some(q);
                    }
                    continue;
                }
                self.stats.denied.fetch_add(1, Relaxed);
                self.denied_until
                    .insert(key_buf.clone(), now + outcome.retry_after_us);
                return Verdict::Deny {
                    quota: q,
                    retry_after_secs: secs_ceil(outcome.retry_after_us),
                };
            }
            if outcome.granted > policy.cost {
                self.add_lease(
                    key_buf,
                    outcome.granted - policy.cost,
                    &outcome,
                    policy,
                    now,
                );
            }
            if tightest.as_ref().is_none_or(|t| q.remaining < t.remaining) {
                tightest = Some(q);
            }
        }
        self.stats.allowed.fetch_add(1, Relaxed);
        Verdict::Allow(tightest)
    }

    /// Keeps `extra` leased tokens for the key. Concurrent requests that each went to Redis
    /// add to the live lease instead of replacing it: a replaced lease's tokens, already taken
    /// from the shared bucket, would be lost and its owner refused.
    fn add_lease(&self, key: &str, extra: u64, outcome: &Outcome, policy: &Policy, now: u64) {
        self.leases.entry_by_ref(key).and_upsert_with(|live| {
            if let Some(lease) = live.map(|e| e.into_value()).filter(|l| now < l.expires_us) {
                lease.tokens.fetch_add(extra, Relaxed);
                return lease;
            }
            Arc::new(Lease {
                tokens: AtomicU64::new(extra),
                expires_us: now + policy.lease_ttl_us,
                shared_remaining: outcome.remaining,
                full_at_us: now + outcome.reset_us,
            })
        });
    }

    /// Takes `cost` tokens from this replica's lease of the key, when it has them.
    fn spend_lease(&self, policy: &Policy, key: &str, now: u64) -> Option<Quota> {
        if policy.lease <= policy.cost {
            return None;
        }
        let lease = self.leases.get(key)?;
        if now >= lease.expires_us {
            return None;
        }
        let left = lease.take(policy.cost)?;
        self.stats.lease_hits.fetch_add(1, Relaxed);
        Some(quota(
            policy,
            lease.shared_remaining + left,
            lease.full_at_us.saturating_sub(now),
        ))
    }

    async fn decide(&self, policy: &Policy, key: &str, now: u64) -> Decided {
        let Some(redis) = &self.redis else {
            return Decided::Outcome(self.local.decide(key, now, policy.bucket, policy.cost));
        };
        if self.breaker.gate(now) != Gate::Open {
            match self.ask_redis(redis, policy, key).await {
                Ok(o) => {
                    if self.breaker.success() == Transition::Closed {
                        tracing::info!("redis reachable again: shared rate limiting resumed");
                    }
                    return Decided::Outcome(o);
                }
                Err(e) => {
                    self.stats.redis_errors.fetch_add(1, Relaxed);
                    if self.breaker.failure(self.now_us()) == Transition::Opened {
                        tracing::warn!(error = %e, "redis unreachable: rate limits fall back to on_redis_down");
                    }
                }
            }
        }
        self.stats.fallback_decisions.fetch_add(1, Relaxed);
        match policy.on_redis_down {
            OnRedisDown::Local => {
                Decided::Outcome(
                    self.local
                        .decide(key, now, policy.local_bucket, policy.cost),
                )
            }
            OnRedisDown::Allow => Decided::Unlimited,
            OnRedisDown::Deny => Decided::Unavailable,
        }
    }

    async fn ask_redis(
        &self,
        redis: &SharedRedis,
        policy: &Policy,
        key: &str,
    ) -> Result<Outcome, String> {
        let Some(mut conn) = redis.conn() else {
            return Err("not connected yet".into());
        };
        let mut call = self.script.key(key);
        call.arg(policy.bucket.interval_us)
            .arg(policy.bucket.capacity_us)
            .arg(policy.cost)
            .arg(policy.lease);
        let reply = tokio::time::timeout(
            redis.spec.timeout,
            call.invoke_async::<(i64, i64, i64, i64)>(&mut conn),
        )
        .await;
        let (granted, remaining, retry_after_us, reset_us) = match reply {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {:?}", redis.spec.timeout)),
        };
        let non_negative = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Outcome {
            allowed: granted > 0,
            granted: non_negative(granted),
            tat_us: 0,
            remaining: non_negative(remaining),
            retry_after_us: non_negative(retry_after_us),
            reset_us: non_negative(reset_us),
        })
    }
}

/// Tokens this replica took from the shared bucket ahead of use. They were already counted in
/// Redis, so spending them never admits more than the bucket allows; unspent ones expire.
struct Lease {
    tokens: AtomicU64,
    expires_us: u64,
    /// The shared bucket's remaining tokens when the lease was taken (for the headers).
    shared_remaining: u64,
    /// When the shared bucket is full again, as Redis reported at the grant (for the headers).
    full_at_us: u64,
}

impl Lease {
    /// Takes `cost` tokens; returns what is left, or None when there are not enough.
    fn take(&self, cost: u64) -> Option<u64> {
        let mut current = self.tokens.load(Relaxed);
        loop {
            let left = current.checked_sub(cost)?;
            match self
                .tokens
                .compare_exchange_weak(current, left, Relaxed, Relaxed)
            {
                Ok(_) => return Some(left),
                Err(actual) => current = actual,
            }
        }
    }
}

enum Decided {
    Outcome(Outcome),
    /// `on_redis_down = "allow"`: this policy does not count while Redis is down.
    Unlimited,
    Unavailable,
}

fn quota(policy: &Policy, remaining: u64, reset_us: u64) -> Quota {
    Quota {
        limit: policy.limit_header.clone(),
        policy: policy.policy_header.clone(),
        remaining,
        reset_secs: secs_ceil(reset_us),
    }
}

/// Whole seconds, rounded up, at least 1 when anything is left to wait.
fn secs_ceil(us: u64) -> u64 {
    us.div_ceil(1_000_000)
}
