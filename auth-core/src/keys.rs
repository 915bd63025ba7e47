//! Ed25519 signing keys: one PKCS#8 PEM file per key in a directory (a mounted secret shared by
//! every edge replica), the newest one signs, and older ones stay published in the JWKS until
//! every token they signed has expired. Private keys are never printed.

use crate::error::Error;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SUFFIX: &str = ".ed25519.pem";

/// A key that can sign. `Debug` shows only its id.
pub struct Signer {
    pub kid: String,
    pub encoding: EncodingKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A published public key.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: String,
    /// Raw 32-byte key, base64url (the JWK `x`).
    pub x: String,
    pub created: DateTime<Utc>,
    pub decoding: DecodingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("created", &self.created)
            .finish()
    }
}

/// The keys in force at one moment.
#[derive(Debug)]
pub struct KeySet {
    pub signer: Option<Signer>,
    pub public: Vec<PublicKey>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub kid: String,
    pub x: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl KeySet {
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .public
                .iter()
                .map(|k| Jwk {
                    kty: "OKP",
                    crv: "Ed25519",
                    alg: "EdDSA",
                    use_: "sig",
                    kid: k.kid.clone(),
                    x: k.x.clone(),
                })
                .collect(),
        }
    }
}

/// A JWK as another party publishes it: only Ed25519 signing keys are taken.
#[derive(serde::Deserialize)]
struct PublishedJwk {
    kty: String,
    crv: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    kid: Option<String>,
    x: Option<String>,
}

#[derive(serde::Deserialize)]
struct PublishedJwks {
    keys: Vec<PublishedJwk>,
}

/// The verification keys of a JWKS document (RFC 7517) fetched from an auth core running
/// elsewhere. Keys that are not Ed25519 signature keys are skipped, since only EdDSA tokens
/// are accepted; a document without a single usable key is an error, so the caller keeps
/// the keys it had.
pub fn parse_jwks(body: &[u8], now: DateTime<Utc>) -> Result<Vec<PublicKey>, Error> {
    let doc: PublishedJwks = serde_json::from_slice(body)
        .map_err(|e| Error::Internal(format!("JWKS is not a JSON key set: {e}")))?;
    let usable = doc.keys.into_iter().filter(|k| {
        k.kty == "OKP"
            && k.crv.as_deref() == Some("Ed25519")
            && k.alg.as_deref().is_none_or(|a| a == "EdDSA")
            && k.use_.as_deref().is_none_or(|u| u == "sig")
    });
    let mut keys = Vec::new();
    for jwk in usable {
        let x = jwk.x.unwrap_or_default();
        let raw_len = URL_SAFE_NO_PAD.decode(&x).map_or(0, |raw| raw.len());
        if raw_len != 32 {
            return Err(Error::Internal(format!(
                "JWKS key {}: x is not a 32-byte base64url Ed25519 key",
                jwk.kid.as_deref().unwrap_or("(no kid)")
            )));
        }
        let decoding = DecodingKey::from_ed_components(&x)
            .map_err(|e| Error::Internal(format!("JWKS key: {e}")))?;
        keys.push(PublicKey {
            kid: jwk.kid.unwrap_or_else(|| thumbprint(&x)),
            x,
            created: now,
            decoding,
        });
    }
    if keys.is_empty() {
        return Err(Error::Internal("JWKS holds no Ed25519 signing key".into()));
    }
    Ok(keys)
}

/// One key file as found in the directory.
struct Stored {
    path: PathBuf,
    created: DateTime<Utc>,
    key: SigningKey,
}

/// RFC 7638 thumbprint of the public key: a stable id every replica derives alike.
pub fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn read_dir(dir: &Path) -> Result<Vec<Stored>, Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::Internal(format!("keys dir {}: {e}", dir.display())))?;
    let mut keys = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stamp) = name.strip_suffix(SUFFIX) else {
            continue;
        };
        let created = stamp
            .parse::<i64>()
            .ok()
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .ok_or_else(|| {
                Error::Internal(format!("key file {name}: name must be <unix time>{SUFFIX}"))
            })?;
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| Error::Internal(format!("key file {name}: {e}")))?;
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|_| Error::Internal(format!("key file {name}: not an Ed25519 PKCS#8 key")))?;
        keys.push(Stored { path, created, key });
    }
    keys.sort_by_key(|k| k.created);
    Ok(keys)
}

fn public_of(stored: &Stored) -> Result<PublicKey, Error> {
    let x = URL_SAFE_NO_PAD.encode(stored.key.verifying_key().to_bytes());
    let decoding = DecodingKey::from_ed_components(&x)
        .map_err(|e| Error::Internal(format!("public key: {e}")))?;
    Ok(PublicKey {
        kid: thumbprint(&x),
        x,
        created: stored.created,
        decoding,
    })
}

/// Keys that still verify tokens at `now`: the newest, and each older one until its successor
/// has signed for a whole token lifetime (plus a minute of clock skew).
fn in_force(keys: &[Stored], now: DateTime<Utc>, token_ttl: Duration) -> Vec<&Stored> {
    let keep = chrono::Duration::from_std(token_ttl + Duration::from_secs(60))
        .unwrap_or(chrono::Duration::MAX);
    keys.iter()
        .enumerate()
        .filter(|(i, _)| match keys.get(i + 1) {
            None => true,
            Some(next) => now < next.created + keep,
        })
        .map(|(_, k)| k)
        .collect()
}

