//! TLS listeners: certificates chosen per handshake by SNI, from a set each listener holds
//! behind an `ArcSwap`. A reload (or a renewed certificate file) swaps in a new set: new
//! handshakes use it, established connections keep theirs, nothing is dropped.

use crate::config::{ListenerSpec, TlsSpec};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{TlsAccept, TlsAcceptCallbacks};
use pingora::protocols::tls::TlsRef;
use pingora::tls::ext;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::ssl::NameType;
use pingora::tls::x509::X509;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A certificate chain (leaf first) and its key.
pub struct CertKey {
    chain: Vec<X509>,
    key: PKey<Private>,
}

/// Reads and checks a PEM pair; the message names what is wrong for `edge check`.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertKey, String> {
    let cert_pem = std::fs::read(cert)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?;
    let key_pem =
        std::fs::read(key).map_err(|e| format!("cannot read key {}: {e}", key.display()))?;
    let chain = X509::stack_from_pem(&cert_pem)
        .map_err(|e| format!("{} is not a PEM certificate: {e}", cert.display()))?;
    let key_obj = PKey::private_key_from_pem(&key_pem)
        .map_err(|e| format!("{} is not a PEM private key: {e}", key.display()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| format!("{} holds no certificate", cert.display()))?;
    let matches = leaf
        .public_key()
        .map(|pk| pk.public_eq(&key_obj))
        .unwrap_or(false);
    if !matches {
        return Err(format!(
            "{} does not belong to the certificate {}",
            key.display(),
            cert.display()
        ));
    }
    Ok(CertKey {
        chain,
        key: key_obj,
    })
}

/// One listener's certificates: picks the one for the SNI name, the first when none matches.
pub struct CertSet {
    /// (host pattern, index into `certs`), exact names before wildcards.
    names: Vec<(String, usize)>,
    certs: Vec<CertKey>,
    /// The PEM files it was read from, to tell a renewal from a reload that changed nothing.
    source: Vec<u8>,
}

impl CertSet {
    /// Reads and checks every pair of the listener.
    pub fn load(spec: &TlsSpec) -> Result<CertSet, String> {
        let mut certs = Vec::with_capacity(spec.certificates.len());
        let mut names = Vec::new();
        let mut source = Vec::new();
        for (i, c) in spec.certificates.iter().enumerate() {
            certs.push(load_pair(&c.cert, &c.key)?);
            names.extend(c.hosts.iter().map(|h| (h.clone(), i)));
            for f in [&c.cert, &c.key] {
                source.extend(f.as_os_str().as_encoded_bytes());
                source.extend(std::fs::read(f).unwrap_or_default());
            }
            source.extend(c.hosts.join(",").as_bytes());
        }
        if certs.is_empty() {
            return Err("a TLS listener needs a certificate".into());
        }
        names.sort_by_key(|(h, _)| h.starts_with("*."));
        Ok(CertSet {
            names,
            certs,
            source,
        })
    }

    fn pick(&self, sni: Option<&str>) -> &CertKey {
        let idx = sni
            .map(|s| s.to_ascii_lowercase())
            .and_then(|s| {
                self.names
                    .iter()
                    .find_map(|(pattern, i)| match pattern.strip_prefix("*.") {
                        Some(suffix) => s
                            .split_once('.')
                            .filter(|(_, rest)| *rest == suffix)
                            .map(|_| *i),
                        None => (*pattern == s).then_some(*i),
                    })
            })
            .unwrap_or(0);
        &self.certs[idx]
    }
}

/// The certificate sets of the TLS listeners, by address (listeners are fixed at start).
#[derive(Default)]
pub struct Certificates {
    by_listener: Vec<(SocketAddr, Arc<ArcSwap<CertSet>>)>,
}

impl Certificates {
    pub fn load(listeners: &[ListenerSpec]) -> Result<Certificates, String> {
        let mut by_listener = Vec::new();
        for l in listeners {
            if let Some(tls) = &l.tls {
                let set = CertSet::load(tls).map_err(|e| format!("listener {}: {e}", l.address))?;
                by_listener.push((l.address, Arc::new(ArcSwap::from_pointee(set))));
            }
        }
        Ok(Certificates { by_listener })
    }

    /// The certificate files of every TLS listener (watched for renewals).
    pub fn files(listeners: &[ListenerSpec]) -> impl Iterator<Item = &std::path::Path> {
        listeners
            .iter()
            .filter_map(|l| l.tls.as_ref())
            .flat_map(|t| &t.certificates)
            .flat_map(|c| [c.cert.as_path(), c.key.as_path()])
    }

    /// Reads the certificates `listeners` name for the listeners running; all or nothing:
    /// one bad pair refuses the lot. Returns the sets to `swap` in.
    pub fn prepare(&self, listeners: &[ListenerSpec]) -> Result<Vec<(usize, CertSet)>, String> {
        let mut out = Vec::new();
        for (i, (addr, current)) in self.by_listener.iter().enumerate() {
            let Some(tls) = listeners
                .iter()
                .find(|l| l.address == *addr)
                .and_then(|l| l.tls.as_ref())
            else {
                continue; // the listener's TLS block is a restart change: the set stays
            };
            let set = CertSet::load(tls).map_err(|e| format!("listener {addr}: {e}"))?;
            if set.source != current.load().source {
                out.push((i, set));
            }
        }
        Ok(out)
    }

    /// Puts prepared sets in place: the next handshake on each listener uses them.
    pub fn swap(&self, prepared: Vec<(usize, CertSet)>) {
        for (i, set) in prepared {
            if let Some((addr, current)) = self.by_listener.get(i) {
                current.store(Arc::new(set));
                tracing::info!(listener = %addr, "TLS certificates reloaded");
            }
        }
    }

    fn of(&self, addr: SocketAddr) -> Option<Arc<ArcSwap<CertSet>>> {
        self.by_listener
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, set)| set.clone())
    }
}

/// The TLS callback of one listener: reads its current set at each handshake.
struct SniResolver(Arc<ArcSwap<CertSet>>);

#[async_trait]
impl TlsAccept for SniResolver {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let sni = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
        let set = self.0.load();
        let ck = set.pick(sni.as_deref());
        // A failure here leaves the handshake without a certificate, which the client sees as a
        // handshake error: the right outcome, and nothing else can be done mid-handshake.
        let Some(leaf) = ck.chain.first() else { return };
        if let Err(e) = ext::ssl_use_certificate(ssl, leaf) {
            tracing::error!(error = %e, "cannot set the TLS certificate");
            return;
        }
        for extra in ck.chain.iter().skip(1) {
            if let Err(e) = ext::ssl_add_chain_cert(ssl, extra) {
                tracing::error!(error = %e, "cannot add a chain certificate");
            }
        }
        if let Err(e) = ext::ssl_use_private_key(ssl, &ck.key) {
            tracing::error!(error = %e, "cannot set the TLS key");
        }
    }
}

/// Builds Pingora TLS settings for a listener whose certificates `certificates` holds.
pub fn settings(
    address: SocketAddr,
    spec: &TlsSpec,
    certificates: &Certificates,
) -> Result<TlsSettings, String> {
    let set = certificates
        .of(address)
        .ok_or_else(|| format!("listener {address}: no certificates loaded"))?;
    let callbacks: TlsAcceptCallbacks = Box::new(SniResolver(set));
    let mut settings = TlsSettings::with_callbacks(callbacks).map_err(|e| e.to_string())?;
    if spec.http2 {
        settings.enable_h2();
    }
    Ok(settings)
}
