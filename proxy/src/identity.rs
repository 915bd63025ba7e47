//! Identity at the edge: access tokens verified locally with the auth core's public keys, the
//! route's policy applied (public / optional / required, roles), and the identity handed to
//! the upstream in headers. Verification never waits on the core: the keys are in memory and
//! refreshed in the background, and a failed refresh keeps the last good set.

use crate::config::AuthMode;
use crate::error::EdgeError;
use crate::routing::Route;
use crate::shared_redis::SharedRedis;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use auth_core::token::{Claims, TokenError, Verifier};
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Identity headers the edge sets. Removed from every client request first, on every route,
/// so an upstream can trust them.
pub const USER_ID: &str = "x-user-id";
pub const USER_ROLES: &str = "x-user-roles";
pub const AUTH_STATUS: &str = "x-auth-status";
pub const SPOOFABLE: [&str; 3] = [USER_ID, USER_ROLES, AUTH_STATUS];

/// Where the public keys come from: the embedded core's key directory.
struct KeySource {
    dir: PathBuf,
    token_ttl: Duration,
    issuer: String,
    audience: String,
    every: Duration,
}

pub struct Identity {
    verifier: ArcSwap<Verifier>,
    source: KeySource,
    revoked: Revocations,
}

/// How long a session's deny-list answer is reused: a session revoked (logout) is refused by
/// every edge within this time plus one Redis round trip.
pub const REVOCATION_STALENESS: Duration = Duration::from_secs(5);

/// The deny list of revoked sessions (`edge:revoked:<sid>`, written by the auth core), read
/// through a small in-process cache. Fails open: with Redis down, a token stays valid until
/// it expires (at most `access_ttl`), as a signature alone would.
struct Revocations {
    cache: moka::sync::Cache<String, bool>,
    redis: Option<Arc<SharedRedis>>,
}

impl Revocations {
    async fn is_revoked(&self, sid: &str) -> bool {
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

impl Identity {
    /// Loads the keys of the embedded auth core now, so the first request can be verified.
    pub fn embedded(
        config: &auth_core::Config,
        redis: Option<Arc<SharedRedis>>,
    ) -> Result<Arc<Identity>, String> {
        let source = KeySource {
            dir: config.keys.dir.clone(),
            token_ttl: config.access_ttl,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            every: config.keys.reload_interval,
        };
        let verifier = load(&source)?;
        Ok(Arc::new(Identity {
            verifier: ArcSwap::from_pointee(verifier),
            source,
            revoked: Revocations {
                cache: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(REVOCATION_STALENESS)
                    .build(),
                redis,
            },
        }))
    }

    /// Applies the route's policy to the request. `Ok(None)`: anonymous; `Ok(Some)`: verified.
    pub async fn check(
        &self,
        req: &RequestHeader,
        route: &Route,
        now: i64,
    ) -> Result<Option<Claims>, EdgeError> {
        if route.auth == AuthMode::Public {
            return Ok(None);
        }
        let Some(token) = bearer(req) else {
            return match route.auth {
                AuthMode::Required => Err(EdgeError::TokenMissing),
                _ => Ok(None),
            };
        };
        let claims = match self.verifier.load().verify(token, now) {
            Ok(claims) => claims,
            // an expired session browses an optional route as a guest
            Err(TokenError::Expired) if route.auth == AuthMode::Optional => return Ok(None),
            Err(why) => {
                tracing::debug!(reason = %why, route = %route.name, "access token refused");
                return Err(EdgeError::TokenInvalid);
            }
        };
        if self.revoked.is_revoked(&claims.sid).await {
            tracing::debug!(route = %route.name, "access token of a revoked session");
            return Err(EdgeError::TokenInvalid);
        }
        if !route.roles.is_empty() && !claims.roles.iter().any(|r| route.roles.contains(r)) {
            return Err(EdgeError::Forbidden);
        }
        Ok(Some(claims))
    }

    fn reload(&self) -> Result<(), String> {
        let fresh = load(&self.source)?;
        self.verifier.store(Arc::new(fresh));
        Ok(())
    }
}

fn load(s: &KeySource) -> Result<Verifier, String> {
    let set = auth_core::keys::load(&s.dir, chrono::Utc::now(), s.token_ttl)
        .map_err(|e| e.to_string())?;
    Ok(Verifier::from_set(&set, &s.issuer, &s.audience))
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(req: &RequestHeader) -> Option<&str> {
    let value = req
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Removes identity headers a client sent.
pub fn strip_spoofed(req: &mut RequestHeader) {
    for name in SPOOFABLE {
        if req.headers.contains_key(name) {
            req.remove_header(name);
        }
    }
}

/// Sets the identity headers of the upstream request.
pub fn write_upstream(
    upstream: &mut RequestHeader,
    claims: Option<&Claims>,
) -> pingora::Result<()> {
    match claims {
        Some(c) => {
            upstream.insert_header(USER_ID, c.sub.as_str())?;
            upstream.insert_header(USER_ROLES, c.roles.join(","))?;
            upstream.insert_header(AUTH_STATUS, "verified")
        }
        None => upstream.insert_header(AUTH_STATUS, "anonymous"),
    }
}

/// Re-reads the keys every `keys_reload_interval`; a failure keeps the last good set.
pub struct KeyWatcher(pub Arc<Identity>);

#[async_trait]
impl BackgroundService for KeyWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.0.source.every) => {}
            }
            if let Err(e) = self.0.reload() {
                tracing::warn!(error = %e, "cannot reload token keys; keeping the last good set");
            }
        }
    }
}
