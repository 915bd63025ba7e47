//! `[[issuer]]`: external identity providers whose tokens routes may accept, and the check
//! that every `issuers = [...]` of a route or forward-auth policy names one.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;
use jsonwebtoken::Algorithm;

/// Asymmetric algorithms only: an HMAC secret would have to be shared with the issuer, and
/// accepting one invites the classic RS256→HS256 confusion.
const ACCEPTED: &[(&str, Algorithm)] = &[
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

pub(in crate::config) fn issuer_specs(
    list: Vec<(String, usize, IssuerFile)>,
    own_issuer: Option<&str>,
    p: &mut Problems,
) -> Vec<IssuerSpec> {
    let mut out: Vec<IssuerSpec> = Vec::new();
    for (file, i, f) in list {
        let key = format!("issuer[{i}]");
        if !safe_name(&f.name) || f.name == SELF_ISSUER {
            p.add(
                &file,
                format!("{key}.name"),
                format!(
                    "\"{}\" must be letters, digits, '-', '_' or '.', and not \"{SELF_ISSUER}\" (the auth core)",
                    f.name
                ),
            );
        } else if out.iter().any(|o| o.name == f.name) {
            p.add(
                &file,
                format!("{key}.name"),
                format!("issuer \"{}\" is defined twice", f.name),
            );
        }
        if f.issuer.is_empty() || own_issuer == Some(f.issuer.as_str()) {
            p.add(
                &file,
                format!("{key}.issuer"),
                "must be the issuer's `iss`, and not the auth core's own",
            );
        } else if out.iter().any(|o| o.issuer == f.issuer) {
            p.add(
                &file,
                format!("{key}.issuer"),
                "another [[issuer]] has this `iss`",
            );
        }
        if f.audience.is_empty() || f.audience.iter().any(String::is_empty) {
            p.add(
                &file,
                format!("{key}.audience"),
                "list the `aud` values to accept: a token meant for another service must not pass",
            );
        }
        let keys = match (&f.jwks_url, f.discovery.unwrap_or(false)) {
            (Some(url), false) => {
                secure_url(&file, &format!("{key}.jwks_url"), url, p);
                IssuerKeys::Jwks(url.clone())
            }
            (None, true) => {
                secure_url(&file, &format!("{key}.issuer"), &f.issuer, p);
                IssuerKeys::Discovery
            }
            _ => {
                p.add(
                    &file,
                    format!("{key}.jwks_url"),
                    "set either jwks_url or discovery = true",
                );
                IssuerKeys::Discovery
            }
        };
        let mut algorithms = Vec::new();
        for (j, a) in f.algorithms.iter().enumerate() {
            match ACCEPTED.iter().find(|(n, _)| n == a) {
                Some((_, alg)) => algorithms.push(*alg),
                None => {
                    let names: Vec<&str> = ACCEPTED.iter().map(|(n, _)| *n).collect();
                    p.add(
                        &file,
                        format!("{key}.algorithms[{j}]"),
                        format!("\"{a}\" is not one of {}", names.join(", ")),
                    );
                }
            }
        }
        if f.algorithms.is_empty() {
            p.add(
                &file,
                format!("{key}.algorithms"),
                "name at least one algorithm",
            );
        }
        let roles_claim: Vec<String> = f
            .roles_claim
            .as_deref()
            .unwrap_or("roles")
            .split('.')
            .map(str::to_string)
            .collect();
        if roles_claim.iter().any(String::is_empty) {
            p.add(
                &file,
                format!("{key}.roles_claim"),
                "a dotted path like \"realm_access.roles\"",
            );
        }
        let refresh = duration(
            &file,
            &format!("{key}.refresh"),
            f.refresh.as_deref(),
            "10m",
            false,
            p,
        );
        out.push(IssuerSpec {
            name: f.name,
            issuer: f.issuer,
            audience: f.audience,
            keys,
            algorithms,
            roles_claim,
            refresh,
        });
    }
    out
}

/// Keys fetched over plain HTTP could be swapped on the way: https, or http to loopback
/// (a sidecar, tests).
fn secure_url(file: &str, key: &str, url: &str, p: &mut Problems) {
    if http_url(file, key, url, p) && !url.starts_with("https://") && !is_loopback_url(url) {
        p.add(
            file,
            key,
            format!("\"{url}\" must be https (plain http only to a loopback address)"),
        );
    }
}

/// A route's or policy's `issuers`: default the auth core; every name must exist.
pub(in crate::config) fn accepted_issuers(
    file: &str,
    key: &str,
    names: Option<&[String]>,
    issuers: &[IssuerSpec],
    all_parsed: bool,
    p: &mut Problems,
) -> Vec<String> {
    let Some(names) = names else {
        return vec![SELF_ISSUER.to_string()];
    };
    if names.is_empty() {
        p.add(
            file,
            key,
            "name at least one issuer (\"self\" is the auth core)",
        );
    }
    for (j, n) in names.iter().enumerate() {
        if n != SELF_ISSUER && !issuers.iter().any(|i| &i.name == n) && all_parsed {
            let mut known: Vec<&str> = issuers.iter().map(|i| i.name.as_str()).collect();
            known.insert(0, SELF_ISSUER);
            p.add(
                file,
                format!("{key}[{j}]"),
                format!("unknown issuer \"{n}\" (defined: {})", known.join(", ")),
            );
        }
    }
    names.to_vec()
}
