//! Identity at the edge: access tokens verified locally with the auth core's public keys, the
//! route's policy applied (public / optional / required, roles), and the identity handed to
//! the upstream in headers. Verification never waits on the core: the keys are in memory and
//! refreshed in the background, and a failed refresh keeps the last good set.

pub mod external;
mod filter;
mod keys;
mod revocation;
mod token_source;

pub use filter::IdentityStage;
pub use keys::{KeyStatus, KeyWatcher};

use crate::config::{AuthMode, IdentitySpec};
use crate::proxy::error::EdgeError;
use crate::server::redis_client::SharedRedis;
use arc_swap::ArcSwap;
use auth_core::token::{Claims, TokenError, Verifier};
use http::HeaderValue;
use keys::KeySource;
use pingora::http::RequestHeader;
use revocation::Revocations;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Identity headers the edge sets. Removed from every client request first, on every route,
/// so an upstream can trust them.
pub const USER_ID: &str = "x-user-id";
pub const USER_ROLES: &str = "x-user-roles";
pub const AUTH_STATUS: &str = "x-auth-status";
/// The `[[issuer]]` name of an external token (absent for the auth core's own).
pub const AUTH_ISSUER: &str = "x-auth-issuer";
pub const SPOOFABLE: [&str; 4] = [USER_ID, USER_ROLES, AUTH_STATUS, AUTH_ISSUER];
/// Headers the edge writes for upstreams beside the identity ones: their `_` lookalikes are
/// stripped too (the dashed names are rewritten by `proxy/forwarding.rs`).
const FORWARDING: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-real-ip",
];

/// A verified token, with the upstream headers it yields built once.
pub struct Verified {
    pub claims: Claims,
    user_id: HeaderValue,
    roles: HeaderValue,
    /// The external issuer that signed it; None for the auth core.
    source: Option<HeaderValue>,
    /// `External::id` of that issuer (0: the auth core).
    issuer_id: u64,
}

impl Verified {
    fn new(claims: Claims, source: Option<(&str, u64)>) -> Option<Verified> {
        let (source, issuer_id) = match source {
            Some((name, id)) => (Some(name), id),
            None => (None, 0),
        };
        Some(Verified {
            issuer_id,
            user_id: HeaderValue::from_str(&claims.sub).ok()?,
            roles: HeaderValue::from_str(&claims.roles.join(",")).ok()?,
            source: match source {
                Some(name) => Some(HeaderValue::from_str(name).ok()?),
                None => None,
            },
            claims,
        })
    }

    /// Whether the issuer instance `id` verified it (0: the auth core).
    fn from(&self, id: u64) -> bool {
        self.issuer_id == id
    }
}

/// What a route or forward-auth policy asks of the caller.
pub struct Need<'a> {
    pub auth: AuthMode,
    /// Any one of these roles (empty: any valid token).
    pub roles: &'a [String],
    /// The token's `email_verified` must be true.
    pub verified_email: bool,
}

/// Whose tokens a route or forward-auth policy accepts.
#[derive(Clone, Default)]
pub struct Accepts {
    /// The auth core's.
    pub own: bool,
    pub external: Box<[Arc<external::External>]>,
}

