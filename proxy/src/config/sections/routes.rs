//! `[[route]]`: hosts, canonical path prefixes, upstream and limit references, auth modes.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;
use std::collections::BTreeMap;

/// What route validation checks references against.
pub(in crate::config) struct RouteRefs<'a> {
    pub upstreams: &'a BTreeMap<String, (String, UpstreamFile)>,
    pub limits: &'a BTreeMap<String, (String, LimitFile)>,
    /// Every file parsed: unknown names are reported only then.
    pub all_parsed: bool,
    pub verifies_tokens: bool,
    pub http: &'a HttpSettings,
    pub issuers: &'a [IssuerSpec],
}

pub(in crate::config) fn route_specs(
    routes: Vec<(String, usize, RouteFile)>,
    refs: &RouteRefs<'_>,
    p: &mut Problems,
) -> Vec<RouteSpec> {
    let RouteRefs {
        upstreams,
        limits,
        all_parsed,
        verifies_tokens,
        http,
        issuers,
    } = *refs;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut matches: BTreeMap<(Option<String>, String), String> = BTreeMap::new();
    let mut out = Vec::new();
    for (file, i, r) in routes {
        let key = format!("route[{i}]");
        if r.name.is_empty() {
            p.add(&file, format!("{key}.name"), "must not be empty");
        } else if !safe_name(&r.name) {
            // names go into metric labels, log fields and limiter keys as they are
            p.add(
                &file,
                format!("{key}.name"),
                format!(
                    "\"{}\" may only hold letters, digits, '-', '_' and '.' (at most 64)",
                    r.name
                ),
            );
        } else if let Some(first) = names.insert(r.name.clone(), file.clone()) {
            p.add(
                &file,
                format!("{key}.name"),
                format!("route \"{}\" is already defined in {first}", r.name),
            );
        }
        let host = r.host.as_ref().map(|h| h.to_ascii_lowercase());
        if let Some(h) = &host {
            if !valid_hostname(h) {
                p.add(
                    &file,
                    format!("{key}.host"),
                    format!("\"{h}\" is not a host name (no port, no scheme)"),
                );
            }
        }
        let path = match normalize_prefix(&r.path) {
            Ok(path) => path,
            Err(why) => {
                p.add(&file, format!("{key}.path"), why);
                continue;
            }
        };
        if let Some(first) = matches.insert((host.clone(), path.clone()), r.name.clone()) {
            p.add(
                &file,
                format!("{key}.path"),
                format!("route \"{first}\" already matches this host and path"),
            );
        }
        // An upstream may live in a file that failed to parse; only complain when all parsed.
        if !upstreams.contains_key(&r.upstream) && all_parsed {
            let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
            p.add(
                &file,
                format!("{key}.upstream"),
                format!(
                    "unknown upstream \"{}\" (defined: {})",
                    r.upstream,
                    known.join(", ")
                ),
            );
        }
        for (j, l) in r.limits.iter().enumerate() {
            if !limits.contains_key(l) && all_parsed {
                let known: Vec<&str> = limits.keys().map(String::as_str).collect();
                p.add(
                    &file,
                    format!("{key}.limits[{j}]"),
                    format!("unknown limit \"{l}\" (defined: {})", known.join(", ")),
                );
            }
        }
        let auth: AuthMode = choice(&file, format!("{key}.auth"), r.auth.as_deref(), p);
        if !r.roles.is_empty() && auth != AuthMode::Required {
            p.add(
                &file,
                format!("{key}.roles"),
                "roles need auth = \"required\"",
            );
        }
        let require_verified_email = r.require_verified_email.unwrap_or(false);
        if require_verified_email && auth != AuthMode::Required {
            p.add(
                &file,
                format!("{key}.require_verified_email"),
                "needs auth = \"required\"",
            );
        }
        if r.roles.iter().any(|role| role.trim().is_empty()) {
            p.add(
                &file,
                format!("{key}.roles"),
                "a role name must not be empty",
            );
        }
        if auth != AuthMode::Public && !verifies_tokens && all_parsed {
            p.add(
                &file,
                format!("{key}.auth"),
                "verifying tokens needs the [auth] section (the keys of the auth core)",
            );
        }
        let max_body = size_setting(
            &file,
            &format!("{key}.max_body"),
            r.max_body.as_deref(),
            http.max_body,
            p,
        );
        use crate::proxy::header_rules::{REQUEST_RESERVED, RESPONSE_RESERVED};
        let request_headers = header_rules(
            &file,
            &format!("{key}.request_headers"),
            r.request_headers.as_ref(),
            REQUEST_RESERVED,
            p,
        );
        let response_headers = header_rules(
            &file,
            &format!("{key}.response_headers"),
            r.response_headers.as_ref(),
            RESPONSE_RESERVED,
            p,
        );
        let accepted = super::accepted_issuers(
            &file,
            &format!("{key}.issuers"),
            r.issuers.as_deref(),
            issuers,
            all_parsed,
            p,
        );
        if r.issuers.is_some() && auth == AuthMode::Public {
            p.add(
                &file,
                format!("{key}.issuers"),
                "a public route reads no token: set auth",
            );
        }
        out.push(RouteSpec {
            name: r.name,
            host,
            path,
            upstream: r.upstream,
            strip_prefix: r.strip_prefix.unwrap_or(false),
            limits: r.limits,
            auth,
            roles: r.roles,
            require_verified_email,
            matrix_params: r.matrix_params.unwrap_or(false),
            max_body,
            issuers: accepted,
            request_headers,
            response_headers,
        });
    }
    out
}
