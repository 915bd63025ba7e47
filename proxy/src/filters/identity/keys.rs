//! The auth core's public keys at the edge: read from the embedded core's key directory, or
//! fetched from the JWKS URL of a core running elsewhere. Read again in the background every
//! `keys_reload_interval` and at once (rate-limited) for a token with an unknown `kid`; a
//! failed read keeps the last good set, so tokens keep verifying while the core is down.

use super::Identity;
use crate::config::{IdentitySpec, KeysFrom};
use async_trait::async_trait;
use auth_core::token::Verifier;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// A JWKS fetch gives up after this long (the last good keys stay in use).
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// A JWKS document larger than this is refused.
const MAX_JWKS_BYTES: usize = 64 * 1024;

pub struct KeySource {
    spec: IdentitySpec,
    http: reqwest::Client,
}

/// The outcome of the latest read, for `/_edge/ready`.
#[derive(Clone, Debug, Default)]
pub struct KeyStatus {
    /// Keys in the set in use.
    pub keys: usize,
    /// Unix ms of the last successful read (0: never).
    pub loaded_ms: u64,
    /// Why the latest read failed; None if it succeeded.
    pub error: Option<String>,
}

impl KeySource {
    pub fn new(spec: IdentitySpec) -> Result<KeySource, String> {
        Ok(KeySource {
            spec,
            http: key_client()?,
        })
    }

    pub fn spec(&self) -> &IdentitySpec {
        &self.spec
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.spec.keys, KeysFrom::Jwks { .. })
    }

    /// Reads the key directory now; a JWKS is fetched later, on the proxy's runtime.
    pub fn initial(&self) -> Result<Verifier, String> {
        match &self.spec.keys {
            KeysFrom::Dir { dir, token_ttl } => self.read_dir(dir, *token_ttl),
            KeysFrom::Jwks { .. } => Ok(self.verifier(Vec::new())),
        }
    }

    pub async fn load(&self) -> Result<Verifier, String> {
        match &self.spec.keys {
            KeysFrom::Dir { dir, token_ttl } => self.read_dir(dir, *token_ttl),
            KeysFrom::Jwks { url } => {
                let body = self.fetch(url).await.map_err(|e| format!("{url}: {e}"))?;
                let keys = auth_core::keys::parse_jwks(&body, chrono::Utc::now())
                    .map_err(|e| format!("{url}: {}", e.detail()))?;
                Ok(self.verifier(keys))
            }
        }
    }

    fn read_dir(&self, dir: &std::path::Path, token_ttl: Duration) -> Result<Verifier, String> {
        let set =
            auth_core::keys::load(dir, chrono::Utc::now(), token_ttl).map_err(|e| e.detail())?;
        Ok(self.verifier(set.public))
    }

    fn verifier(&self, keys: Vec<auth_core::keys::PublicKey>) -> Verifier {
        Verifier::new(keys, &self.spec.issuer, &self.spec.audience)
    }

    async fn fetch(&self, url: &str) -> Result<bytes::Bytes, String> {
        fetch_limited(&self.http, url).await
    }
}

/// A client for key sets: short timeout, no redirects (a JWKS URL is configured, not found).
pub(super) fn key_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("JWKS client: {e}"))
}

/// GETs `url`, refusing an error status or a body over `MAX_JWKS_BYTES`.
pub(super) async fn fetch_limited(
    http: &reqwest::Client,
    url: &str,
) -> Result<bytes::Bytes, String> {
    let mut resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads the current generation's keys every `keys_reload_interval` (a JWKS at once on
/// start); a failure keeps the last good set. A reload that changes `[auth]` builds a new
/// `Identity` (fetched before it serves), which the next tick reads on its own schedule.
pub struct KeyWatcher(pub Arc<crate::server::reload::Live>);

/// How often the watcher looks again when the conf has no `[auth]`.
const IDLE_CHECK: Duration = Duration::from_secs(1);

#[async_trait]
impl BackgroundService for KeyWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // the core's keys on their own interval (a JWKS at once on start); external issuers
        // are looked at every second and read when due (each has its own `refresh`)
        let mut next_own = tokio::time::Instant::now();
        let mut first = true;
        loop {
            let initial = first;
            let identity: Option<Arc<Identity>> = self.0.load().identity.clone();
            if first && identity.as_ref().is_some_and(|i| !i.keys_are_remote()) {
                // the key directory was read when the identity was built
                next_own += identity
                    .as_ref()
                    .map_or(IDLE_CHECK, |i| i.keys.spec().refresh_every);
            }
            first = false;
            // the first round reads what is due at once (the external issuers)
            let wait = next_own
                .saturating_duration_since(tokio::time::Instant::now())
                .min(if initial { Duration::ZERO } else { IDLE_CHECK });
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            // the generation may have changed while waiting: read the keys it uses now
            let generation = self.0.load_full();
            if tokio::time::Instant::now() >= next_own {
                let every = match &generation.identity {
                    Some(identity) => {
                        // failures are logged by reload, once per outage
                        let _ = identity.reload().await;
                        identity.keys.spec().refresh_every
                    }
                    None => IDLE_CHECK,
                };
                next_own = tokio::time::Instant::now() + every;
            }
            let now_ms = auth_core::plumbing::clock::unix_millis();
            for issuer in generation.issuers.values().filter(|i| i.due(now_ms)) {
                // failures are logged by refresh, once per outage
                let _ = issuer.refresh().await;
            }
        }
    }
}
