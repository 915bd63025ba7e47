//! Rate limiting: token buckets shared by every edge replica through Redis (one atomic Lua
//! script per decision, Redis `TIME` as the clock), a local "denied until" cache so a client
//! being refused costs no Redis call, and in-process buckets when Redis is down (behind a
//! circuit breaker) or not configured.
//!
//! Leases (`lease.rs`, adaptive by default): one Redis call takes tokens ahead for later
//! requests of a busy key on this replica, so a hot key costs a Redis call per batch.
//!
//! How it can be wrong, by design: with several policies on a route, a token taken by an
//! earlier policy is not returned when a later one refuses; while Redis is down each replica
//! admits `rate / replicas` on its own, so uneven load across replicas admits less than the
//! configured rate; the deny cache is per replica, so a refused client can still reach Redis
//! once through each replica; a Redis call that times out may still have taken its tokens in
//! Redis (the request is then decided locally too, which admits less, never more).
//!
//! Outages are reconciled: local admissions are charged to the shared bucket when Redis
//! answers again, and local buckets start from the share Redis last reported, so a flapping
//! Redis does not hand out a fresh burst per flap.

mod breaker;
mod gcra;
mod key;
mod lease;
mod local;
mod stage;

pub use gcra::Bucket;
pub use key::Subject;
pub use local::LocalBuckets;
pub use stage::LimitStage;

use crate::config::{LeaseSetting, LimitKey, LimitSpec, OnRedisDown, RateLimitSettings};
use crate::server::redis_client::SharedRedis;
use breaker::{Breaker, Gate, Transition};
use gcra::Outcome;
use http::HeaderValue;
use lease::{Grant, Lease, LeaseMode, Refill};
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
    /// `[rate_limit] replicas`: the local bucket is seeded with this share of what Redis
    /// reports remaining.
    replicas: u64,
    cost: u64,
    on_redis_down: OnRedisDown,
    lease: LeaseMode,
    /// How long leased tokens stay spendable. A fixed lease: ten times what the bucket takes
    /// to refill them, within 100 ms..1 s (any window admits at most `burst + rate × window +
    /// replicas × (lease − 1)`); an adaptive one: `lease::ADAPTIVE_TTL_US`.
    lease_ttl_us: u64,
    /// Redis grants a lease at most `remaining / share` tokens: `2 × replicas` for adaptive
    /// leases (they shrink as the bucket empties), 1 for a fixed one.
    share: u64,
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
            replicas,
            cost: spec.cost,
            on_redis_down: spec.on_redis_down,
            lease: lease_mode(spec, replicas),
            lease_ttl_us: match spec.lease {
                LeaseSetting::Tokens(n) => Bucket::new(spec.rate, spec.burst)
                    .interval_us
                    .saturating_mul(n)
                    .saturating_mul(10)
                    .clamp(100_000, 1_000_000),
                _ => lease::ADAPTIVE_TTL_US,
            },
            share: match spec.lease {
                LeaseSetting::Tokens(_) => 1,
                _ => 2 * replicas,
            },
            limit_header: HeaderValue::from(spec.burst),
            policy_header: HeaderValue::from_str(&policy)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
        }
    }
}

