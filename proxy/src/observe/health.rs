//! `/_edge/health` (the process answers) and `/_edge/ready` (what the edge depends on: Redis,
//! the auth core and its database, the token keys, every upstream pool). Both are built from
//! state kept in memory — a background prober pings Redis, the auth core probes its own
//! database — so polling them costs no round trip to anything.
//!
//! A dependency that is down makes the edge `degraded`, not unready: it keeps serving what it
//! can (public routes, valid tokens), so the answer stays 200 and load balancers keep it. Only
//! a draining edge answers 503.

use crate::server::drain::Draining;
use crate::server::redis_client::SharedRedis;
use crate::server::reload::Live;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use auth_core::Auth;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const HEALTH_PATH: &str = "/_edge/health";
pub const READY_PATH: &str = "/_edge/ready";

/// How often Redis is pinged.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The latest ping of Redis.
#[derive(Default)]
struct RedisProbe {
    up: bool,
    checked_ms: u64,
    error: Option<String>,
}

pub struct Readiness {
    pub live: Arc<Live>,
    pub draining: Draining,
    pub redis: Option<Arc<SharedRedis>>,
    /// The embedded auth core, once it runs.
    pub auth: Option<Arc<OnceLock<Arc<Auth>>>>,
    redis_probe: ArcSwap<RedisProbe>,
}

/// One line of the report.
const UP: &str = "up";
const DOWN: &str = "down";
const NOT_CONFIGURED: &str = "not_configured";

impl Readiness {
    pub fn new(
        live: Arc<Live>,
        draining: Draining,
        redis: Option<Arc<SharedRedis>>,
        auth: Option<Arc<OnceLock<Arc<Auth>>>>,
    ) -> Readiness {
        Readiness {
            live,
            draining,
            redis,
            auth,
            redis_probe: ArcSwap::from_pointee(RedisProbe {
                error: Some("not checked yet".into()),
                ..RedisProbe::default()
            }),
        }
    }

    /// Whether the last ping of Redis answered; None without `[redis]`.
    pub fn redis_up(&self) -> Option<bool> {
        self.redis.as_ref().map(|_| self.redis_probe.load().up)
    }

    /// The embedded auth core, once it runs.
    pub fn auth_core(&self) -> Option<Arc<Auth>> {
        self.auth.as_ref().and_then(|slot| slot.get().cloned())
    }

