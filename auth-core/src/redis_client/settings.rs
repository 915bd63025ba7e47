//! What the edge needs to reach Redis, whatever its topology: validated by the edge's config
//! loader (file and key named there), consumed by `SharedRedis`.

use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One server (or a managed endpoint that hides its replicas).
    Standalone,
    /// Masters found through `redis-sentinel`: `urls` are the sentinels.
    Sentinel { master_name: String },
    /// Redis Cluster: `urls` are seed nodes; the client learns the rest.
    Cluster,
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Sentinel { .. } => "sentinel",
            Mode::Cluster => "cluster",
        }
    }
}

/// PEM bytes, read when the config is loaded so a missing file is refused by `edge check`.
#[derive(Clone, Default)]
pub struct TlsFiles {
    /// Trust only this CA (a private one); None trusts the system's roots.
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key, for servers that require them (`tls-auth-clients yes`).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsFiles {
    /// At least one certificate, and every PEM section of the file parses.
    pub fn check_certificates(pem: &[u8]) -> Result<(), String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM certificate file: {e}"))?;
        if certs.is_empty() {
            return Err("holds no PEM certificate".into());
        }
        Ok(())
    }

    /// One private key in PEM (PKCS#8, PKCS#1 or SEC1).
    pub fn check_key(pem: &[u8]) -> Result<(), String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::PrivateKeyDer;
        PrivateKeyDer::from_pem_slice(pem)
            .map(|_| ())
            .map_err(|e| format!("not a PEM private key: {e}"))
    }
}

#[derive(Clone)]
pub struct RedisSettings {
    pub mode: Mode,
    /// `redis://` or `rediss://` URLs: the server, the seed nodes, or the sentinels.
    pub urls: Vec<String>,
    /// ACL user and password for the data nodes (a password in a URL also works).
    pub username: Option<String>,
    pub password: Option<String>,
    /// Set when the URLs are `rediss://`: TLS to every node (and to the sentinels when their
    /// URLs are `rediss://`).
    pub tls: Option<TlsFiles>,
    /// Per call, for the proxy's calls (the auth core allows itself more).
    pub timeout: Duration,
}

impl RedisSettings {
    /// One plain server, as before topologies existed (tests, admin commands).
    pub fn standalone(url: &str, timeout: Duration) -> RedisSettings {
        RedisSettings {
            mode: Mode::Standalone,
            urls: vec![url.to_string()],
            username: None,
            password: None,
            tls: url.starts_with("rediss://").then(TlsFiles::default),
            timeout,
        }
    }

    /// The same servers with a different per-call timeout (the auth core's).
    pub fn with_timeout(&self, timeout: Duration) -> RedisSettings {
        RedisSettings {
            timeout,
            ..self.clone()
        }
    }

    /// For logs and `/_edge/ready`: the mode and the URLs with any password masked.
    pub fn describe(&self) -> String {
        // the query is dropped: the redis crate reads a password from `?pass=` too
        let urls: Vec<String> = self
            .urls
            .iter()
            .map(|u| crate::plumbing::redact::url(u.split('?').next().unwrap_or_default()))
            .collect();
        format!("{} {}", self.mode.name(), urls.join(","))
    }
}

impl fmt::Debug for RedisSettings {
    // by hand: the password and the key must never reach a log line
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("target", &self.describe())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PartialEq for RedisSettings {
    // a reload compares settings to decide whether to reconnect
    fn eq(&self, o: &Self) -> bool {
        self.mode == o.mode
            && self.urls == o.urls
            && self.username == o.username
            && self.password == o.password
            && self.timeout == o.timeout
            && self.tls.as_ref().map(|t| (&t.ca, &t.client))
                == o.tls.as_ref().map(|t| (&t.ca, &t.client))
    }
}
