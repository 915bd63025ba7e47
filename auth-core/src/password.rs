//! Passwords: the policy new passwords must meet, and argon2id hashing off the async
//! runtime with a bound on concurrent hashes (each one holds `memory_kib` of RAM).

use crate::config::PasswordSettings;
use crate::error::Error;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use rand::RngCore;
use std::sync::Arc;
use tokio::sync::Semaphore;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

/// The most common leaked passwords that meet the length rule; refused outright.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "11111111",
    "00000000",
    "87654321",
    "qwertyui",
    "qwerty123",
    "qwertyuiop",
    "1q2w3e4r",
    "1qaz2wsx",
    "zaq12wsx",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "abc12345",
    "abcd1234",
    "admin123",
    "letmein1",
    "passw0rd",
    "p@ssw0rd",
    "superman",
    "trustno1",
    "michael1",
    "starwars",
    "whatever",
    "dragon12",
    "monkey123",
    "qwerty12",
    "asdfghjk",
    "asdfasdf",
    "zxcvbnm1",
    "1234qwer",
    "q1w2e3r4",
    "qazwsxedc",
    "123123123",
    "123qweasd",
    "password!",
    "changeme",
    "internet",
    "computer",
    "cinema123",
    "netflix1",
    "йцукенгш",
    "пароль123",
    "qwerty1234",
    "11223344",
    "12341234",
    "987654321",
];

/// Checks a new password against the policy. Length is counted in characters, not bytes,
/// so a Cyrillic password is not penalised.
pub fn check_policy(password: &str) -> Result<(), Error> {
    let invalid = |message| Error::Invalid {
        field: "password",
        message,
    };
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(invalid("must be at least 8 characters"));
    }
    if chars > MAX_CHARS {
        return Err(invalid("must be at most 128 characters"));
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(c))
    {
        return Err(invalid("must not be one repeated character"));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(invalid("is too common"));
    }
    Ok(())
}

/// Argon2id hashing and verification on the blocking pool.
pub struct Passwords {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A hash of a random password: unknown emails are verified against it so they cost the
    /// same time as a wrong password.
    dummy: String,
    /// Argon2 verifications run, the dummy's included (a metric, and how tests see that an
    /// unknown email costs a hash).
    pub checks: std::sync::atomic::AtomicU64,
}

impl Passwords {
    pub fn new(s: &PasswordSettings) -> Result<Passwords, Error> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let dummy = hash_with(&argon, &random)?;
        Ok(Passwords {
            argon,
            permits: Arc::new(Semaphore::new(s.max_concurrent.max(1))),
            dummy,
            checks: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// PHC string (`$argon2id$v=19$m=…`) of a new password.
    #[tracing::instrument(name = "password.hash", skip_all)]
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let argon = self.argon.clone();
        let password = password.as_bytes().to_vec();
        self.blocking(move || hash_with(&argon, &password)).await?
    }

    /// True if `password` matches `hash`. With no hash (unknown account, or a social-only
    /// account) the dummy hash is checked and the answer is false.
    #[tracing::instrument(name = "password.verify", skip_all)]
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, Error> {
        let argon = self.argon.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_string();
        let password = password.as_bytes().to_vec();
        let ok = self
            .blocking(move || argon.verify_password(&password, hash.as_str()).is_ok())
            .await?;
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(ok && known)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Unavailable(crate::error::Dependency::PasswordHashing))?;
        tokio::task::spawn_blocking(move || {
            lower_priority();
            f()
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing task: {e}")))
    }
}

/// Nice value of threads while they hash. A login storm keeps cores busy with argon2; at a
/// lower priority the kernel still gives the proxy's workers the CPU first, so the rest of
/// the site stays fast while logins queue (see bench/login-storm.sh).
const HASH_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority (Linux sets nice per thread). Idempotent; a failure
/// only means hashing competes at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take no pointers and only affect this thread.
        let tid = unsafe { libc::gettid() };
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, HASH_NICE) };
    }
}

fn hash_with(argon: &Argon2<'_>, password: &[u8]) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    argon
        .hash_password_with_salt(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordSettings {
        PasswordSettings {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
        }
    }

    #[test]
    fn policy() {
        assert!(check_policy("correct horse").is_ok());
        assert!(check_policy("пароль-для-кино").is_ok());
        assert!(check_policy("short").is_err());
        assert!(check_policy("Password123").is_err());
        assert!(check_policy("aaaaaaaaaa").is_err());
        assert!(check_policy(&"x".repeat(64).replace("xx", "xy")).is_ok());
        assert!(check_policy(&"xy".repeat(65)).is_err());
        // 128 Cyrillic characters are 256 bytes and still allowed
        assert!(check_policy(&"жк".repeat(64)).is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::new(&fast()).unwrap();
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{h}");
        assert!(p.verify("correct horse", Some(&h)).await.unwrap());
        assert!(!p.verify("wrong horse", Some(&h)).await.unwrap());
        // no hash: the dummy is checked and the answer is always false
        assert!(!p.verify("correct horse", None).await.unwrap());
        assert!(!p.verify("", Some("not a phc string")).await.unwrap());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let p = Passwords::new(&fast()).unwrap();
        let nice = p
            .blocking(|| unsafe {
                libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
            })
            .await
            .unwrap();
        assert_eq!(nice, HASH_NICE);
    }

    #[test]
    fn owasp_defaults() {
        let d = PasswordSettings::default();
        assert_eq!((d.memory_kib, d.iterations, d.parallelism), (19456, 2, 1));
    }
}