impl Accepts {
    /// `names` (`SELF_ISSUER` and `[[issuer]]` names) resolved against a generation's issuers.
    pub fn resolve(
        names: &[String],
        issuers: &std::collections::HashMap<String, Arc<external::External>>,
    ) -> Accepts {
        Accepts {
            own: names.iter().any(|n| n == crate::config::SELF_ISSUER),
            external: names
                .iter()
                .filter_map(|n| issuers.get(n).cloned())
                .collect(),
        }
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

/// The key status of a remote core before its first fetch.
const NOT_FETCHED: &str = "not fetched yet";

/// At most one read of the keys per this interval because of unknown key ids.
const UNKNOWN_KEY_RELOAD_EVERY: Duration = Duration::from_secs(1);

pub struct Identity {
    verifier: ArcSwap<Verifier>,
    /// By a keyed hash of the token; expiry is still checked on every hit.
    verified: moka::sync::Cache<u64, Arc<CachedToken>>,
    hasher: std::collections::hash_map::RandomState,
    keys: KeySource,
    status: ArcSwap<KeyStatus>,
    revoked: Revocations,
    /// Serialises reads for unknown key ids; holds when the last one started (unix ms).
    unknown_key_reload: tokio::sync::Mutex<u64>,
    /// Bumped by every successful read of the keys.
    key_generation: AtomicU64,
    stats: Arc<IdentityStats>,
}

/// Counters that outlive a generation's `Identity` (a changed `[auth]` builds a new one).
#[derive(Default)]
pub struct IdentityStats {
    /// Every read of the keys, periodic or for an unknown `kid`.
    pub key_reads: AtomicU64,
    /// Tokens let through because the deny list could not be read.
    pub revocation_fail_open: Arc<AtomicU64>,
}

impl Identity {
    /// Reads the embedded core's keys now, so the first request can be verified; a JWKS is
    /// fetched once the proxy runs (by `KeyWatcher`, or by the first token).
    pub fn new(
        spec: IdentitySpec,
        redis: Option<Arc<SharedRedis>>,
        stats: Arc<IdentityStats>,
    ) -> Result<Arc<Identity>, String> {
        let keys = KeySource::new(spec)?;
        let verifier = keys.initial()?;
        let status = KeyStatus {
            keys: verifier.len(),
            loaded_ms: if keys.is_remote() {
                0
            } else {
                auth_core::plumbing::clock::unix_millis()
            },
            error: keys.is_remote().then(|| NOT_FETCHED.to_string()),
        };
        Ok(Arc::new(Identity {
            verifier: ArcSwap::from_pointee(verifier),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_TTL)
                .build(),
            hasher: std::collections::hash_map::RandomState::new(),
            keys,
            status: ArcSwap::from_pointee(status),
            revoked: Revocations::new(redis, stats.revocation_fail_open.clone()),
            unknown_key_reload: tokio::sync::Mutex::new(0),
            key_generation: AtomicU64::new(0),
            stats,
        }))
    }

    /// Starts with the keys `previous` holds when both read the same source (a reload that
    /// changed only the issuer, audience, cookie or interval): the keys stay usable even if
    /// the source cannot be read right now.
    pub fn adopt_keys(&self, previous: &Identity) -> bool {
        if previous.spec().keys != self.spec().keys {
            return false;
        }
        let spec = self.spec();
        let keys = previous.verifier.load().keys().to_vec();
        self.verifier
            .store(Arc::new(Verifier::new(keys, &spec.issuer, &spec.audience)));
        self.status.store(previous.status.load_full());
        true
    }

    /// What this identity was built from: a reload with the same spec keeps it.
    pub fn spec(&self) -> &IdentitySpec {
        self.keys.spec()
    }

    /// The latest read of the keys, for `/_edge/ready`.
    pub fn key_status(&self) -> Arc<KeyStatus> {
        self.status.load_full()
    }

    pub fn keys_are_remote(&self) -> bool {
        self.keys.is_remote()
    }

    /// Applies `auth` and `roles` to the request's token, if it comes from an issuer in
    /// `accepts`; `label` names the route or forward-auth policy in debug logs. `Ok(None)`:
    /// anonymous; `Ok(Some)`: verified.
    pub async fn check_access(
        &self,
        req: &RequestHeader,
        need: &Need<'_>,
        accepts: &Accepts,
        label: &str,
        now: i64,
    ) -> Result<Option<Arc<Verified>>, EdgeError> {
        let (auth, required_roles, verified_email) = (need.auth, need.roles, need.verified_email);
        if auth == AuthMode::Public {
            return Ok(None);
        }
        let cookie = self.keys.spec().cookie.as_deref();
        let Some(token) = token_source::token(req, cookie) else {
            return match auth {
                AuthMode::Required => Err(EdgeError::TokenMissing),
                _ => Ok(None),
            };
        };
        // the common case (the core's tokens only) reads no claim before the signature check
        let verdict = match self.accepted_hit(token, accepts, now) {
            // a token verified before by an issuer this route lists: no claim read, no check
            Some(hit) => hit,
            None => {
                let issuer = if accepts.external.is_empty() {
                    None
                } else {
                    let iss = external::peek_issuer(token);
                    accepts
                        .external
                        .iter()
                        .find(|e| iss.as_deref() == Some(e.spec.issuer.as_str()))
                };
                match issuer {
                    Some(ext) => self.verify_external(ext, token, now).await,
                    None if accepts.own => self.verify_own(token, now).await,
                    None => Err(TokenError::Claims),
                }
            }
        };
        let verified = match verdict {
            Ok(v) => v,
            // an expired session browses an optional route as a guest
            Err(TokenError::Expired) if auth == AuthMode::Optional => return Ok(None),
            Err(why) => {
                tracing::debug!(reason = %why, route = label, "access token refused");
                return Err(EdgeError::TokenInvalid);
            }
        };
        // external issuers have no session at the core: its deny list does not apply
        if verified.from(0) && self.revoked.is_revoked(&verified.claims.sid).await {
            tracing::debug!(route = label, "access token of a revoked session");
            return Err(EdgeError::TokenInvalid);
        }
        let roles = &verified.claims.roles;
        if !required_roles.is_empty() && !roles.iter().any(|r| required_roles.contains(r)) {
            return Err(EdgeError::Forbidden);
        }
        if verified_email && !verified.claims.email_verified {
            return Err(EdgeError::EmailNotVerified);
        }
        Ok(Some(verified))
    }

    async fn verify_own(&self, token: &str, now: i64) -> Result<Arc<Verified>, TokenError> {
        let mut verdict = self.verify(token, now);
        if matches!(verdict, Err(TokenError::UnknownKey)) && self.reload_for_unknown_key().await {
            // the core may have rotated: its new key is in the directory or the JWKS by now
            verdict = self.verify(token, now);
        }
        verdict
    }

    /// An external issuer's token, through the same cache (an entry is only ever a hit for
    /// the issuer that verified it).
    async fn verify_external(
        &self,
        ext: &external::External,
        token: &str,
        now: i64,
    ) -> Result<Arc<Verified>, TokenError> {
        if let Some(hit) = self.cached(token, ext.id, now) {
            return hit;
        }
        let claims = ext.verify(token, now).await?;
        let source = Some((ext.spec.name.as_str(), ext.id));
        let verified = Arc::new(Verified::new(claims, source).ok_or(TokenError::Malformed)?);
        self.remember(token, &verified);
        Ok(verified)
    }

    /// The signature check, through the cache of tokens verified before.
    fn verify(&self, token: &str, now: i64) -> Result<Arc<Verified>, TokenError> {
        if token.len() > auth_core::token::MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        if let Some(hit) = self.cached(token, 0, now) {
            return hit;
        }
        let claims = self.verifier.load().verify(token, now)?;
        let verified = Arc::new(Verified::new(claims, None).ok_or(TokenError::Malformed)?);
        self.remember(token, &verified);
        Ok(verified)
    }

    /// A verdict reached before for this very token by the issuer instance `issuer_id` (0: the
    /// auth core), its expiry checked again.
    fn cached(
        &self,
        token: &str,
        issuer_id: u64,
        now: i64,
    ) -> Option<Result<Arc<Verified>, TokenError>> {
        let key = self.hasher.hash_one(token);
        let hit = self
            .verified
            .get(&key)
            .filter(|c| &*c.token == token && c.verified.from(issuer_id))?;
        Some(auth_core::token::check_time(&hit.verified.claims, now).map(|()| hit.verified.clone()))
    }

    /// A cached verdict for routes that list external issuers, when the issuer that reached
    /// it is one of them: spares reading `iss` from the token on every request. A verdict of
    /// an issuer the route does not list (or one a reload rebuilt) is no hit: the token is
    /// then checked from scratch.
    fn accepted_hit(
        &self,
        token: &str,
        accepts: &Accepts,
        now: i64,
    ) -> Option<Result<Arc<Verified>, TokenError>> {
        if accepts.external.is_empty() {
            return None;
        }
        let key = self.hasher.hash_one(token);
        let hit = self.verified.get(&key).filter(|c| &*c.token == token)?;
        let id = hit.verified.issuer_id;
        let listed = (id == 0 && accepts.own) || accepts.external.iter().any(|e| e.id == id);
        listed.then(|| {
            auth_core::token::check_time(&hit.verified.claims, now).map(|()| hit.verified.clone())
        })
    }

    fn remember(&self, token: &str, verified: &Arc<Verified>) {
        self.verified.insert(
            self.hasher.hash_one(token),
            Arc::new(CachedToken {
                token: token.into(),
                verified: verified.clone(),
            }),
        );
    }

    /// Reads the keys again for a token signed with an unknown key, at most once per
    /// `UNKNOWN_KEY_RELOAD_EVERY` (garbage `kid`s must not turn into reads of the core).
    /// Requests that arrive during a read wait for it. True if the keys changed meanwhile.
    async fn reload_for_unknown_key(&self) -> bool {
        let seen = self.key_generation.load(Ordering::Acquire);
        let mut last_ms = self.unknown_key_reload.lock().await;
        if self.key_generation.load(Ordering::Acquire) != seen {
            return true;
        }
        let now_ms = auth_core::plumbing::clock::unix_millis();
        if now_ms.saturating_sub(*last_ms) < UNKNOWN_KEY_RELOAD_EVERY.as_millis() as u64 {
            return false;
        }
        *last_ms = now_ms;
        self.reload().await.is_ok()
    }

    /// Reads the keys; on failure the set in use stays. Logs when reads start or stop failing,
    /// not every failed attempt (a core that is down for an hour would flood the log).
    pub async fn reload(&self) -> Result<(), String> {
        self.stats.key_reads.fetch_add(1, Ordering::Relaxed);
        let result = self.keys.load().await;
        let before = self.status.load();
        let status = match &result {
            Ok(verifier) => {
                if before.error.is_some() && before.loaded_ms != 0 {
                    tracing::info!(keys = verifier.len(), "token keys read again");
                }
                KeyStatus {
                    keys: verifier.len(),
                    loaded_ms: auth_core::plumbing::clock::unix_millis(),
                    error: None,
                }
            }
            Err(e) => {
                if before.error.as_deref().is_none_or(|b| b == NOT_FETCHED) {
                    tracing::warn!(error = %e, "cannot read token keys; keeping the last good set");
                }
                KeyStatus {
                    error: Some(e.clone()),
                    ..KeyStatus::clone(&before)
                }
            }
        };
        self.status.store(Arc::new(status));
        let verifier = result?;
        self.verifier.store(Arc::new(verifier));
        self.key_generation.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

/// Removes identity headers a client sent.
pub fn strip_spoofed(req: &mut RequestHeader) {
    for name in SPOOFABLE {
        if req.headers.contains_key(name) {
            req.remove_header(name);
        }
    }
    // CGI, WSGI and PHP servers read `X_User_Id` as X-User-Id (both become HTTP_X_USER_ID):
    // drop such lookalikes too. A name with '_' is rare, so the common case allocates nothing.
    let lookalike = |name: &http::HeaderName| {
        let n = name.as_str().as_bytes();
        n.contains(&b'_')
            && SPOOFABLE.iter().chain(&FORWARDING).any(|s| {
                s.len() == n.len()
                    && s.bytes()
                        .zip(n)
                        .all(|(s, n)| s == *n || (s == b'-' && *n == b'_'))
            })
    };
    if req.headers.keys().any(lookalike) {
        let names: Vec<http::HeaderName> = req
            .headers
            .keys()
            .filter(|n| lookalike(n))
            .cloned()
            .collect();
        for name in names {
            req.remove_header(&name);
        }
    }
}

/// Sets the identity headers of a forward-auth answer, for the calling proxy to copy upstream.
/// An anonymous answer carries them empty: a proxy copying them (Traefik
/// `authResponseHeaders`, Envoy `allowed_upstream_headers`) then overwrites what the client
/// sent instead of letting it through; nginx drops a header set to an empty variable.
pub fn write_answer(
    answer: &mut pingora::http::ResponseHeader,
    verified: Option<&Verified>,
) -> pingora::Result<()> {
    match verified {
        Some(v) => {
            answer.insert_header(USER_ID, v.user_id.clone())?;
            answer.insert_header(USER_ROLES, v.roles.clone())?;
            answer.insert_header(
                AUTH_ISSUER,
                v.source.clone().unwrap_or(HeaderValue::from_static("")),
            )?;
            answer.insert_header(AUTH_STATUS, "verified")
        }
        None => {
            answer.insert_header(USER_ID, "")?;
            answer.insert_header(USER_ROLES, "")?;
            answer.insert_header(AUTH_ISSUER, "")?;
            answer.insert_header(AUTH_STATUS, "anonymous")
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
            if let Some(source) = &v.source {
                upstream.insert_header(AUTH_ISSUER, source.clone())?;
            }
            upstream.insert_header(AUTH_STATUS, "verified")
        }
        None => upstream.insert_header(AUTH_STATUS, "anonymous"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(dir: &std::path::Path) -> Arc<Identity> {
        let spec = IdentitySpec {
            keys: crate::config::KeysFrom::Dir {
                dir: dir.to_path_buf(),
                token_ttl: Duration::from_secs(900),
            },
            issuer: "iss".into(),
            audience: "aud".into(),
            refresh_every: Duration::from_secs(3600),
            cookie: None,
        };
        Identity::new(spec, None, Arc::default()).unwrap()
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
            email_verified: true,
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

    #[test]
    fn identity_headers_and_their_underscore_lookalikes_are_stripped() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in [
            ("x-user-id", "a"),
            ("X_User_Id", "b"),
            ("x_user_roles", "admin"),
            ("x-auth_status", "verified"),
            ("x_user_idx", "kept"),
            ("x-request_id", "kept"),
        ] {
            req.append_header(k.to_string(), v).unwrap();
        }
        strip_spoofed(&mut req);
        let mut left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["x-request_id", "x_user_idx"]);
    }
}
