-- When the person behind a session last proved who they are. A session opened by a sign-in
-- is that moment (NULL: created_at); a TV session approved from a phone inherits the phone
-- session's moment, so it is no fresher a sign-in than the one that vouched for it (linking
-- a provider needs a recent one).
ALTER TABLE sessions ADD COLUMN authenticated_at timestamptz;