/// Reads the directory into the keys in force at `now`.
pub fn load(dir: &Path, now: DateTime<Utc>, token_ttl: Duration) -> Result<KeySet, Error> {
    let keys = read_dir(dir)?;
    let signer = match keys.last() {
        Some(k) => {
            let der = k
                .key
                .to_pkcs8_der()
                .map_err(|e| Error::Internal(format!("encode key: {e}")))?;
            let public = public_of(k)?;
            Some(Signer {
                kid: public.kid,
                encoding: EncodingKey::from_ed_der(der.as_bytes()),
            })
        }
        None => None,
    };
    let public = in_force(&keys, now, token_ttl)
        .into_iter()
        .map(public_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeySet { signer, public })
}

/// Writes a new key, which becomes the signing key, and deletes keys no token can need any
/// more. Returns the new key id.
pub fn rotate(dir: &Path, now: DateTime<Utc>, token_ttl: Duration) -> Result<String, Error> {
    create_dir(dir)?;
    let existing = read_dir(dir)?;
    // one key per second at most: the file name is the creation time
    let mut stamp = now.timestamp();
    if let Some(last) = existing.last() {
        stamp = stamp.max(last.created.timestamp() + 1);
    }
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| Error::Internal(format!("encode key: {e}")))?;
    let path = dir.join(format!("{stamp}{SUFFIX}"));
    write_private(&path, pem.as_bytes())?;
    let created = Utc.timestamp_opt(stamp, 0).single().unwrap_or(now);
    let stored = Stored { path, created, key };
    let kid = public_of(&stored)?.kid;
    let mut all = existing;
    all.push(stored);
    let keep: Vec<PathBuf> = in_force(&all, now, token_ttl)
        .into_iter()
        .map(|k| k.path.clone())
        .collect();
    for old in all.iter().filter(|k| !keep.contains(&k.path)) {
        if let Err(e) = std::fs::remove_file(&old.path) {
            tracing::warn!(path = %old.path.display(), error = %e, "cannot delete retired key");
        }
    }
    Ok(kid)
}

/// Creates the first key if the directory has none.
pub fn ensure(dir: &Path, now: DateTime<Utc>, token_ttl: Duration) -> Result<(), Error> {
    create_dir(dir)?;
    if read_dir(dir)?.is_empty() {
        let kid = rotate(dir, now, token_ttl)?;
        tracing::info!(kid, dir = %dir.display(), "created the first signing key");
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Internal(format!("keys dir {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Owner-only file: a private key readable by others is a leaked key.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::Internal(format!("write key {}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::Internal(format!("write key {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(900);

    #[test]
    fn a_published_jwks_reads_back_into_the_same_keys() {
        let dir = tempdir();
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        ensure(&dir, t0, TTL).unwrap();
        let set = load(&dir, t0, TTL).unwrap();
        let mut doc = serde_json::to_value(set.jwks()).unwrap();
        // a foreign RSA key next to ours is skipped, not an error
        doc["keys"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"kty": "RSA", "kid": "r1", "n": "AQAB", "e": "AQAB"}));
        let keys = parse_jwks(doc.to_string().as_bytes(), t0).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, set.public[0].kid);
        assert_eq!(keys[0].x, set.public[0].x);

        for bad in [
            "not json",
            r#"{"keys": []}"#,
            r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#,
            r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "c2hvcnQ"}]}"#,
            r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "HS256", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        ] {
            assert!(parse_jwks(bad.as_bytes(), t0).is_err(), "{bad}");
        }
        // without a kid, the RFC 7638 thumbprint names it
        let no_kid = r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let keys = parse_jwks(no_kid.as_bytes(), t0).unwrap();
        assert_eq!(keys[0].kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn rotation_keeps_the_old_key_until_its_tokens_expire() {
        let dir = tempdir();
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        ensure(&dir, t0, TTL).unwrap();
        let first = load(&dir, t0, TTL).unwrap();
        let first_kid = first.signer.as_ref().unwrap().kid.clone();
        assert_eq!(first.public.len(), 1);
        assert_eq!(first.public[0].kid, first_kid);

        let t1 = t0 + chrono::Duration::hours(1);
        let second_kid = rotate(&dir, t1, TTL).unwrap();
        assert_ne!(first_kid, second_kid);
        let set = load(&dir, t1, TTL).unwrap();
        assert_eq!(set.signer.as_ref().unwrap().kid, second_kid);
        let kids: Vec<_> = set.public.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, [first_kid.as_str(), second_kid.as_str()]);

        // after a token lifetime and the skew minute the old key is gone from the JWKS
        let later = t1 + chrono::Duration::seconds(900 + 61);
        let set = load(&dir, later, TTL).unwrap();
        assert_eq!(set.public.len(), 1);
        // and the next rotation deletes its file
        rotate(&dir, later, TTL).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn debug_never_shows_private_material() {
        let dir = tempdir();
        let now = Utc::now();
        ensure(&dir, now, TTL).unwrap();
        let set = load(&dir, now, TTL).unwrap();
        let printed = format!("{set:?}");
        let pem = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .next()
            .unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!printed.contains(&body), "{printed}");
        assert!(printed.contains(&set.signer.as_ref().unwrap().kid));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn thumbprint_matches_rfc8037_example() {
        // RFC 8037 appendix A.3
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    fn tempdir() -> PathBuf {
        let mut seed = [0u8; 8];
        rand::rng().fill_bytes(&mut seed);
        let dir = std::env::temp_dir().join(format!("edge-keys-{}", u64::from_le_bytes(seed)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
