//! Tokens of external issuers (`[[issuer]]`: Keycloak, Google, a partner's IdP): their JWKS
//! (or the one their OpenID discovery names) read and refreshed like the core's, and their
//! tokens verified with RS/PS/ES/EdDSA keys. The key decides the algorithm: a key is usable
//! only with the algorithms its type allows, narrowed by its JWK `alg` and the issuer's
//! `algorithms`; a token whose header names anything else is refused, so no token can make
//! the edge check an RSA key as an HMAC secret.

use super::keys::{fetch_limited, key_client, KeyStatus};
use crate::config::{IssuerKeys, IssuerSpec};
use arc_swap::ArcSwap;
use auth_core::token::{Claims, TokenError};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// At most one read for unknown key ids per this interval (garbage `kid`s must not turn
/// into a flood of requests to the issuer).
const UNKNOWN_KEY_READ_EVERY: Duration = Duration::from_secs(1);
/// After a failed read the issuer is tried again this soon (not after a whole `refresh`).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

struct Key {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    decoding: DecodingKey,
}

/// Distinguishes every `External` ever built: a cached verdict is a hit only for the very
/// instance (same settings) that reached it, never for one a reload rebuilt.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct External {
    pub spec: IssuerSpec,
    pub id: u64,
    keys: ArcSwap<Vec<Key>>,
    status: ArcSwap<KeyStatus>,
    http: reqwest::Client,
    /// Unix ms of the last read attempt (0: never).
    last_attempt: AtomicU64,
    /// Serialises reads for unknown key ids; holds when the last one started (unix ms).
    unknown_key_read: tokio::sync::Mutex<u64>,
    generation: AtomicU64,
}

impl External {
    pub fn new(spec: IssuerSpec) -> Result<Arc<External>, String> {
        Ok(Arc::new(External {
            spec,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            keys: ArcSwap::from_pointee(Vec::new()),
            status: ArcSwap::from_pointee(KeyStatus {
                error: Some("not fetched yet".into()),
                ..KeyStatus::default()
            }),
            http: key_client()?,
            last_attempt: AtomicU64::new(0),
            unknown_key_read: tokio::sync::Mutex::new(0),
            generation: AtomicU64::new(0),
        }))
    }

