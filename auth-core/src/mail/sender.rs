//! The outbox sender: claims due mails (no two replicas the same one), sends them through
//! SMTP, and records the outcome. A relay that refuses, drops the connection or hangs costs
//! one attempt and one log line; the mail waits with backoff and is marked failed for good
//! after `max_attempts`.

use super::settings::{MailSettings, SmtpSecurity};
use crate::error::{Error, Result};
use crate::repo::outbox::{self, Claimed};
use crate::Auth;
use chrono::Utc;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

/// Mails taken per claim; sent one after the other.
const BATCH: i64 = 10;

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The SMTP client `[mail]` describes. Connects lazily: a relay that is down at start only
/// delays mail.
pub fn transport(s: &MailSettings) -> Result<Transport> {
    let bad = |e: lettre::transport::smtp::Error| Error::Internal(format!("mail: {e}"));
    // the public roots, and the relay's private CA when `[mail] ca` names one
    let params = || {
        let mut tls = TlsParameters::builder(s.host.clone());
        if let Some(pem) = &s.ca {
            tls = tls.add_root_certificate(Certificate::from_pem(pem).map_err(bad)?);
        }
        tls.build_rustls().map_err(bad)
    };
    let builder = Transport::builder_dangerous(&s.host);
    let builder = match s.security {
        SmtpSecurity::None => builder,
        // Required: a relay that does not offer STARTTLS is refused, never used in clear
        SmtpSecurity::StartTls => builder.tls(Tls::Required(params()?)),
        SmtpSecurity::Tls => builder.tls(Tls::Wrapper(params()?)),
    };
    let mut builder = builder.port(s.port).timeout(Some(s.timeout));
    if let (Some(user), Some(password)) = (&s.username, &s.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// The lease a claimed batch holds: longer than sending it can take (every step of every
/// mail bounded by the timeout), so no other replica sees those mails due meanwhile.
fn lease(s: &MailSettings) -> chrono::Duration {
    let worst = s.timeout.saturating_mul(4 * BATCH as u32 + 4);
    chrono::Duration::from_std(worst.max(Duration::from_secs(60)))
        .unwrap_or(chrono::Duration::minutes(10))
}

/// Runs until the process ends: sends what is due, then sleeps until a mail is queued in
/// this process or `poll_interval` passes (another replica may have queued one).
pub async fn run(auth: Arc<Auth>, settings: MailSettings) {
    let transport = match transport(&settings) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e.detail(), "mail sender not started");
            return;
        }
    };
    loop {
        match send_due(&auth, &transport, &settings).await {
            // a full batch: more may be due
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.detail(), "mail outbox unreachable"),
        }
        tokio::select! {
            _ = auth.mail_queued.notified() => {}
            _ = tokio::time::sleep(settings.poll_interval) => {}
        }
    }
}

/// One claim and its sends; returns how many mails were claimed.
pub async fn send_due(auth: &Auth, transport: &Transport, s: &MailSettings) -> Result<usize> {
    let claimed = outbox::claim(&auth.db, Utc::now(), lease(s), BATCH).await?;
    let n = claimed.len();
    for mail in claimed {
        let outcome = deliver(transport, s, &mail).await;
        record(auth, s, &mail, outcome).await?;
    }
    Ok(n)
}

enum Outcome {
    Sent,
    /// Worth another attempt: relay down, dropped connection, timeout, and any refusal,
    /// 5xx included — a relay's 5xx is as often its own misconfiguration (relaying denied,
    /// a bad login) as a dead mailbox, and `max_attempts` bounds the cost.
    Retry(String),
    /// Can never go: a malformed address or body.
    Permanent(String),
}

async fn deliver(transport: &Transport, s: &MailSettings, mail: &Claimed) -> Outcome {
    let (Some(text), Some(html)) = (&mail.body_text, &mail.body_html) else {
        return Outcome::Permanent("no body (wiped)".into());
    };
    let from: Mailbox = match s.from.parse() {
        Ok(m) => m,
        Err(e) => return Outcome::Permanent(format!("from address: {e}")),
    };
    // an address, never a mailbox with a display name: what was stored is what receives it
    let to = match mail.recipient.parse::<lettre::Address>() {
        Ok(address) => Mailbox::new(None, address),
        Err(e) => return Outcome::Permanent(format!("recipient address: {e}")),
    };
    // one Message-ID per outbox row, the same on every attempt: a mail sent again after a
    // lost acknowledgement can be recognised as the same message by the receiving side
    let message_id = format!("<{}@{}>", mail.id, from.email.domain());
    let message = Message::builder()
        .message_id(Some(message_id))
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            text.clone(),
            html.clone(),
        ));
    let message = match message {
        Ok(m) => m,
        Err(e) => return Outcome::Permanent(format!("message: {e}")),
    };
    // lettre bounds each socket step; this bounds a relay that trickles bytes forever
    let whole = s.timeout.saturating_mul(4);
    match tokio::time::timeout(whole, transport.send(message)).await {
        Ok(Ok(_)) => Outcome::Sent,
        Ok(Err(e)) if e.is_permanent() => Outcome::Retry(format!("relay refused for good: {e}")),
        Ok(Err(e)) => Outcome::Retry(format!("{e}")),
        Err(_) => Outcome::Retry(format!(
            "timed out: the relay did not finish within {whole:?}"
        )),
    }
}

async fn record(auth: &Auth, s: &MailSettings, mail: &Claimed, outcome: Outcome) -> Result<()> {
    let now = Utc::now();
    let attempts = mail.attempts.max(1) as u32;
    match outcome {
        Outcome::Sent => {
            outbox::mark_sent(&auth.db, mail.id, now).await?;
            auth.stats
                .mail_sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(mail = %mail.id, template = %mail.template, attempts, "mail sent");
        }
        Outcome::Retry(error) if attempts < s.max_attempts => {
            let wait = s.backoff(attempts, rand::rng().random::<f64>());
            let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            outbox::retry_at(&auth.db, mail.id, next, &error).await?;
            auth.stats
                .mail_retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(mail = %mail.id, template = %mail.template, attempts, retry_in = ?wait, %error, "mail not delivered; will retry");
        }
        Outcome::Retry(error) | Outcome::Permanent(error) => {
            outbox::mark_failed(&auth.db, mail.id, now, &error).await?;
            auth.stats
                .mail_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(mail = %mail.id, template = %mail.template, attempts, %error, "mail failed for good");
        }
    }
    Ok(())
}
