//! TLS listeners: certificates loaded once at start, chosen per handshake by SNI.

use crate::config::TlsSpec;
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{TlsAccept, TlsAcceptCallbacks};
use pingora::protocols::tls::TlsRef;
use pingora::tls::ext;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::ssl::NameType;
use pingora::tls::x509::X509;
use std::path::Path;

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

/// Picks the certificate for the SNI name; the first one when nothing matches.
struct SniResolver {
    /// (host pattern, index into `certs`), exact names before wildcards.
    names: Vec<(String, usize)>,
    certs: Vec<CertKey>,
}

impl SniResolver {
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

#[async_trait]
impl TlsAccept for SniResolver {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let sni = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
        let ck = self.pick(sni.as_deref());
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

/// Builds Pingora TLS settings for a listener.
pub fn settings(spec: &TlsSpec) -> Result<TlsSettings, String> {
    let mut certs = Vec::with_capacity(spec.certificates.len());
    let mut names = Vec::new();
    for (i, c) in spec.certificates.iter().enumerate() {
        certs.push(load_pair(&c.cert, &c.key)?);
        names.extend(c.hosts.iter().map(|h| (h.clone(), i)));
    }
    if certs.is_empty() {
        return Err("a TLS listener needs a certificate".into());
    }
    names.sort_by_key(|(h, _)| h.starts_with("*."));
    let callbacks: TlsAcceptCallbacks = Box::new(SniResolver { names, certs });
    let mut settings = TlsSettings::with_callbacks(callbacks).map_err(|e| e.to_string())?;
    if spec.http2 {
        settings.enable_h2();
    }
    Ok(settings)
}
