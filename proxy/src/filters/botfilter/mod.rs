//! Smart TV bot filter. reCAPTCHA does not work on TVs (no browsing history, a remote for
//! input), so a client the rules find suspicious — typically a TV User-Agent far above a
//! human request rate — gets a simple math question; a right answer, given at human speed,
//! earns a pass bound to the client's network and User-Agent.
//!
//! Clean traffic costs no round trip: rules, request-rate signals and pass checks are all
//! local. Only issuing and answering a question touch the store (Redis), and answering fails
//! closed (503) when it is unreachable.
//!
//! `fingerprint` names a client, `rules` decides, `question` asks, `store` remembers, `pass`
//! signs, `page` renders, `http` talks to the session.

mod fingerprint;
pub mod http;
mod page;
mod pass;
mod question;
pub mod rules;
mod store;

use crate::config::{BotAction, BotFilterSpec};
use crate::filters::limiter::LocalBuckets;
use crate::server::redis_client::SharedRedis;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fingerprint::Client;
use hmac::Mac;
use pass::{HmacSha256, Pass};
use pingora::http::RequestHeader;
use question::Question;
use rand::RngCore;
use rules::Rules;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use store::{FailurePolicy, Store};

pub use store::Unavailable;

/// Header an app sends its pass in (browsers use the cookie).
pub const PASS_HEADER: &str = "x-edge-pass";

/// Questions one client (network + User-Agent) may have open on this replica: a new one
/// every `challenge_ttl / MAX_OPEN_QUESTIONS`, after a burst of this many. Past it a client
/// gets 429 and nothing is written to the store, so a flood cannot fill Redis.
pub const MAX_OPEN_QUESTIONS: u64 = 3;

/// The same bound for a whole client network across User-Agents: varying the User-Agent must
/// not multiply what a network can write.
pub const MAX_OPEN_QUESTIONS_PER_NETWORK: u64 = 10;

/// What the rules decided for a request.
#[derive(Debug, PartialEq)]
pub enum Screen {
    Pass,
    Challenge(Client),
    Deny {
        rule: String,
    },
    /// A valid pass over its own rate limit.
    PassLimited {
        retry_after_secs: u64,
    },
}

/// A new question for the client, or why it gets none.
#[derive(Debug)]
pub enum Issued {
    Question {
        id: String,
        question: Question,
        expires_in: Duration,
    },
    Locked {
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Wrong,
    TooFast,
    /// Unknown, expired or already answered: single use.
    Expired,
    /// Issued to another client (network or User-Agent).
    OtherClient,
}

#[derive(Debug)]
pub enum Answered {
    Passed(Pass),
    Failed { why: Failure, next: Issued },
}

/// Counters for `/_edge/metrics`.
#[derive(Default)]
pub struct Counters {
    pub issued: AtomicU64,
    pub passed: AtomicU64,
    pub failed: AtomicU64,
    pub locked: AtomicU64,
    pub denied: AtomicU64,
}

/// The bot filter as one config generation compiled it: the state kept across reloads, this
/// generation's settings and rules, and the limit on answers.
pub struct BotStage {
    pub bot: Arc<BotFilter>,
    pub spec: BotFilterSpec,
    pub rules: Rules,
    /// `answer_limit`, compiled.
    pub answer_limit: Option<crate::filters::limiter::LimitStage>,
}

pub struct BotFilter {
    store: Store,
    /// Used when neither the conf nor the environment gives a secret.
    random_secret: [u8; 32],
    /// Request-rate signals and per-pass limits, per replica.
    buckets: LocalBuckets,
    /// Failures this replica has seen, for `failed_challenges` rules without a round trip;
    /// each kept for the `failure_window` it was counted in.
    recent_failures: moka::sync::Cache<String, (u32, Duration)>,
    pub counters: Counters,
}

impl BotFilter {
    /// The filter's state, kept across reloads; its settings (`BotFilterSpec`) and rules
    /// come with each config generation, so a reload can add, change or drop `[bot_filter]`.
    pub fn new(redis: Option<Arc<SharedRedis>>) -> BotFilter {
        let mut random_secret = [0u8; 32];
        rand::rng().fill_bytes(&mut random_secret);
        BotFilter {
            store: match redis {
                Some(r) => Store::Redis(r),
                None => Store::memory(),
            },
            random_secret,
            buckets: LocalBuckets::new(200_000),
            recent_failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .expire_after(store::OwnTtl)
                .build(),
            counters: Counters::default(),
        }
    }

