//! Token verification as a request filter: the route's policy applied, the verified caller
//! recorded for the user-keyed limits, the upstream headers and the access log.

use super::Identity;
use crate::filters::{Flow, RequestFilter};
use crate::proxy::ctx::RequestCtx;
use crate::proxy::respond;
use crate::routing::Route;
use pingora::proxy::Session;
use pingora::Result;

impl RequestFilter for Identity {
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
        match self.check(session.req_header(), route, now).await {
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
