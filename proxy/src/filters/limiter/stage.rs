//! The limiter as a request filter: a route's policies of one kind (keyed by the client, or
//! by the verified user), or the bot filter's answer limit.

use super::{Limiter, Policy, Subject, Verdict};
use crate::filters::{Flow, RequestFilter};
use crate::proxy::ctx::RequestCtx;
use crate::proxy::error::EdgeError;
use crate::proxy::respond;
use crate::routing::Route;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;

pub struct LimitStage {
    limiter: Arc<Limiter>,
    policies: Box<[Arc<Policy>]>,
    /// What `key = "route"` counts under: the route's name, or the bot filter's answers.
    scope: Box<str>,
    /// `[rate_limit] headers_on_success` of the generation.
    headers_on_success: bool,
}

impl LimitStage {
    pub fn new(
        limiter: Arc<Limiter>,
        policies: Vec<Arc<Policy>>,
        scope: &str,
        headers_on_success: bool,
    ) -> LimitStage {
        LimitStage {
            limiter,
            policies: policies.into_boxed_slice(),
            scope: scope.into(),
            headers_on_success,
        }
    }

    /// Applies the policies; `Answered` after a 429 (or a 503 when Redis is down and a
    /// policy says `on_redis_down = "deny"`).
    pub async fn apply(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        let Some(ip) = ctx.client_net else {
            return Ok(Flow::Continue);
        };
        let subject = Subject {
            ip,
            // anonymous requests on a user-keyed policy count by client network
            user: ctx.identity.as_deref().map(|v| v.claims.sub.as_str()),
            route: &self.scope,
            headers: &session.req_header().headers,
        };
        let verdict = self
            .limiter
            .check(&self.policies, &subject, &mut ctx.key_buf)
            .await;
        match verdict {
            Verdict::Allow(quota) => {
                // a route checks client and user limits apart: keep the tighter quota
                if let Some(q) = quota.filter(|_| self.headers_on_success) {
                    if ctx.quota.as_ref().is_none_or(|t| q.remaining < t.remaining) {
                        ctx.quota = Some(q);
                    }
                }
                Ok(Flow::Continue)
            }
            Verdict::Deny {
                quota,
                retry_after_secs,
            } => {
                let err = EdgeError::RateLimited {
                    retry_after: retry_after_secs,
                };
                respond::error_with(session, &err, &ctx.request_id, |h| quota.write_to(h)).await?;
                Ok(Flow::Answered)
            }
            Verdict::Unavailable => {
                respond::error(session, &EdgeError::LimiterUnavailable, &ctx.request_id).await?;
                Ok(Flow::Answered)
            }
        }
    }
}

impl RequestFilter for LimitStage {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    async fn filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        _route: &Route,
    ) -> Result<Flow> {
        self.apply(session, ctx).await
    }
}
