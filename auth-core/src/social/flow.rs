//! A started sign-in: what the callback needs (PKCE verifier, nonce, where to go back) kept in
//! Redis under its `state` for `flow_ttl`, and read once (GETDEL), so a state cannot be
//! replayed. It is bound to the browser that started it: the record holds the SHA-256 of a
//! secret that only that browser has (in a cookie), or that only the app has (in the JSON
//! answer of `start`). The verifier never appears in a URL.

use crate::error::{Error, Result};
use crate::redis_client::{conn_of, SharedRedis};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const KEY_PREFIX: &str = "auth:oauth:flow:";
/// What a Redis outage is called in the 503.
const STORE: crate::error::Dependency = crate::error::Dependency::SignInStore;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Flow {
    pub provider: String,
    pub pkce_verifier: String,
    pub nonce: Option<String>,
    pub return_to: String,
    /// Answer the callback with JSON (apps), not a redirect with cookies (browsers).
    pub json: bool,
    /// Hex SHA-256 of the binding secret.
    pub binding: String,
    /// A link flow: the account the provider identity is added to.
    pub link_user: Option<Uuid>,
    /// A link flow: the session that started it, which must still be live when the link is
    /// written (a reset or sign-out everywhere in between voids the flow). Absent in flows
    /// saved by an older version.
    #[serde(default)]
    pub link_session: Option<Uuid>,
}

/// 256 random bits, URL-safe: states, nonces and binding secrets.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn binding_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Only what `random_token` makes is looked up: anything else is refused without a round trip.
pub fn plausible_state(state: &str) -> bool {
    state.len() == 43
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Does the presented secret open this flow? Compares hashes, so no timing leak of the secret.
pub fn bound_to(flow: &Flow, secret: Option<&str>) -> bool {
    secret.is_some_and(|s| binding_hash(s) == flow.binding)
}

pub async fn save(
    redis: &Option<Arc<SharedRedis>>,
    state: &str,
    flow: &Flow,
    ttl: Duration,
    timeout: Duration,
) -> Result<()> {
    let mut conn = conn_of(redis).ok_or(Error::Unavailable(STORE))?;
    let value = serde_json::to_string(flow).map_err(|e| Error::Internal(e.to_string()))?;
    let mut cmd = redis::cmd("SET");
    cmd.arg(format!("{KEY_PREFIX}{state}"))
        .arg(value)
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .arg("NX");
    match tokio::time::timeout(timeout, cmd.query_async::<Option<String>>(&mut conn)).await {
        Ok(Ok(Some(_))) => Ok(()),
        // 256 random bits collided: not in this universe, but never overwrite a flow
        Ok(Ok(None)) => Err(Error::Internal("oauth state collision".into())),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "oauth flow: redis error");
            Err(Error::Unavailable(STORE))
        }
        Err(_) => {
            tracing::warn!("oauth flow: redis timeout");
            Err(Error::Unavailable(STORE))
        }
    }
}

/// Reads and deletes the flow in one step: the first callback with a state wins, a second one
/// (replay) finds nothing. `None` also for an expired state.
pub async fn take(
    redis: &Option<Arc<SharedRedis>>,
    state: &str,
    timeout: Duration,
) -> Result<Option<Flow>> {
    let mut conn = conn_of(redis).ok_or(Error::Unavailable(STORE))?;
    let mut cmd = redis::cmd("GETDEL");
    cmd.arg(format!("{KEY_PREFIX}{state}"));
    let value =
        match tokio::time::timeout(timeout, cmd.query_async::<Option<String>>(&mut conn)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "oauth flow: redis error");
                return Err(Error::Unavailable(STORE));
            }
            Err(_) => {
                tracing::warn!("oauth flow: redis timeout");
                return Err(Error::Unavailable(STORE));
            }
        };
    match value {
        None => Ok(None),
        Some(v) => serde_json::from_str(&v)
            .map(Some)
            .map_err(|e| Error::Internal(format!("oauth flow record: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_bindings() {
        let s = random_token();
        assert!(plausible_state(&s));
        assert_ne!(s, random_token());
        assert!(!plausible_state("short"));
        assert!(!plausible_state(&format!("{}*", &s[..42])));
        let secret = random_token();
        let flow = Flow {
            provider: "vk".into(),
            pkce_verifier: "v".into(),
            nonce: None,
            return_to: "/".into(),
            json: false,
            binding: binding_hash(&secret),
            link_user: None,
            link_session: None,
        };
        assert!(bound_to(&flow, Some(&secret)));
        assert!(!bound_to(&flow, Some(&random_token())));
        assert!(!bound_to(&flow, None));
    }
}
