-- Accounts, roles, sessions, login history and social accounts of the auth core.
-- Partitioning is explained in docs/partitioning.md.

-- === users: HASH(id), 16 partitions: the profile ===
-- Lookups by id name the partition key, so each touches one partition. Email cannot be
-- unique on a table partitioned by id (a unique index must contain the partition key), so
-- uniqueness lives in `credentials` below.
CREATE TABLE users (
    id            uuid        NOT NULL,
    email         text        NOT NULL,     -- a copy for display; `credentials` owns it
    country       char(2),                  -- profile data: not a partition key (see docs)
    age_rating    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
) PARTITION BY HASH (id);

-- === credentials: HASH(email), 16 partitions: what a password login reads ===
-- The primary key contains the partition key, so an email is unique across all partitions,
-- and a login is one query on one partition: email -> user id and password hash.
CREATE TABLE credentials (
    email         text NOT NULL,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash text,                     -- NULL: the account signs in only through a provider
    PRIMARY KEY (email)
) PARTITION BY HASH (email);

CREATE TABLE roles (
    name        text        PRIMARY KEY,
    description text        NOT NULL DEFAULT '',
    builtin     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO roles (name, description, builtin) VALUES
    ('admin', 'Manages roles and users', true),
    ('subscriber', 'Paid subscription: premium content', true);

-- === user_roles: HASH(user_id), colocated with users ===
CREATE TABLE user_roles (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text        NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
) PARTITION BY HASH (user_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE users_p%s PARTITION OF users FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
        EXECUTE format('CREATE TABLE credentials_p%s PARTITION OF credentials FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
        EXECUTE format('CREATE TABLE user_roles_p%s PARTITION OF user_roles FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;

-- === sessions and refresh tokens ===
-- A session is one sign-in and the family of refresh tokens rotated from it; `sid` in the
-- access token. Short-lived rows, deleted after expiry, so not partitioned (see docs).
CREATE TABLE sessions (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    revoke_reason text,
    device       text        NOT NULL,
    user_agent   text,
    ip           inet
);
CREATE INDEX sessions_user_active ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY,     -- SHA-256 of the token; the token itself is never stored
    session_id uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- === login_history: RANGE(occurred_at), one partition per month ===
CREATE TABLE login_history (
    id             uuid        NOT NULL,    -- UUIDv7: time-ordered, the keyset tiebreaker
    occurred_at    timestamptz NOT NULL,
    user_id        uuid,                    -- NULL when the email matched no account
    success        boolean     NOT NULL,
    method         text        NOT NULL,    -- 'password' or a provider name
    device         text        NOT NULL,    -- 'web', 'mobile', 'smart_tv'
    ip             inet,
    user_agent     text,
    failure_reason text,
    PRIMARY KEY (occurred_at, id)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX login_history_user ON login_history (user_id, occurred_at DESC, id DESC);
-- Catches rows outside every monthly partition (a clock far off); kept empty in practice.
CREATE TABLE login_history_default PARTITION OF login_history DEFAULT;

-- Creates the monthly partitions from `from_month` to `months_ahead` months after now().
-- Idempotent: the auth core calls it at start and daily.
CREATE FUNCTION ensure_login_history_partitions(months_ahead int, from_month date DEFAULT NULL)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    m     date := date_trunc('month', coalesce(from_month, now()::date))::date;
    last  date := (date_trunc('month', now()) + make_interval(months => months_ahead))::date;
    name  text;
    made  int := 0;
BEGIN
    WHILE m <= last LOOP
        name := format('login_history_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF login_history FOR VALUES FROM (%L) TO (%L)',
                name, m, (m + interval '1 month')::date);
            made := made + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END $$;

SELECT ensure_login_history_partitions(3);

-- === social_accounts: LIST(provider) ===
-- (provider, subject) is the identity at a provider; the key contains the partition key, so
-- it is unique across partitions and a lookup touches one partition.
CREATE TABLE social_accounts (
    provider  text        NOT NULL,
    subject   text        NOT NULL,
    user_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email     text,
    linked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
) PARTITION BY LIST (provider);
CREATE INDEX social_accounts_user ON social_accounts (user_id);
CREATE TABLE social_accounts_yandex  PARTITION OF social_accounts FOR VALUES IN ('yandex');
CREATE TABLE social_accounts_vk      PARTITION OF social_accounts FOR VALUES IN ('vk');
CREATE TABLE social_accounts_google  PARTITION OF social_accounts FOR VALUES IN ('google');
CREATE TABLE social_accounts_mailru  PARTITION OF social_accounts FOR VALUES IN ('mailru');
CREATE TABLE social_accounts_default PARTITION OF social_accounts DEFAULT;