    /// `(status, body)` of `/_edge/health`.
    pub fn health(&self) -> (u16, String) {
        if self.draining.is_set() {
            (503, r#"{"status":"draining"}"#.into())
        } else {
            (200, r#"{"status":"ok"}"#.into())
        }
    }

    /// `(status, body)` of `/_edge/ready`.
    pub fn ready(&self, now_ms: u64) -> (u16, String) {
        let redis = self.redis_check(now_ms);
        let (auth_core, database) = self.auth_checks(now_ms);
        let keys = self.keys_check(now_ms);
        let upstreams = self.upstream_checks();
        let issuers = self.issuer_checks(now_ms);
        let all_up = [&redis, &auth_core, &database, &keys]
            .into_iter()
            .chain(upstreams.values())
            .chain(issuers.values())
            .all(|c| matches!(c["status"].as_str(), Some(UP | NOT_CONFIGURED)));
        let auth_available = auth_core["status"] == UP && database["status"] != DOWN;
        let (code, status) = match (self.draining.is_set(), all_up) {
            (true, _) => (503, "draining"),
            (false, true) => (200, "ready"),
            (false, false) => (200, "degraded"),
        };
        let body = json!({
            "status": status,
            // login, registration and refresh can be served
            "auth_available": auth_available,
            // tokens are checked at the edge, whatever the core's state
            "tokens_verified": keys["status"] == UP,
            "checks": {
                "redis": redis,
                "auth_core": auth_core,
                "database": database,
                "token_keys": keys,
                "upstreams": upstreams,
                "issuers": issuers,
            },
        });
        (code, body.to_string())
    }

    fn redis_check(&self, now_ms: u64) -> Value {
        if self.redis.is_none() {
            return json!({ "status": NOT_CONFIGURED });
        }
        let probe = self.redis_probe.load();
        let mut check = json!({
            "status": if probe.up { UP } else { DOWN },
            "checked_ms_ago": now_ms.saturating_sub(probe.checked_ms),
        });
        if let Some(e) = &probe.error {
            check["error"] = json!(e);
        }
        if let Some(redis) = &self.redis {
            let t = redis.status.view();
            check["topology"] = json!({
                "mode": redis.settings.mode.name(),
                "target": redis.settings.describe(),
                "nodes": t.nodes,
                "masters": t.masters,
                "masters_reachable": t.reachable,
                "failovers": t.failovers,
            });
            if !t.error.is_empty() {
                check["topology"]["error"] = json!(t.error);
            }
        }
        check
    }

    /// The core and its database. Embedded: the core's own breaker knows the database. Remote:
    /// the JWKS endpoint answering is what the edge can see of the core.
    fn auth_checks(&self, now_ms: u64) -> (Value, Value) {
        if let Some(slot) = &self.auth {
            let Some(core) = slot.get() else {
                return (
                    json!({ "status": DOWN, "mode": "embedded", "error": "not started" }),
                    json!({ "status": "unknown" }),
                );
            };
            let database = match core.database_down_since_ms() {
                None => json!({ "status": UP }),
                Some(since) => json!({
                    "status": DOWN,
                    "down_for_ms": now_ms.saturating_sub(since),
                }),
            };
            return (json!({ "status": UP, "mode": "embedded" }), database);
        }
        let identity = self.live.load().identity.clone();
        match identity.filter(|i| i.keys_are_remote()) {
            Some(identity) => {
                let fetched = identity.key_status().error.is_none();
                (
                    json!({ "status": if fetched { UP } else { DOWN }, "mode": "remote" }),
                    json!({ "status": "unknown" }),
                )
            }
            None => (
                json!({ "status": NOT_CONFIGURED }),
                json!({ "status": NOT_CONFIGURED }),
            ),
        }
    }

    fn keys_check(&self, now_ms: u64) -> Value {
        let Some(identity) = self.live.load().identity.clone() else {
            return json!({ "status": NOT_CONFIGURED });
        };
        let s = identity.key_status();
        // a failed refresh keeps the last good set: tokens still verify ("up") if there is one
        let mut check = json!({
            "status": if s.keys > 0 { UP } else { DOWN },
            "keys": s.keys,
            "source": if identity.keys_are_remote() { "jwks" } else { "dir" },
        });
        if s.loaded_ms != 0 {
            check["loaded_ms_ago"] = json!(now_ms.saturating_sub(s.loaded_ms));
        }
        if let Some(e) = &s.error {
            check["refresh_error"] = json!(e);
        }
        check
    }

    /// Each `[[issuer]]`'s keys: up while a set is in memory (a failed refresh keeps it).
    fn issuer_checks(&self, now_ms: u64) -> Map<String, Value> {
        let generation = self.live.load();
        let mut names: Vec<_> = generation.issuers.keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let s = generation.issuers.get(name)?.key_status();
                let mut check = json!({
                    "status": if s.keys > 0 { UP } else { DOWN },
                    "keys": s.keys,
                });
                if s.loaded_ms != 0 {
                    check["loaded_ms_ago"] = json!(now_ms.saturating_sub(s.loaded_ms));
                }
                if let Some(e) = &s.error {
                    check["refresh_error"] = json!(e);
                }
                Some((name.clone(), check))
            })
            .collect()
    }

    fn upstream_checks(&self) -> Map<String, Value> {
        let runtime = self.live.load();
        let mut pools: Vec<_> = runtime.pools.values().collect();
        pools.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        pools
            .into_iter()
            .map(|pool| {
                let (healthy, total) = pool.healthy_count();
                let status = match healthy {
                    0 => DOWN,
                    h if h == total => UP,
                    _ => "degraded",
                };
                let check = json!({ "status": status, "healthy": healthy, "servers": total });
                (pool.spec.name.clone(), check)
            })
            .collect()
    }

    async fn ping_redis(&self, now_ms: u64) {
        let Some(redis) = &self.redis else { return };
        let result = match redis.conn() {
            None => Err("connecting".to_string()),
            Some(mut conn) => {
                let cmd = redis::cmd("PING");
                let ping = cmd.query_async::<String>(&mut conn);
                let limit = redis.settings.timeout.max(Duration::from_millis(200));
                match tokio::time::timeout(limit, ping).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {limit:?}")),
                }
            }
        };
        self.redis_probe.store(Arc::new(RedisProbe {
            up: result.is_ok(),
            checked_ms: now_ms,
            error: result.err(),
        }));
    }
}

/// Pings Redis every second for the report.
pub struct ReadinessProber(pub Arc<Readiness>);

#[async_trait]
impl BackgroundService for ReadinessProber {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if self.0.redis.is_none() {
            return;
        }
        loop {
            self.0
                .ping_redis(auth_core::plumbing::clock::unix_millis())
                .await;
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
        }
    }
}
