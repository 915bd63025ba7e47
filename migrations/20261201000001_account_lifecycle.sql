-- Account lifecycle (docs/account-lifecycle.md): confirmed emails, single-use mailed tokens,
-- and the mail outbox.

-- Existing accounts keep working as before: they are not asked to confirm retroactively
-- (their routes did not require it); new ones start unconfirmed (the default is set below).
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT true;
ALTER TABLE users ALTER COLUMN email_verified SET DEFAULT false;
-- The language of the account's mails: 'en' or 'ru', from the sign-up request.
ALTER TABLE users ADD COLUMN lang text NOT NULL DEFAULT 'en';

-- === account_tokens: what a mailed link carries ===
-- Only the SHA-256 of a token is stored. `purpose` keeps a reset token from confirming an
-- email and back; `email` is the address the link was sent to (for a change: the new one).
-- Short-lived rows, deleted after expiry by housekeeping, so not partitioned.
CREATE TABLE account_tokens (
    token_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CHECK (purpose IN ('confirm_email', 'reset_password', 'change_email')),
    email      text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose) WHERE spent_at IS NULL;

-- === mail_outbox: every mail, written in the transaction of the change that causes it ===
-- A sender claims due rows with FOR UPDATE SKIP LOCKED (no two replicas take the same row)
-- and moves `next_attempt_at` past its lease before sending, so a crashed sender's mail is
-- retried, not lost. Bodies carry a link's token in clear until sent: they are wiped then.
CREATE TABLE mail_outbox (
    id              uuid        PRIMARY KEY,  -- UUIDv7
    created_at      timestamptz NOT NULL,
    template        text        NOT NULL,
    lang            text        NOT NULL,
    recipient       text        NOT NULL,
    subject         text        NOT NULL,
    body_text       text,
    body_html       text,
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