    fn secret<'a>(&'a self, spec: &'a BotFilterSpec) -> &'a [u8] {
        spec.secret.as_deref().unwrap_or(&self.random_secret)
    }

    /// `screen` with the test networks.
    #[cfg(test)]
    pub fn screen(
        &self,
        rules: &Rules,
        spec: &BotFilterSpec,
        req: &RequestHeader,
        ip: IpAddr,
        now_us: u64,
    ) -> Screen {
        let network = fingerprint::TEST_NETWORKS.of(ip);
        self.screen_client(rules, spec, req, ip, network, now_us)
    }

    /// Applies the rules to a client at `ip` in `network`. Local only: no store round trip.
    pub fn screen_client(
        &self,
        rules: &Rules,
        spec: &BotFilterSpec,
        req: &RequestHeader,
        ip: IpAddr,
        network: ipnet::IpNet,
        now_us: u64,
    ) -> Screen {
        let ua = req
            .headers
            .get(::http::header::USER_AGENT)
            .map_or(&b""[..], |v| v.as_bytes());
        let mut client: Option<Client> = None;
        let mut key = String::new();
        for rule in &rules.rules {
            if !rule.matches_request(req, ip) {
                continue;
            }
            if rule.has_signals() {
                let c = client.get_or_insert_with(|| Client::new(network, ua));
                if let Some(bucket) = rule.rate {
                    key.clear();
                    let _ = write!(key, "bf:{}:{}", rule.name, c.id);
                    if self.buckets.decide(&key, now_us, bucket, 1).allowed {
                        continue; // within the rate: this rule does not hold
                    }
                }
                if let Some(n) = rule.failed_challenges {
                    if self.recent_failures.get(&c.id).map_or(0, |(f, _)| f) < n {
                        continue;
                    }
                }
            }
            return match rule.action {
                BotAction::Allow => Screen::Pass,
                BotAction::Deny => {
                    self.counters.denied.fetch_add(1, Relaxed);
                    Screen::Deny {
                        rule: rule.name.clone(),
                    }
                }
                BotAction::Challenge => {
                    let c = client.unwrap_or_else(|| Client::new(network, ua));
                    self.with_pass(spec, req, c, now_us)
                }
            };
        }
        Screen::Pass
    }

    /// A challenged request with a valid pass goes through, within the pass's own rate.
    fn with_pass(
        &self,
        spec: &BotFilterSpec,
        req: &RequestHeader,
        c: Client,
        now_us: u64,
    ) -> Screen {
        let token = req
            .headers
            .get(PASS_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| auth_core::plumbing::cookie::get(&req.headers, &spec.cookie));
        let Some(id) =
            token.and_then(|t| pass::verify(self.secret(spec), t, &c, now_us / 1_000_000).ok())
        else {
            return Screen::Challenge(c);
        };
        let bucket = crate::filters::limiter::Bucket::new(spec.pass_rate, spec.pass_burst);
        let outcome = self
            .buckets
            .decide(&format!("bf-pass:{id}"), now_us, bucket, 1);
        if outcome.allowed {
            Screen::Pass
        } else {
            Screen::PassLimited {
                retry_after_secs: outcome.retry_after_us.div_ceil(1_000_000).max(1),
            }
        }
    }

    /// Whether `client` may be asked one more question now; otherwise the seconds to wait.
    /// Local only, before any store access.
    pub fn may_ask(&self, spec: &BotFilterSpec, client: &Client, now_us: u64) -> Result<(), u64> {
        let ttl = spec.challenge_ttl.as_secs_f64().max(1.0);
        let bound = |key: String, max: u64| {
            let bucket = crate::filters::limiter::Bucket::new(max as f64 / ttl, max);
            let outcome = self.buckets.decide(&key, now_us, bucket, 1);
            if outcome.allowed {
                Ok(())
            } else {
                Err(outcome.retry_after_us.div_ceil(1_000_000).max(1))
            }
        };
        bound(format!("bf-ask:{}", client.id), MAX_OPEN_QUESTIONS)?;
        bound(
            format!("bf-ask-net:{}", client.network),
            MAX_OPEN_QUESTIONS_PER_NETWORK,
        )
    }

    /// A question for a challenged client, unless it is locked out.
    pub async fn challenge(
        &self,
        spec: &BotFilterSpec,
        client: &Client,
        now_ms: u64,
    ) -> Result<Issued, Unavailable> {
        let standing = self.store.standing(&client.id, now_ms).await?;
        if let Some(retry_after) = standing.locked_for {
            return Ok(Issued::Locked { retry_after });
        }
        self.ask(spec, client, standing.failures, now_ms).await
    }

