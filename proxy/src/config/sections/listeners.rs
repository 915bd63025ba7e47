//! `[[listener]]`: addresses, TLS certificates, HTTP→HTTPS redirects.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

pub(in crate::config) fn listener_specs(
    dir: &Path,
    listeners: Vec<(String, usize, ListenerFile)>,
    p: &mut Problems,
) -> Vec<ListenerSpec> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (file, i, l) in listeners {
        let key = format!("listener[{i}]");
        let address = match l.address.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                p.add(
                    &file,
                    format!("{key}.address"),
                    format!("\"{}\" is not an ip:port address", l.address),
                );
                continue;
            }
        };
        if !seen.insert(address) {
            p.add(
                &file,
                format!("{key}.address"),
                format!("{address} is used by another listener"),
            );
        }
        let tls = if l.certificate.is_empty() {
            if l.http2.is_some() {
                p.add(
                    &file,
                    format!("{key}.http2"),
                    "HTTP/2 is offered only on TLS listeners (add a [[listener.certificate]])",
                );
            }
            None
        } else {
            if l.redirect_https_port.is_some() {
                p.add(
                    &file,
                    format!("{key}.redirect_https_port"),
                    "only a plain listener can redirect to HTTPS",
                );
            }
            let certificates = l
                .certificate
                .iter()
                .enumerate()
                .filter_map(|(j, c)| {
                    certificate_spec(dir, &file, &format!("{key}.certificate[{j}]"), c, p)
                })
                .collect();
            Some(TlsSpec {
                http2: l.http2.unwrap_or(true),
                certificates,
            })
        };
        out.push(ListenerSpec {
            address,
            tls,
            redirect_https_port: l.redirect_https_port,
        });
    }
    out
}

pub(in crate::config) fn certificate_spec(
    dir: &Path,
    file: &str,
    key: &str,
    c: &CertificateFile,
    p: &mut Problems,
) -> Option<CertificateSpec> {
    let cert = dir.join(&c.cert);
    let key_path = dir.join(&c.key);
    match crate::server::tls::load_pair(&cert, &key_path) {
        Ok(_) => {}
        Err(e) => {
            p.add(file, key, e);
            return None;
        }
    }
    let mut hosts = Vec::with_capacity(c.hosts.len());
    for (k, h) in c.hosts.iter().enumerate() {
        let h = h.to_ascii_lowercase();
        let bare = h.strip_prefix("*.").unwrap_or(&h);
        if !valid_hostname(bare) {
            p.add(
                file,
                format!("{key}.hosts[{k}]"),
                format!("\"{h}\" is not a host name"),
            );
        }
        hosts.push(h);
    }
    Some(CertificateSpec {
        cert,
        key: key_path,
        hosts,
    })
}
