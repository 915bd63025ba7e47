//! Token verification as a request filter: the route's policy applied, the verified caller
//! recorded for the user-keyed limits, the upstream headers and the access log.

use super::{Accepts, Identity, Need};
use crate::filters::{Flow, RequestFilter};
use crate::proxy::ctx::RequestCtx;
use crate::proxy::respond;
use crate::routing::Route;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;

/// A route's identity stage: the generation's verifier and the issuers the route accepts.
pub struct IdentityStage {
    pub identity: Arc<Identity>,
    pub accepts: Accepts,
}

impl RequestFilter for IdentityStage {
    fn name(&self) -> &'static str {
        "identity"
    }

    async fn filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
    ) -> Result<Flow> {
        let now = auth_core::plumbing::clock::unix_secs();
        let checked = self
            .identity
            .check_access(
                session.req_header(),
                &Need {
                    auth: route.auth,
                    roles: &route.roles,
                    verified_email: route.require_verified_email,
                },
                &self.accepts,
                &route.name,
                now,
            )
            .await;
        match checked {
            Ok(verified) => {
                ctx.identity = verified;
                Ok(Flow::Continue)
            }
            Err(e) => {
                respond::error(session, &e, &ctx.request_id).await?;
                Ok(Flow::Answered)
            }
        }
    }
}