    async fn ask(
        &self,
        spec: &BotFilterSpec,
        client: &Client,
        level: u32,
        now_ms: u64,
    ) -> Result<Issued, Unavailable> {
        let question = question::generate(level, &mut rand::rng());
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let id = URL_SAFE_NO_PAD.encode(raw);
        let record = store::Record {
            answer_mac: URL_SAFE_NO_PAD.encode(
                answer_mac(self.secret(spec), &id, &question.answer.to_string())
                    .finalize()
                    .into_bytes(),
            ),
            client_id: client.id.clone(),
            issued_ms: now_ms,
            level,
        };
        self.store.put(&id, &record, spec.challenge_ttl).await?;
        self.counters.issued.fetch_add(1, Relaxed);
        Ok(Issued::Question {
            id,
            question,
            expires_in: spec.challenge_ttl,
        })
    }

    /// Checks an answer: single use, from the client it was issued to, not sooner than a
    /// human could answer, and right. A failure is counted (and may lock the client out);
    /// either way a failed answer gets a new question, harder after failures.
    pub async fn answer(
        &self,
        spec: &BotFilterSpec,
        id: &str,
        answer: &str,
        client: &Client,
        now_ms: u64,
    ) -> Result<Answered, Unavailable> {
        let standing = self.store.standing(&client.id, now_ms).await?;
        if let Some(retry_after) = standing.locked_for {
            // a locked client's answers are not even looked at
            return Ok(Answered::Failed {
                why: Failure::Wrong,
                next: Issued::Locked { retry_after },
            });
        }
        let record = self.store.take(id).await?;
        let why = match record {
            // a double submit or a stale page: not counted, but no second chance either
            None => Failure::Expired,
            Some(r) if r.client_id != client.id => Failure::OtherClient,
            Some(r) if now_ms < r.issued_ms + spec.min_answer_time.as_millis() as u64 => {
                Failure::TooFast
            }
            Some(r) if !answer_matches(self.secret(spec), id, answer, &r.answer_mac) => {
                Failure::Wrong
            }
            Some(_) => {
                self.counters.passed.fetch_add(1, Relaxed);
                let mut raw = [0u8; 12];
                rand::rng().fill_bytes(&mut raw);
                let pass = pass::issue(
                    self.secret(spec),
                    client,
                    now_ms / 1000,
                    spec.pass_ttl.as_secs(),
                    raw,
                );
                return Ok(Answered::Passed(pass));
            }
        };
        let mut level = standing.failures;
        if why != Failure::Expired {
            self.counters.failed.fetch_add(1, Relaxed);
            let policy = FailurePolicy {
                max_failures: spec.max_failures,
                window: spec.failure_window,
                lockouts: &spec.lockouts,
            };
            let after = self.store.fail(&client.id, &policy, now_ms).await?;
            self.recent_failures
                .insert(client.id.clone(), (after.failures, spec.failure_window));
            if let Some(retry_after) = after.locked_for {
                self.counters.locked.fetch_add(1, Relaxed);
                tracing::warn!(client = %client.id, network = %client.network, lockout = ?retry_after, "bot filter: client locked out");
                return Ok(Answered::Failed {
                    why,
                    next: Issued::Locked { retry_after },
                });
            }
            level = after.failures;
        }
        let next = self.ask(spec, client, level, now_ms).await?;
        Ok(Answered::Failed { why, next })
    }
}

fn answer_mac(secret: &[u8], id: &str, answer: &str) -> HmacSha256 {
    let mut m = pass::keyed(secret);
    m.update(b"edge-answer/v1\0");
    m.update(id.as_bytes());
    m.update(b"\0");
    m.update(answer.as_bytes());
    m
}

/// Digits only, leading zeros ignored; compared in constant time.
fn answer_matches(secret: &[u8], id: &str, answer: &str, stored: &str) -> bool {
    let answer = answer.trim();
    if answer.is_empty() || answer.len() > 6 || !answer.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let canonical = answer.trim_start_matches('0');
    let canonical = if canonical.is_empty() { "0" } else { canonical };
    let Ok(expected) = URL_SAFE_NO_PAD.decode(stored) else {
        return false;
    };
    answer_mac(secret, id, canonical)
        .verify_slice(&expected)
        .is_ok()
}

#[cfg(test)]
mod tests;
