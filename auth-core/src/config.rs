//! Validated settings of the auth core. The edge parses `[auth]` from the conf dir into this;
//! nothing here derives `Deserialize`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, PartialEq)]
pub struct Config {
    /// Loopback address the core's HTTP router listens on; the edge routes `/auth` here.
    pub listen: SocketAddr,
    pub database_url: String,
    pub migrate_on_start: bool,
    /// Pool size and the longest wait for a connection: past it the core answers 503.
    pub db_max_connections: u32,
    pub db_timeout: Duration,
    /// Where Redis is, when the core runs on its own (admin commands); the edge hands the
    /// core its own client instead (`Auth::with_redis`).
    pub redis: Option<crate::redis_client::RedisSettings>,
    pub redis_timeout: Duration,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// A spent refresh token presented again within this window (two tabs refreshing at
    /// once) gets a fresh pair instead of revoking the session.
    pub refresh_reuse_grace: Duration,
    pub keys: KeySettings,
    pub password: PasswordSettings,
    pub throttle: ThrottleSettings,
    /// How clients are grouped for the per-network throttle (the edge's `[client_ip]`).
    pub client_networks: crate::client_network::ClientNetworks,
    /// How many months of login-history partitions exist ahead of the current one.
    pub history_months_ahead: u32,
    /// Sign-in with Yandex, VK, Google, Mail.ru and OIDC providers; None: not offered.
    pub social: Option<crate::social::settings::SocialSettings>,
    /// Sign-in on TVs by a code approved on a phone (RFC 8628); None: not offered.
    pub device: Option<crate::device_grant::settings::DeviceSettings>,
    /// Confirmation and reset mails through SMTP; None: no mail (emails stay unconfirmed,
    /// an email change applies at once, password reset is not offered).
    pub mail: Option<crate::mail::settings::MailSettings>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KeySettings {
    /// Directory of Ed25519 signing keys (PKCS#8 PEM, one file per key).
    pub dir: PathBuf,
    /// Create a first key when the directory holds none (demo and single-replica setups).
    pub generate_if_missing: bool,
    /// How often the directory is re-read, so `edge keys rotate` needs no restart.
    pub reload_interval: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PasswordSettings {
    /// Argon2id memory in KiB, iterations and lanes (OWASP: 19456, 2, 1).
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; each holds `memory_kib` of RAM.
    pub max_concurrent: usize,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ThrottleSettings {
    /// Login attempts on one account from one client network within `window`; past it that
    /// network is refused for that account (429). Other networks are not.
    pub per_account: u32,
    /// Login attempts from one client network, whatever the account.
    pub per_ip: u32,
    pub window: Duration,
    /// Failures on one account (from any network) past `per_account` delay every further
    /// attempt on it by this much per failure, up to `slowdown_max`: an attack spread over
    /// many networks is slowed, and the owner still signs in.
    pub slowdown_step: Duration,
    pub slowdown_max: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            per_account: 10,
            per_ip: 50,
            window: Duration::from_secs(15 * 60),
            slowdown_step: Duration::from_millis(200),
            slowdown_max: Duration::from_secs(2),
        }
    }
}

/// The database URL may carry a password: print it without.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &crate::plumbing::redact::url(&self.database_url),
            )
            .field("migrate_on_start", &self.migrate_on_start)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("keys", &self.keys)
            .field("password", &self.password)
            .field("throttle", &self.throttle)
            .field("client_networks", &self.client_networks)
            .field("social", &self.social)
            .field("mail", &self.mail)
            .finish_non_exhaustive()
    }
}
