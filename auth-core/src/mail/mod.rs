//! Mail that loses nothing: a mail is a row of `mail_outbox`, written in the transaction of
//! the change that causes it (a rolled-back registration sends nothing; a committed one always
//! sends), and delivered by a background sender in every replica (`sender.rs`).

pub mod sender;
pub mod settings;
pub mod templates;

use crate::error::Result;
use crate::repo::outbox;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use templates::{Lang, Mail};

/// Renders `mail` in `lang` and queues it for `to`, in the caller's transaction.
pub async fn queue(
    db: impl PgExecutor<'_>,
    mail: &Mail<'_>,
    lang: Lang,
    to: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let r = templates::render(mail, lang);
    outbox::enqueue(
        db,
        &outbox::NewMail {
            template: mail.name(),
            lang: lang.as_str(),
            recipient: to,
            subject: &r.subject,
            text: &r.text,
            html: &r.html,
        },
        now,
    )
    .await?;
    Ok(())
}
