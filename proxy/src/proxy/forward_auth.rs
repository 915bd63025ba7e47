//! Forward auth: identity decisions for proxies in front of services that are not behind the
//! edge. A caller asks `<path>/<policy>` and describes the original request with
//! `X-Forwarded-Method` and `X-Forwarded-Uri` (nginx `auth_request`, Traefik `forwardAuth`),
//! or asks `<path>/<policy>/<original path>` with the original method (Envoy `ext_authz`'s
//! HTTP service with `path_prefix`). The answer is 200 with the identity headers to copy
//! upstream, or the edge's usual 401/403 JSON.

use crate::config::ForwardAuthSpec;
use crate::proxy::ctx::RequestCtx;
use crate::proxy::error::EdgeError;
use crate::proxy::respond;
use crate::server::generation::Generation;
use bytes::Bytes;
use pingora::proxy::Session;
use pingora::Result;

const METHOD: &str = "x-forwarded-method";
const URI: &str = "x-forwarded-uri";

/// Whether `path` is a forward-auth request of `spec`.
pub fn is_for(spec: &ForwardAuthSpec, path: &str) -> bool {
    path.strip_prefix(spec.path.as_str())
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The policy named in the path, and whether the original path follows it (Envoy's shape).
fn policy_of<'p>(spec: &ForwardAuthSpec, path: &'p str) -> (&'p str, bool) {
    let rest = path
        .strip_prefix(spec.path.as_str())
        .unwrap_or("")
        .trim_start_matches('/');
    match rest.split_once('/') {
        Some((name, _original)) => (name, true),
        None => (rest, false),
    }
}

/// The original request as the caller describes it: method and target.
fn original(session: &Session, envoy_shape: bool) -> Result<(String, String), EdgeError> {
    let req = session.req_header();
    if envoy_shape {
        return Ok((req.method.as_str().to_string(), req.uri.to_string()));
    }
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    match (header(METHOD), header(URI)) {
        (Some(m), Some(u)) if u.starts_with('/') => Ok((m.to_string(), u.to_string())),
        _ => Err(EdgeError::BadRequest(
            "forward auth needs X-Forwarded-Method and X-Forwarded-Uri (an origin-form target)",
        )),
    }
}

/// Answers a forward-auth request (the caller already knows `is_for` holds).
pub async fn answer(
    session: &mut Session,
    ctx: &mut RequestCtx,
    generation: &Generation,
    spec: &ForwardAuthSpec,
) -> Result<()> {
    let peer = super::service::socket_peer(session);
    // like metrics: who may not ask does not learn the endpoint exists
    if !peer.is_some_and(|ip| spec.allow.iter().any(|n| n.contains(&ip))) {
        return respond::error(session, &EdgeError::NoRoute, &ctx.request_id).await;
    }
    // the policy as the calling proxy wrote it: after it may come the client's own path,
    // whose `..` or `%2e%2e` must not reach back into another policy's name
    let raw = ctx.raw_edge_path.take().unwrap_or_default();
    if !is_for(spec, &raw) {
        return respond::error(session, &EdgeError::NoRoute, &ctx.request_id).await;
    }
    let (name, envoy_shape) = policy_of(spec, &raw);
    let Some(policy) = spec.policies.get(name) else {
        tracing::warn!(
            request_id = ctx.request_id.to_str().unwrap_or(""),
            policy = name,
            "forward auth asked for an unknown policy"
        );
        return respond::error(session, &EdgeError::NoRoute, &ctx.request_id).await;
    };
    let (method, target) = match original(session, envoy_shape) {
        Ok(o) => o,
        Err(e) => return respond::error(session, &e, &ctx.request_id).await,
    };
    let Some(identity) = generation.identity.as_ref() else {
        return respond::error(session, &EdgeError::Internal, &ctx.request_id).await;
    };
    let now = auth_core::plumbing::clock::unix_secs();
    let accepts = crate::filters::identity::Accepts::resolve(&policy.issuers, &generation.issuers);
    let decision = identity
        .check_access(
            session.req_header(),
            &crate::filters::identity::Need {
                auth: policy.auth,
                roles: &policy.roles,
                verified_email: policy.require_verified_email,
            },
            &accepts,
            name,
            now,
        )
        .await;
    tracing::debug!(
        request_id = ctx.request_id.to_str().unwrap_or(""),
        policy = name,
        method,
        target,
        allowed = decision.is_ok(),
        "forward auth decision"
    );
    match decision {
        Ok(verified) => {
            ctx.identity = verified.clone();
            respond::full(
                session,
                200,
                "text/plain",
                Bytes::new(),
                &ctx.request_id,
                |h| crate::filters::identity::write_answer(h, verified.as_deref()),
            )
            .await
        }
        Err(e) => respond::error(session, &e, &ctx.request_id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AccessPolicy, AuthMode};

    fn spec() -> ForwardAuthSpec {
        ForwardAuthSpec {
            path: "/_edge/auth".into(),
            allow: vec![],
            policies: [(
                "staff".to_string(),
                AccessPolicy {
                    auth: AuthMode::Required,
                    roles: vec!["admin".into()],
                    issuers: vec!["self".into()],
                    require_verified_email: false,
                },
            )]
            .into(),
        }
    }

    #[test]
    fn paths_name_the_policy_and_the_shape() {
        let s = spec();
        assert!(is_for(&s, "/_edge/auth"));
        assert!(is_for(&s, "/_edge/auth/staff"));
        assert!(!is_for(&s, "/_edge/authx"));
        assert_eq!(policy_of(&s, "/_edge/auth/staff"), ("staff", false));
        assert_eq!(policy_of(&s, "/_edge/auth/staff/api/v1/x"), ("staff", true));
        assert_eq!(policy_of(&s, "/_edge/auth"), ("", false));
    }
}
