//! `[forward_auth]`: the decision endpoint's path, who may ask, and its named policies.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;

pub(in crate::config) fn forward_auth_spec(
    file: &str,
    f: ForwardAuthFile,
    verifies_tokens: bool,
    issuers: &[IssuerSpec],
    all_parsed: bool,
    p: &mut Problems,
) -> Option<ForwardAuthSpec> {
    if !verifies_tokens {
        p.add(
            file,
            "forward_auth",
            "needs the [auth] section (the keys tokens are checked with)",
        );
    }
    let path = f.path.unwrap_or_else(|| "/_edge/auth".into());
    let path = path.trim_end_matches('/').to_string();
    // the edge's own namespace is never routed, so a decision path there cannot be shadowed
    // by (or shadow) a service's route
    let segment_ok = path.strip_prefix("/_edge/").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('/')
                .all(|s| safe_name(s) && s != "." && s != "..")
    });
    // the edge's own endpoints are answered after forward auth: one under it would vanish
    let own = [
        crate::observe::health::HEALTH_PATH,
        crate::observe::health::READY_PATH,
        crate::observe::metrics::PATH,
        crate::filters::botfilter::http::ANSWER_PREFIX.trim_end_matches('/'),
    ];
    let clash = own
        .iter()
        .find(|o| path.starts_with(*o) || o.starts_with(&format!("{path}/")));
    if !segment_ok {
        p.add(
            file,
            "forward_auth.path",
            format!("\"{path}\" must be a path under /_edge/ of letters, digits, '-', '_' and '.'"),
        );
    } else if let Some(o) = clash {
        p.add(
            file,
            "forward_auth.path",
            format!("\"{path}\" overlaps the edge's own endpoint {o}"),
        );
    }
    let allow = match &f.allow {
        Some(list) => cidrs(file, "forward_auth.allow", list, p),
        None => ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
    };
    if f.policy.is_empty() {
        p.add(
            file,
            "forward_auth.policy",
            "define at least one [forward_auth.policy.<name>]",
        );
    }
    let mut policies = std::collections::BTreeMap::new();
    for (name, pol) in f.policy {
        let key = format!("forward_auth.policy.{name}");
        if !safe_name(&name) || name == "." || name == ".." {
            p.add(
                file,
                &key,
                "a policy name may only hold letters, digits, '-', '_' and '.'",
            );
        }
        let auth: AuthMode = choice(file, format!("{key}.auth"), Some(&pol.auth), p);
        if auth == AuthMode::Public {
            p.add(
                file,
                format!("{key}.auth"),
                "\"public\" decides nothing: use \"optional\" or \"required\"",
            );
        }
        if !pol.roles.is_empty() && auth != AuthMode::Required {
            p.add(
                file,
                format!("{key}.roles"),
                "roles need auth = \"required\"",
            );
        }
        let require_verified_email = pol.require_verified_email.unwrap_or(false);
        if require_verified_email && auth != AuthMode::Required {
            p.add(
                file,
                format!("{key}.require_verified_email"),
                "needs auth = \"required\"",
            );
        }
        if pol.roles.iter().any(|r| r.trim().is_empty()) {
            p.add(
                file,
                format!("{key}.roles"),
                "a role name must not be empty",
            );
        }
        let issuers = super::accepted_issuers(
            file,
            &format!("{key}.issuers"),
            pol.issuers.as_deref(),
            issuers,
            all_parsed,
            p,
        );
        policies.insert(
            name,
            AccessPolicy {
                auth,
                roles: pol.roles,
                issuers,
                require_verified_email,
            },
        );
    }
    Some(ForwardAuthSpec {
        path,
        allow,
        policies,
    })
}
