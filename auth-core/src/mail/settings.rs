//! `[mail]`: how the core reaches its SMTP relay, what links its mails carry, and how long
//! their tokens live. Validated by the edge's config loader; nothing here parses files.

use std::fmt;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP: a relay on loopback or in a private network only.
    None,
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Clone, PartialEq)]
pub struct MailSettings {
    /// `From:` of every mail, e.g. `Cinema <no-reply@cinema.example>`.
    pub from: String,
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// PEM certificates trusted for the relay besides the public roots (a private CA).
    pub ca: Option<Vec<u8>>,
    /// SMTP AUTH, read from the environment variables `[mail]` names.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Longest wait on the relay per connection step; a hanging relay costs one attempt.
    pub timeout: Duration,
    /// Attempts before a mail is marked failed for good.
    pub max_attempts: u32,
    /// Waits between attempts: `retry_base` doubled per attempt, capped, with jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often a replica looks for due mail when nothing woke it.
    pub poll_interval: Duration,
    /// Link templates with a `{token}` placeholder: the page of the site's front end that
    /// posts the token to `/auth/email/confirm` or `/auth/password/reset`.
    pub confirm_url: String,
    pub reset_url: String,
    pub confirm_ttl: Duration,
    pub reset_ttl: Duration,
}

impl MailSettings {
    pub fn confirm_link(&self, token: &str) -> String {
        self.confirm_url.replace("{token}", token)
    }

    pub fn reset_link(&self, token: &str) -> String {
        self.reset_url.replace("{token}", token)
    }

    /// The wait after `attempts` failures: `retry_base · 2^(attempts-1)`, capped at
    /// `retry_max`, then between 50 % and 100 % of that (jitter: replicas that failed
    /// together do not retry together).
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let doubled = self
            .retry_base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
        let capped = doubled.min(self.retry_max);
        capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// The SMTP password never reaches a log.
impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("from", &self.from)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// Whether `pem` holds a certificate the SMTP client can trust (checked when the conf is read).
pub fn check_ca(pem: &[u8]) -> Result<(), String> {
    // the same rule as Redis's CA (at least one certificate), then what lettre itself reads
    crate::redis_client::TlsFiles::check_certificates(pem)?;
    lettre::transport::smtp::client::Certificate::from_pem(pem)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether `from` is a mailbox the sender can put in `From:` ("Name <addr>" or "addr");
/// checked when the conf is read, so a typo is not first seen when a mail fails.
pub fn check_from(from: &str) -> Result<(), String> {
    from.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) fn for_tests() -> MailSettings {
    MailSettings {
        from: "Cinema <no-reply@cinema.test>".into(),
        host: "127.0.0.1".into(),
        port: 2525,
        security: SmtpSecurity::None,
        ca: None,
        username: None,
        password: None,
        timeout: Duration::from_secs(5),
        max_attempts: 5,
        retry_base: Duration::from_secs(2),
        retry_max: Duration::from_secs(60),
        poll_interval: Duration::from_secs(1),
        confirm_url: "https://cinema.test/confirm?token={token}".into(),
        reset_url: "https://cinema.test/reset?token={token}".into(),
        confirm_ttl: Duration::from_secs(24 * 3600),
        reset_ttl: Duration::from_secs(30 * 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let s = for_tests();
        assert_eq!(s.backoff(1, 1.0), Duration::from_secs(2));
        assert_eq!(s.backoff(3, 1.0), Duration::from_secs(8));
        assert_eq!(s.backoff(3, 0.0), Duration::from_secs(4));
        assert_eq!(s.backoff(30, 1.0), Duration::from_secs(60));
        assert_eq!(s.backoff(0, 1.0), Duration::from_secs(2));
        assert!(s.confirm_link("abc").ends_with("token=abc"));
        assert!(!format!(
            "{:?}",
            MailSettings {
                password: Some("hunter2".into()),
                ..s
            }
        )
        .contains("hunter2"));
    }
}
