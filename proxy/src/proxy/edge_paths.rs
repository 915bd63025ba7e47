//! `/_edge/`: the namespace the edge answers itself, whatever the routes say — health,
//! readiness and metrics (readiness and metrics for `[metrics] allow` only, judged by the
//! socket peer), the bot filter's answers and forward-auth decisions.

use crate::filters::botfilter::http::ANSWER_PREFIX;
use crate::observe::health::{Readiness, HEALTH_PATH, READY_PATH};
use crate::observe::metrics;
use crate::proxy::ctx::RequestCtx;
use crate::proxy::error::EdgeError;
use crate::proxy::respond;
use crate::server::generation::Generation;
use pingora::proxy::Session;
use pingora::Result;

pub const PREFIX: &str = "/_edge/";
const JSON: &str = "application/json";
const PROMETHEUS: &str = "text/plain; version=0.0.4";

/// Answers a request for a path under `PREFIX`.
pub async fn answer(
    session: &mut Session,
    ctx: &mut RequestCtx,
    generation: &Generation,
    readiness: &Readiness,
) -> Result<()> {
    let may_scrape = || {
        let allow = &generation.config.metrics_allow;
        super::service::socket_peer(session).is_some_and(|ip| allow.iter().any(|n| n.contains(&ip)))
    };
    let path = session.req_header().uri.path();
    if let Some(spec) = generation
        .config
        .forward_auth
        .as_ref()
        .filter(|s| super::forward_auth::is_for(s, path))
    {
        return super::forward_auth::answer(session, ctx, generation, spec).await;
    }
    let (status, content_type, body) = match path {
        HEALTH_PATH => {
            let (status, body) = readiness.health();
            (status, JSON, body)
        }
        READY_PATH if may_scrape() => {
            let (status, body) = readiness.ready(auth_core::plumbing::clock::unix_millis());
            (status, JSON, body)
        }
        metrics::PATH if may_scrape() => (200, PROMETHEUS, metrics::render(generation, readiness)),
        p if p.starts_with(ANSWER_PREFIX) => {
            return match &generation.bot {
                Some(bot) => bot.answer(session, ctx).await,
                None => respond::error(session, &EdgeError::NoRoute, &ctx.request_id).await,
            };
        }
        _ => return respond::error(session, &EdgeError::NoRoute, &ctx.request_id).await,
    };
    respond::text(session, status, content_type, body, &ctx.request_id).await
}