    /// Starts with the keys `previous` read (a reload that changed only audiences, claims or
    /// the interval): true when it could.
    pub fn adopt_keys(&self, previous: &External) -> bool {
        if previous.spec.keys != self.spec.keys || previous.spec.issuer != self.spec.issuer {
            return false;
        }
        let keys = previous.keys.load();
        let usable: Vec<Key> = keys
            .iter()
            .map(|k| Key {
                kid: k.kid.clone(),
                algorithms: narrow(&k.algorithms, &self.spec.algorithms),
                decoding: k.decoding.clone(),
            })
            .filter(|k| !k.algorithms.is_empty())
            .collect();
        if usable.len() != keys.len() {
            // some keys are no use with the new algorithms: read the set again first
            return false;
        }
        self.keys.store(Arc::new(usable));
        self.status.store(previous.status.load_full());
        self.last_attempt.store(
            previous.last_attempt.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        true
    }

    pub fn key_status(&self) -> Arc<KeyStatus> {
        self.status.load_full()
    }

    /// Whether the background watcher should read the keys now.
    pub fn due(&self, now_ms: u64) -> bool {
        let last = self.last_attempt.load(Ordering::Relaxed);
        let every = if self.status.load().error.is_some() {
            RETRY_AFTER_FAILURE
        } else {
            self.spec.refresh
        };
        last == 0 || now_ms.saturating_sub(last) >= every.as_millis() as u64
    }

    /// Reads the issuer's keys; on failure the set in use stays. Logs when reads start or
    /// stop failing, not every failed attempt.
    pub async fn refresh(&self) -> Result<(), String> {
        let now_ms = auth_core::plumbing::clock::unix_millis();
        self.last_attempt.store(now_ms, Ordering::Relaxed);
        let result = self.read().await;
        let was_failing = self.status.load().error.is_some() && self.status.load().loaded_ms > 0;
        match result {
            Ok(keys) => {
                let count = keys.len();
                self.keys.store(Arc::new(keys));
                self.generation.fetch_add(1, Ordering::AcqRel);
                if was_failing {
                    tracing::info!(issuer = %self.spec.name, keys = count, "issuer keys readable again");
                }
                self.status.store(Arc::new(KeyStatus {
                    keys: count,
                    loaded_ms: now_ms,
                    error: None,
                }));
                Ok(())
            }
            Err(e) => {
                let old = self.status.load_full();
                if old.error.is_none() || old.loaded_ms == 0 {
                    tracing::warn!(issuer = %self.spec.name, error = %e, "cannot read the issuer's keys; the last good ones stay in use");
                }
                self.status.store(Arc::new(KeyStatus {
                    keys: old.keys,
                    loaded_ms: old.loaded_ms,
                    error: Some(e.clone()),
                }));
                Err(e)
            }
        }
    }

    async fn read(&self) -> Result<Vec<Key>, String> {
        let url = match &self.spec.keys {
            IssuerKeys::Jwks(url) => url.clone(),
            IssuerKeys::Discovery => self.discover().await?,
        };
        let body = fetch_limited(&self.http, &url)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        parse_jwks(&body, &self.spec.algorithms).map_err(|e| format!("{url}: {e}"))
    }

    /// `jwks_uri` from the OpenID discovery document, which must name this very issuer.
    async fn discover(&self) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.spec.issuer.trim_end_matches('/')
        );
        let body = fetch_limited(&self.http, &url)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let doc: Discovery = serde_json::from_slice(&body)
            .map_err(|e| format!("{url}: not a discovery document: {e}"))?;
        if doc.issuer != self.spec.issuer {
            return Err(format!(
                "{url}: names issuer {}, not {}",
                doc.issuer, self.spec.issuer
            ));
        }
        // keys over plain HTTP could be swapped on the way: only from a loopback issuer
        let loopback = crate::config::is_loopback_url(&self.spec.issuer);
        if !doc.jwks_uri.starts_with("https://") && !loopback {
            return Err(format!("{url}: jwks_uri {} is not https", doc.jwks_uri));
        }
        Ok(doc.jwks_uri)
    }

    /// Verifies a token of this issuer; an unknown key id reads the keys again (at most once
    /// a second) and tries once more.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        match self.verify_now(token, now) {
            Err(TokenError::UnknownKey) if self.read_for_unknown_key().await => {
                self.verify_now(token, now)
            }
            other => other,
        }
    }

    async fn read_for_unknown_key(&self) -> bool {
        let seen = self.generation.load(Ordering::Acquire);
        let mut last = self.unknown_key_read.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return true;
        }
        let now_ms = auth_core::plumbing::clock::unix_millis();
        if now_ms.saturating_sub(*last) < UNKNOWN_KEY_READ_EVERY.as_millis() as u64 {
            return false;
        }
        let read = self.refresh().await.is_ok();
        // counted from the end of the read: requests queued behind a slow issuer do not each
        // start another one
        *last = auth_core::plumbing::clock::unix_millis();
        read
    }

    fn verify_now(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > auth_core::token::MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let keys = self.keys.load();
        let key = match &header.kid {
            // an RSA and an EC key may share a kid: the one for this algorithm
            Some(kid) => keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .find(|k| k.algorithms.contains(&header.alg))
                .or_else(|| keys.iter().find(|k| k.kid.as_deref() == Some(kid.as_str()))),
            // issuers with one key may leave kid out
            None if keys.len() == 1 => keys.first(),
            None => None,
        }
        .ok_or(TokenError::UnknownKey)?;
        if !key.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.spec.issuer]);
        validation.set_audience(&self.spec.audience);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .map_err(|e| auth_core::token::classify(&e))?;
        let claims = self.claims(&data.claims, now)?;
        auth_core::token::check_time(&claims, now)?;
        Ok(claims)
    }

    /// The edge's view of the token: the subject namespaced by the issuer's name (a partner's
    /// "42" is not the core's user 42), roles from the configured claim.
    fn claims(&self, c: &serde_json::Value, now: i64) -> Result<Claims, TokenError> {
        let num = |name: &str| {
            c.get(name)
                .and_then(|v| v.as_i64().or(v.as_f64().map(|f| f as i64)))
        };
        // a time claim that is there but not a number is not "absent"
        if ["nbf", "iat"]
            .iter()
            .any(|n| c.get(*n).is_some_and(|v| !v.is_number()))
        {
            return Err(TokenError::Claims);
        }
        let sub = c
            .get("sub")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::Claims)?;
        let exp = num("exp").ok_or(TokenError::Claims)?;
        let mut roles_value = Some(c);
        for part in &self.spec.roles_claim {
            roles_value = roles_value.and_then(|v| v.get(part));
        }
        let listed: Vec<&str> = match roles_value {
            Some(serde_json::Value::Array(list)) => {
                list.iter().filter_map(|r| r.as_str()).collect()
            }
            // "scope"-style claims: space-separated
            Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
            _ => Vec::new(),
        };
        // namespaced like the subject: a partner's "admin" is "partner:admin", never the
        // core's admin; a role that is not one plain token (a ',' would split it for the
        // upstream) is dropped
        let roles = listed
            .into_iter()
            .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_graphic() && b != b','))
            .map(|r| format!("{}:{r}", self.spec.name))
            .collect();
        Ok(Claims {
            iss: self.spec.issuer.clone(),
            aud: self.spec.audience.first().cloned().unwrap_or_default(),
            sub: format!("{}:{sub}", self.spec.name),
            // no session at the core: the deny list does not apply
            sid: String::new(),
            roles,
            // the partner's word, as its token states it
            email_verified: c.get("email_verified").and_then(serde_json::Value::as_bool)
                == Some(true),
            iat: num("iat").unwrap_or(now),
            exp,
            nbf: num("nbf"),
        })
    }
}