/// A fixed lease of the cost, or an adaptive one whose cap is under `MIN_ADAPTIVE_CAP`, is no
/// lease: such policies never look leases up.
fn lease_mode(spec: &LimitSpec, replicas: u64) -> LeaseMode {
    match spec.lease {
        LeaseSetting::Off => LeaseMode::Off,
        LeaseSetting::Tokens(n) if n <= spec.cost => LeaseMode::Off,
        LeaseSetting::Tokens(n) => LeaseMode::Fixed(n),
        LeaseSetting::Auto => {
            let cap = spec.burst / (2 * replicas);
            // small buckets (logins, registrations, captcha answers) stay exact: a lease of
            // a few tokens saves little and its overshoot would be a large share of the burst
            if cap < lease::MIN_ADAPTIVE_CAP.max(spec.cost + 1) {
                LeaseMode::Off
            } else {
                LeaseMode::Adaptive { cap }
            }
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
    /// Tokens admitted from local buckets during an outage and charged to the shared bucket
    /// once Redis answered again.
    pub fallback_tokens_charged: AtomicU64,
}

/// Process-wide limiter state (survives config reloads).
pub struct Limiter {
    redis: Option<Arc<SharedRedis>>,
    script: redis::Script,
    breaker: Breaker,
    /// The Redis client's topology generation last seen (see `topology_changed`).
    redis_generation: AtomicU64,
    local: LocalBuckets,
    denied_until: Cache<String, u64>,
    leases: Cache<String, Arc<Lease>>,
    /// Keys admitted from their local bucket while Redis was unreachable, with the local TAT
    /// before the first such admission: what the local bucket used beyond that, and has not
    /// refilled since, is charged to the shared bucket with the key's next Redis call. Without
    /// the charge the shared bucket comes back full after every outage and a flapping Redis
    /// multiplies the burst; charging only the unrefilled part keeps a long outage from
    /// emptying it.
    fallback_keys: Cache<String, u64>,
    /// When a local bucket last admitted for an unreachable Redis (0: never): past
    /// `FALLBACK_MEMORY` the request path skips the lookup.
    last_fallback_us: AtomicU64,
    epoch: Instant,
    pub stats: Stats,
}

impl Limiter {
    pub fn new(redis: Option<Arc<SharedRedis>>, settings: &RateLimitSettings) -> Limiter {
        let generation = redis.as_ref().map_or(0, |r| r.generation());
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
            redis_generation: AtomicU64::new(generation),
            local: LocalBuckets::new(settings.local_capacity),
            denied_until: Cache::builder()
                .max_capacity(settings.local_capacity)
                .time_to_live(Duration::from_secs(60))
                .build(),
            // kept while the key is busy (each lookup counts): the next adaptive ask is sized
            // from it; leased tokens carry their own expiry
            leases: Cache::builder()
                .max_capacity(settings.local_capacity)
                .time_to_idle(Duration::from_secs(1))
                .build(),
            fallback_keys: Cache::builder()
                .max_capacity(settings.local_capacity)
                .time_to_live(FALLBACK_MEMORY)
                .build(),
            last_fallback_us: AtomicU64::new(0),
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
            let lease = self.lease_of(policy, key_buf);
            if let Some(q) = lease.as_deref().and_then(|l| self.spend(policy, l, now)) {
                tighten(&mut tightest, q);
                continue;
            }
            let refill = lease.as_deref().and_then(Lease::begin_refill);
            let ask = Ask {
                want: ask_size(policy, lease.as_deref(), refill.as_ref(), now),
                // tokens of an expired lease that were never spent go back to the bucket
                refund: lease.as_deref().map_or(0, |l| l.reclaim_expired(now)),
            };
            let outcome = match self.decide(policy, key_buf, now, ask).await {
                Decided::Outcome(o) => o,
                Decided::Unavailable => return Verdict::Unavailable,
                Decided::Unlimited => continue,
            };
            // the wait for Redis may have been long: leases and the deny cache count from now
            let now = self.now_us();
            // what this client can still spend: the shared bucket and this replica's new lease
            let extra = outcome.granted.saturating_sub(policy.cost);
            let q = quota(policy, outcome.remaining + extra, outcome.reset_us);
            if !outcome.allowed {
                // concurrent requests of this key may have leased the bucket's last tokens
                // a moment ago (the lease may not have existed when this request looked):
                // spend those before refusing
                let lease = self.lease_of(policy, key_buf);
                if let Some(q) = lease.as_deref().and_then(|l| self.spend(policy, l, now)) {
                    tighten(&mut tightest, q);
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
            if policy.lease != LeaseMode::Off && self.redis.is_some() {
                self.keep_lease(
                    policy,
                    key_buf,
                    lease.as_ref(),
                    &outcome,
                    refill.is_some(),
                    now,
                );
            }
            tighten(&mut tightest, q);
        }
        self.stats.allowed.fetch_add(1, Relaxed);
        Verdict::Allow(tightest)
    }

    /// This replica's lease of the key, for policies that lease (with Redis only: in-process
    /// buckets need no lease).
    fn lease_of(&self, policy: &Policy, key: &str) -> Option<Arc<Lease>> {
        if policy.lease == LeaseMode::Off || self.redis.is_none() {
            return None;
        }
        self.leases.get(key)
    }

    /// Keeps what a grant brought beyond the request's cost, and the demand for the next
    /// adaptive ask. Concurrent grants of a key add to one lease: a replaced lease's tokens,
    /// already taken from the shared bucket, would be lost and requests refused.
    fn keep_lease(
        &self,
        policy: &Policy,
        key: &str,
        lease: Option<&Arc<Lease>>,
        outcome: &Outcome,
        refill: bool,
        now: u64,
    ) {
        let grant = Grant {
            granted: outcome.granted,
            cost: policy.cost,
            remaining: outcome.remaining,
            reset_us: outcome.reset_us,
        };
        match lease {
            Some(l) => l.record(&grant, refill, policy.lease_ttl_us, now),
            None => self
                .leases
                .entry_by_ref(key)
                .or_insert_with(|| Arc::new(Lease::new(now)))
                .into_value()
                .record(&grant, true, policy.lease_ttl_us, now),
        }
    }

    /// Takes `cost` tokens from this replica's lease of the key, when it has them.
    fn spend(&self, policy: &Policy, lease: &Lease, now: u64) -> Option<Quota> {
        let left = lease.take(policy.cost, now)?;
        self.stats.lease_hits.fetch_add(1, Relaxed);
        let (remaining, reset_us) = lease.quota_view(left, now);
        Some(quota(policy, remaining, reset_us))
    }

    /// Whether the client followed a topology change since the last call that asked.
    fn topology_changed(&self, redis: &SharedRedis) -> bool {
        let now = redis.generation();
        self.redis_generation.swap(now, Relaxed) != now
    }

    async fn decide(&self, policy: &Policy, key: &str, now: u64, ask: Ask) -> Decided {
        let Some(redis) = &self.redis else {
            return Decided::Outcome(self.local.decide(key, now, policy.bucket, policy.cost));
        };
        let mut gate = self.breaker.gate(now);
        if gate == Gate::Open && self.topology_changed(redis) {
            // a failover was followed (a new master, a promoted replica): probe now rather
            // than at the end of the cooldown
            self.breaker.retry_now();
            gate = self.breaker.gate(now);
        }
        if gate != Gate::Open {
            let baseline = self.take_fallback(key, now);
            let charge = baseline.map_or(0, |b| {
                self.local.spent_since(key, b, now, policy.local_bucket)
            });
            match self.ask_redis(redis, policy, key, ask, charge).await {
                Ok(o) => {
                    self.stats
                        .fallback_tokens_charged
                        .fetch_add(charge, Relaxed);
                    if self.breaker.success(self.now_us()) == Transition::Closed {
                        tracing::info!("redis reachable again: shared rate limiting resumed");
                    }
                    if policy.on_redis_down == OnRedisDown::Local && gate == Gate::Closed {
                        self.seed_local(policy, key, &o);
                    }
                    return Decided::Outcome(o);
                }
                Err(e) => {
                    // never sent: charge it with the next call; sent and timed out: the
                    // script may have run, and a second charge would count it twice
                    if let (Some(b), false) = (baseline, e.sent) {
                        self.fallback_keys.insert(key.to_string(), b);
                    }
                    self.stats.redis_errors.fetch_add(1, Relaxed);
                    if self.breaker.failure(self.now_us()) == Transition::Opened {
                        tracing::warn!(error = %e.message, "redis unreachable: rate limits fall back to on_redis_down");
                    }
                }
            }
        }
        self.stats.fallback_decisions.fetch_add(1, Relaxed);
        match policy.on_redis_down {
            OnRedisDown::Local => {
                let o = self
                    .local
                    .decide(key, now, policy.local_bucket, policy.cost);
                if o.allowed {
                    self.remember_fallback(policy, key, &o, now);
                }
                Decided::Outcome(o)
            }
            OnRedisDown::Allow => Decided::Unlimited,
            OnRedisDown::Deny => Decided::Unavailable,
        }
    }

    /// Notes the key's local TAT before its first local admission of this outage.
    fn remember_fallback(&self, policy: &Policy, key: &str, o: &Outcome, now: u64) {
        self.last_fallback_us.store(now.max(1), Relaxed);
        if self.fallback_keys.contains_key(key) {
            return;
        }
        let before = o
            .tat_us
            .saturating_sub(policy.cost.saturating_mul(policy.local_bucket.interval_us));
        self.fallback_keys.entry_by_ref(key).or_insert(before);
    }

    /// The key's baseline, taken by this caller (one request charges it), if it was admitted
    /// locally during a recent outage.
    fn take_fallback(&self, key: &str, now: u64) -> Option<u64> {
        let last = self.last_fallback_us.load(Relaxed);
        if last == 0 || now.saturating_sub(last) > FALLBACK_MEMORY.as_micros() as u64 {
            return None;
        }
        self.fallback_keys.remove(key)
    }

    /// After a decision in Redis: this replica's local bucket holds its share of what is left,
    /// so an outage starting now goes on from there, not from a full local burst. Only a
    /// bucket below its local burst is written: a quiet key costs nothing here.
    fn seed_local(&self, policy: &Policy, key: &str, o: &Outcome) {
        let share = o.remaining.div_ceil(policy.replicas);
        let local_burst = policy.local_bucket.capacity_us / policy.local_bucket.interval_us.max(1);
        if share < local_burst {
            self.local
                .seed(key, self.now_us(), policy.local_bucket, share);
        }
    }

    async fn ask_redis(
        &self,
        redis: &SharedRedis,
        policy: &Policy,
        key: &str,
        ask: Ask,
        charge: u64,
    ) -> Result<Outcome, RedisFailure> {
        let Some(mut conn) = redis.conn() else {
            return Err(RedisFailure {
                message: "not connected yet".into(),
                sent: false,
            });
        };
        let mut call = self.script.key(key);
        call.arg(policy.bucket.interval_us)
            .arg(policy.bucket.capacity_us)
            .arg(policy.cost)
            .arg(ask.want)
            .arg(policy.share)
            .arg(ask.refund)
            .arg(charge);
        let reply = tokio::time::timeout(
            redis.settings.timeout,
            call.invoke_async::<(i64, i64, i64, i64)>(&mut conn),
        )
        .await;
        let (granted, remaining, retry_after_us, reset_us) = match reply {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                // a failover shows up as errors first: have the topology looked at now
                redis.suspect();
                return Err(RedisFailure {
                    message: e.to_string(),
                    // a refused connection never ran the script; anything else may have
                    sent: !e.is_connection_refusal(),
                });
            }
            Err(_) => {
                redis.suspect();
                return Err(RedisFailure {
                    message: format!("no answer within {:?}", redis.settings.timeout),
                    sent: true,
                });
            }
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

/// A Redis call that failed, and whether the script may have run anyway.
struct RedisFailure {
    message: String,
    sent: bool,
}

/// How long after an outage local admissions are remembered for the charge.
const FALLBACK_MEMORY: Duration = Duration::from_secs(600);

enum Decided {
    Outcome(Outcome),
    /// `on_redis_down = "allow"`: this policy does not count while Redis is down.
    Unlimited,
    Unavailable,
}

/// What one Redis call asks of the bucket.
#[derive(Clone, Copy)]
struct Ask {
    /// Tokens to take (at least the cost; more is a lease).
    want: u64,
    /// Leased tokens that expired unspent, given back first.
    refund: u64,
}

/// Tokens one Redis call asks for: the cost, or, for the request that claimed the key's
/// refill, a fixed lease or the adaptive size. Only one request per key and replica leases at
/// a time: concurrent requests that each took a lease would hold the bucket between them.
fn ask_size(policy: &Policy, lease: Option<&Lease>, refill: Option<&Refill<'_>>, now: u64) -> u64 {
    match (policy.lease, lease, refill) {
        (LeaseMode::Fixed(n), Some(_), Some(_)) => n,
        (LeaseMode::Adaptive { cap }, Some(l), Some(_)) => l.adaptive_ask(now, policy.cost, cap),
        _ => policy.cost,
    }
}

/// Keeps the quota with the fewest remaining tokens.
fn tighten(tightest: &mut Option<Quota>, q: Quota) {
    if tightest.as_ref().is_none_or(|t| q.remaining < t.remaining) {
        *tightest = Some(q);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(burst: u64, cost: u64, lease: LeaseSetting, replicas: u64) -> LeaseMode {
        let spec = LimitSpec {
            name: "p".into(),
            key: LimitKey::Ip,
            rate: 10.0,
            burst,
            cost,
            on_redis_down: OnRedisDown::Local,
            lease,
        };
        lease_mode(&spec, replicas)
    }

    #[test]
    fn which_policies_lease() {
        use LeaseSetting::*;
        // the shipped demo's API limit: leases of up to 50
        assert_eq!(mode(100, 1, Auto, 1), LeaseMode::Adaptive { cap: 50 });
        assert_eq!(mode(100, 1, Auto, 3), LeaseMode::Adaptive { cap: 16 });
        // logins (burst 5), captcha answers (4): exact, one decision per request
        assert_eq!(mode(5, 1, Auto, 1), LeaseMode::Off);
        assert_eq!(mode(4, 1, Auto, 1), LeaseMode::Off);
        assert_eq!(
            mode(47, 1, Auto, 3),
            LeaseMode::Off,
            "cap 7: under the minimum"
        );
        assert_eq!(mode(100, 10, Auto, 3), LeaseMode::Adaptive { cap: 16 });
        assert_eq!(
            mode(100, 16, Auto, 3),
            LeaseMode::Off,
            "the cap is one request"
        );
        assert_eq!(mode(100, 1, Off, 1), LeaseMode::Off);
        assert_eq!(mode(100, 1, Tokens(20), 3), LeaseMode::Fixed(20));
        assert_eq!(
            mode(100, 2, Tokens(2), 1),
            LeaseMode::Off,
            "a lease of the cost"
        );
    }
}
