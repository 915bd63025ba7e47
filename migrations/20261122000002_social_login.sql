-- Social login (docs/social-login.md).

-- An account created through a provider that shared no confirmed email has none: it signs in
-- only through that provider until the user links another way.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;

-- One identity per provider per account (two VK accounts on one cinema account would make
-- "unlink vk" ambiguous). The index holds the partition key, so it is unique across
-- partitions, and "which providers does this user have" reads one index entry per partition.
CREATE UNIQUE INDEX social_accounts_provider_user ON social_accounts (provider, user_id);