/// The `iss` of a token, read without verifying it: only to choose who verifies it.
pub fn peek_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    serde_json::from_slice::<Iss>(&bytes).ok().map(|i| i.iss)
}

/// The signing keys of a JWKS usable with `allowed`; other keys (encryption, symmetric,
/// unsupported curves) are skipped. An empty result is an error: the issuer could verify
/// nothing.
fn parse_jwks(body: &[u8], allowed: &[Algorithm]) -> Result<Vec<Key>, String> {
    let set: JwkSet =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON key set: {e}"))?;
    let keys: Vec<Key> = set
        .keys
        .iter()
        .filter_map(|jwk| key(jwk, allowed))
        .collect();
    if keys.is_empty() {
        return Err(format!(
            "no signing key usable with {}",
            allowed
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(keys)
}

fn key(jwk: &Jwk, allowed: &[Algorithm]) -> Option<Key> {
    use Algorithm::*;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[ES256],
            EllipticCurve::P384 => &[ES384],
            _ => &[],
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => &[EdDSA],
        // symmetric ("oct") and anything else: never
        _ => &[],
    };
    let mut algorithms = narrow(family, allowed);
    if let Some(named) = jwk.common.key_algorithm {
        // KeyAlgorithm prints as its JWA name ("RS256")
        let named: Algorithm = named.to_string().parse().ok()?;
        algorithms.retain(|a| *a == named);
    }
    if algorithms.is_empty() {
        return None;
    }
    Some(Key {
        kid: jwk.common.key_id.clone(),
        algorithms,
        decoding: DecodingKey::from_jwk(jwk).ok()?,
    })
}

fn narrow(family: &[Algorithm], allowed: &[Algorithm]) -> Vec<Algorithm> {
    family
        .iter()
        .copied()
        .filter(|a| allowed.contains(a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header};
    use openssl::bn::BigNumContext;
    use openssl::ec::{EcGroup, EcKey, PointConversionForm};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    const NOW: i64 = 1_800_000_000;
    const ISS: &str = "https://sso.partner.test/realms/cinema";

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An RSA key: its JWK (no `alg`) and its signing key.
    fn rsa(kid: &str) -> (serde_json::Value, EncodingKey, Vec<u8>) {
        let key = Rsa::generate(2048).unwrap();
        let jwk = serde_json::json!({
            "kty": "RSA", "kid": kid, "use": "sig",
            "n": b64(&key.n().to_vec()), "e": b64(&key.e().to_vec()),
        });
        let der = key.private_key_to_der().unwrap();
        let public_pem = key.public_key_to_pem().unwrap();
        (jwk, EncodingKey::from_rsa_der(&der), public_pem)
    }

    fn p256(kid: &str) -> (serde_json::Value, EncodingKey) {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let point = key
            .public_key()
            .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
            .unwrap();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        let der = PKey::from_ec_key(key)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap();
        (jwk, EncodingKey::from_ec_der(&der))
    }

    fn spec(algorithms: &[Algorithm]) -> IssuerSpec {
        IssuerSpec {
            name: "partner".into(),
            issuer: ISS.into(),
            audience: vec!["cinema-api".into()],
            keys: IssuerKeys::Jwks("http://127.0.0.1:9/jwks".into()),
            algorithms: algorithms.to_vec(),
            roles_claim: vec!["realm_access".into(), "roles".into()],
            refresh: Duration::from_secs(600),
        }
    }

    fn issuer(algorithms: &[Algorithm], jwks: serde_json::Value) -> Arc<External> {
        let ext = External::new(spec(algorithms)).unwrap();
        let keys = parse_jwks(jwks.to_string().as_bytes(), algorithms).unwrap();
        ext.keys.store(Arc::new(keys));
        ext
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "iss": ISS, "aud": ["account", "cinema-api"], "sub": "42",
            "exp": NOW + 300, "iat": NOW,
            "realm_access": { "roles": ["subscriber", "offline_access"] },
        })
    }

    fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, c: &serde_json::Value) -> String {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, c, key).unwrap()
    }

    #[test]
    fn rsa_and_ec_tokens_verify_with_mapped_claims() {
        let (rsa_jwk, rsa_key, _) = rsa("r1");
        let (ec_jwk, ec_key) = p256("e1");
        let ext = issuer(
            &[Algorithm::RS256, Algorithm::ES256],
            serde_json::json!({ "keys": [rsa_jwk, ec_jwk] }),
        );
        for token in [
            sign(Algorithm::RS256, "r1", &rsa_key, &claims()),
            sign(Algorithm::ES256, "e1", &ec_key, &claims()),
        ] {
            let c = ext.verify_now(&token, NOW).unwrap();
            assert_eq!(c.sub, "partner:42", "namespaced: not the core's user 42");
            assert_eq!(c.roles, ["partner:subscriber", "partner:offline_access"]);
            assert!(c.sid.is_empty());
        }
        assert_eq!(
            peek_issuer(&sign(Algorithm::RS256, "r1", &rsa_key, &claims())).as_deref(),
            Some(ISS)
        );
        assert_eq!(peek_issuer("not.a-token"), None);
    }

    #[test]
    fn the_key_decides_the_algorithm() {
        let (rsa_jwk, rsa_key, public_pem) = rsa("r1");
        let (ec_jwk, ec_key) = p256("e1");
        let ext = issuer(
            &[Algorithm::RS256, Algorithm::ES256],
            serde_json::json!({ "keys": [rsa_jwk, ec_jwk] }),
        );
        // HS256 with the RSA public key as the secret: the classic confusion
        let hmac = EncodingKey::from_secret(&public_pem);
        let forged = sign(Algorithm::HS256, "r1", &hmac, &claims());
        assert_eq!(ext.verify_now(&forged, NOW), Err(TokenError::Algorithm));
        // an algorithm of the right family the issuer does not allow
        let pss = sign(Algorithm::PS256, "r1", &rsa_key, &claims());
        assert_eq!(ext.verify_now(&pss, NOW), Err(TokenError::Algorithm));
        // an EC key named by a token claiming RS256
        let mixed = sign(Algorithm::RS256, "e1", &rsa_key, &claims());
        assert_eq!(ext.verify_now(&mixed, NOW), Err(TokenError::Algorithm));
        // a right-family signature by another key
        let other = sign(Algorithm::ES256, "e1", &p256("e2").1, &claims());
        assert_eq!(ext.verify_now(&other, NOW), Err(TokenError::Signature));
        let unknown = sign(Algorithm::ES256, "nope", &ec_key, &claims());
        assert_eq!(ext.verify_now(&unknown, NOW), Err(TokenError::UnknownKey));
        // a JWK that says RS384 is used for nothing else
        let (mut jwk384, key384, _) = rsa("r384");
        jwk384["alg"] = "RS384".into();
        let ext = issuer(
            &[Algorithm::RS256, Algorithm::RS384],
            serde_json::json!({ "keys": [jwk384] }),
        );
        assert!(ext
            .verify_now(&sign(Algorithm::RS384, "r384", &key384, &claims()), NOW)
            .is_ok());
        assert_eq!(
            ext.verify_now(&sign(Algorithm::RS256, "r384", &key384, &claims()), NOW),
            Err(TokenError::Algorithm)
        );
    }

    #[test]
    fn claims_time_and_audience_are_checked() {
        let (jwk, key, _) = rsa("r1");
        let ext = issuer(&[Algorithm::RS256], serde_json::json!({ "keys": [jwk] }));
        let mut c = claims();
        c["aud"] = "another-service".into();
        assert_eq!(
            ext.verify_now(&sign(Algorithm::RS256, "r1", &key, &c), NOW),
            Err(TokenError::Claims)
        );
        let mut c = claims();
        c["iss"] = "https://evil.test".into();
        assert_eq!(
            ext.verify_now(&sign(Algorithm::RS256, "r1", &key, &c), NOW),
            Err(TokenError::Claims)
        );
        let mut c = claims();
        c["exp"] = (NOW - 3600).into();
        assert_eq!(
            ext.verify_now(&sign(Algorithm::RS256, "r1", &key, &c), NOW),
            Err(TokenError::Expired)
        );
        // a role that would split for the upstream is dropped; huge or odd times
        let mut c = claims();
        c["realm_access"]["roles"] = serde_json::json!(["subscriber,admin", " admin", "ok"]);
        let got = ext
            .verify_now(&sign(Algorithm::RS256, "r1", &key, &c), NOW)
            .unwrap();
        assert_eq!(got.roles, ["partner:ok"]);
        let mut c = claims();
        c["exp"] = serde_json::json!(u64::MAX);
        c["nbf"] = serde_json::json!(-1e300);
        assert!(ext
            .verify_now(&sign(Algorithm::RS256, "r1", &key, &c), NOW)
            .is_ok());
        let mut c = claims();
        c["nbf"] = "9999999999".into();
        assert_eq!(
            ext.verify_now(&sign(Algorithm::RS256, "r1", &key, &c), NOW),
            Err(TokenError::Claims)
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        assert_eq!(
            ext.verify_now(&sign(Algorithm::RS256, "r1", &key, &c), NOW),
            Err(TokenError::Claims)
        );
    }

    #[test]
    fn key_sets_without_a_usable_signing_key_are_refused() {
        let oct = serde_json::json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0", "kid": "h" }] });
        assert!(parse_jwks(oct.to_string().as_bytes(), &[Algorithm::RS256]).is_err());
        let (mut enc, _, _) = rsa("enc");
        enc["use"] = "enc".into();
        let set = serde_json::json!({ "keys": [enc] });
        assert!(parse_jwks(set.to_string().as_bytes(), &[Algorithm::RS256]).is_err());
        let (ec, _) = p256("e1");
        let set = serde_json::json!({ "keys": [ec] });
        // an EC key when only RSA is accepted
        assert!(parse_jwks(set.to_string().as_bytes(), &[Algorithm::RS256]).is_err());
        assert!(parse_jwks(b"{}", &[Algorithm::RS256]).is_err());
    }
}
