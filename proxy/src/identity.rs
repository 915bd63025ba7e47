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
use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// A verified token, with the upstream headers it yields built once.
pub struct Verified {
    pub claims: Claims,
    user_id: HeaderValue,
    roles: HeaderValue,
}

impl Verified {
    fn new(claims: Claims) -> Option<Verified> {
        Some(Verified {
            user_id: HeaderValue::from_str(&claims.sub).ok()?,
            roles: HeaderValue::from_str(&claims.roles.join(",")).ok()?,
            claims,
        })
    }
}

/// A cache entry: the whole token is kept and compared on a hit, so a hash collision can
/// never hand one caller another's identity.
struct CachedToken {
    token: Box<str>,
    verified: Arc<Verified>,
}

/// Verified tokens remembered (a signature check costs ~60 µs of CPU, a hit ~1 µs).
const VERIFIED_CAPACITY: u64 = 50_000;
const VERIFIED_TTL: Duration = Duration::from_secs(300);

pub struct Identity {
    verifier: ArcSwap<Verifier>,
    /// By a keyed hash of the token; expiry is still checked on every hit.
    verified: moka::sync::Cache<u64, Arc<CachedToken>>,
    hasher: std::collections::hash_map::RandomState,
    source: KeySource,
    revoked: Revocations,
    /// When an unknown `kid` last forced a reload (ms since the epoch).
    last_forced_reload_ms: AtomicU64,
}

/// At most one reload per this interval because of unknown key ids.
const UNKNOWN_KEY_RELOAD_EVERY: Duration = Duration::from_secs(1);

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_TTL)
                .build(),
            hasher: std::collections::hash_map::RandomState::new(),
            source,
            revoked: Revocations {
                cache: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(REVOCATION_STALENESS)
                    .build(),
                redis,
            },
            last_forced_reload_ms: AtomicU64::new(0),
        }))
    }

    /// Applies the route's policy to the request. `Ok(None)`: anonymous; `Ok(Some)`: verified.
    pub async fn check(
        &self,
        req: &RequestHeader,
        route: &Route,
        now: i64,
    ) -> Result<Option<Arc<Verified>>, EdgeError> {
        if route.auth == AuthMode::Public {
            return Ok(None);
        }
        let Some(token) = bearer(req) else {
            return match route.auth {
                AuthMode::Required => Err(EdgeError::TokenMissing),
                _ => Ok(None),
            };
        };
        let verified = match self.verify(token, now) {
            Ok(v) => v,
            // an expired session browses an optional route as a guest
            Err(TokenError::Expired) if route.auth == AuthMode::Optional => return Ok(None),
            Err(why) => {
                tracing::debug!(reason = %why, route = %route.name, "access token refused");
                return Err(EdgeError::TokenInvalid);
            }
        };
        if self.revoked.is_revoked(&verified.claims.sid).await {
            tracing::debug!(route = %route.name, "access token of a revoked session");
            return Err(EdgeError::TokenInvalid);
        }
        let roles = &verified.claims.roles;
        if !route.roles.is_empty() && !roles.iter().any(|r| route.roles.contains(r)) {
            return Err(EdgeError::Forbidden);
        }
        Ok(Some(verified))
    }

    /// The signature check, through the cache of tokens verified before.
    fn verify(&self, token: &str, now: i64) -> Result<Arc<Verified>, TokenError> {
        if token.len() > auth_core::token::MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let key = self.hasher.hash_one(token);
        if let Some(hit) = self.verified.get(&key).filter(|c| &*c.token == token) {
            auth_core::token::check_time(&hit.verified.claims, now)?;
            return Ok(hit.verified.clone());
        }
        let mut verdict = self.verifier.load().verify(token, now);
        if verdict == Err(TokenError::UnknownKey) && self.reload_for_unknown_key() {
            // another replica may have rotated: the new key is in the shared directory
            verdict = self.verifier.load().verify(token, now);
        }
        let verified = Arc::new(Verified::new(verdict?).ok_or(TokenError::Malformed)?);
        self.verified.insert(
            key,
            Arc::new(CachedToken {
                token: token.into(),
                verified: verified.clone(),
            }),
        );
        Ok(verified)
    }

    /// Re-reads the keys at once for a token signed with an unknown key, at most once per
    /// `UNKNOWN_KEY_RELOAD_EVERY` (garbage `kid`s must not turn into disk reads). True if it
    /// reloaded.
    fn reload_for_unknown_key(&self) -> bool {
        let now_ms = now_millis();
        let last = self.last_forced_reload_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < UNKNOWN_KEY_RELOAD_EVERY.as_millis() as u64 {
            return false;
        }
        if self
            .last_forced_reload_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        match self.reload() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload token keys for an unknown key id");
                false
            }
        }
    }

    fn reload(&self) -> Result<(), String> {
        let fresh = load(&self.source)?;
        self.verifier.store(Arc::new(fresh));
        Ok(())
    }
}

fn load(s: &KeySource) -> Result<Verifier, String> {
    let set =
        auth_core::keys::load(&s.dir, chrono::Utc::now(), s.token_ttl).map_err(|e| e.detail())?;
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
    verified: Option<&Verified>,
) -> pingora::Result<()> {
    match verified {
        Some(v) => {
            upstream.insert_header(USER_ID, v.user_id.clone())?;
            upstream.insert_header(USER_ROLES, v.roles.clone())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(dir: &std::path::Path) -> Identity {
        let source = KeySource {
            dir: dir.to_path_buf(),
            token_ttl: Duration::from_secs(900),
            issuer: "iss".into(),
            audience: "aud".into(),
            every: Duration::from_secs(3600),
        };
        Identity {
            verifier: ArcSwap::from_pointee(load(&source).unwrap()),
            verified: moka::sync::Cache::builder().max_capacity(10).build(),
            hasher: std::collections::hash_map::RandomState::new(),
            source,
            revoked: Revocations {
                cache: moka::sync::Cache::builder().max_capacity(10).build(),
                redis: None,
            },
            last_forced_reload_ms: AtomicU64::new(0),
        }
    }

    #[test]
    fn a_cached_token_still_expires_on_time() {
        let dir = std::env::temp_dir().join(format!("edge-identity-{}", uuid::Uuid::now_v7()));
        auth_core::keys::ensure(&dir, chrono::Utc::now(), Duration::from_secs(900)).unwrap();
        let id = identity(&dir);
        let set =
            auth_core::keys::load(&dir, chrono::Utc::now(), Duration::from_secs(900)).unwrap();
        let now = 1_800_000_000;
        let claims = Claims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: "u".into(),
            sid: "s".into(),
            roles: vec!["a".into(), "b".into()],
            iat: now,
            exp: now + 60,
            nbf: None,
        };
        let token = auth_core::token::sign(set.signer.as_ref().unwrap(), &claims).unwrap();
        let first = id.verify(&token, now).unwrap();
        assert_eq!(first.roles, "a,b");
        // the second call is a cache hit (the same Arc), and the hit re-checks expiry
        assert!(Arc::ptr_eq(&first, &id.verify(&token, now + 10).unwrap()));
        let late = now + 60 + auth_core::token::LEEWAY_SECS + 1;
        assert!(matches!(id.verify(&token, late), Err(TokenError::Expired)));
        // a different token with the same claims but a flipped signature byte is not a hit
        // (a middle character of the signature: the last one carries unused bits)
        let mut bytes = token.clone().into_bytes();
        let i = bytes.len() - 20;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(bytes).unwrap();
        assert!(id.verify(&forged, now).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
