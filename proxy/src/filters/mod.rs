//! Request filters: the decisions a routed request goes through before it is proxied.
//!
//! Each config generation compiles one `Chain` per route holding exactly the stages that
//! route needs, each with everything it reads (policies, rules, settings, the shared state
//! it counts in). The proxy walks the chain and knows nothing of what a stage does; a reload
//! that changes a filter's settings builds new chains, and requests in flight finish with
//! the chain they started with.
//!
//! The order is fixed by cost, cheapest refusal first: limits keyed by the client, then the
//! bot filter's questions, then token verification, then limits keyed by the verified user.
//! A flood of junk tokens or TV requests is refused by its limit before anything else runs.

pub mod botfilter;
pub mod identity;
pub mod limiter;

use crate::config::{AuthMode, RouteSpec};
use crate::observe::traces::Tracing;
use crate::proxy::ctx::RequestCtx;
use crate::routing::Route;
use limiter::{LimitStage, Limiter, Policy};
use pingora::proxy::Session;
use pingora::Result;
use std::future::Future;
use std::sync::Arc;

/// What a filter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// On to the next stage, then the upstream.
    Continue,
    /// The filter wrote the response (a refusal, a question): the request ends here.
    Answered,
}

/// One decision on a routed request. A filter may read and answer the session and record what
/// it learnt in the context (the verified identity, the quota for the response headers).
pub trait RequestFilter: Send + Sync {
    /// The name of the phase in traces.
    fn name(&self) -> &'static str;

    fn filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
    ) -> impl Future<Output = Result<Flow>> + Send;
}

/// The filters a chain can hold. An enum rather than trait objects: dispatch is a `match`,
/// and no future is boxed per stage per request.
pub enum Stage {
    Limits(LimitStage),
    Bot(Arc<botfilter::BotStage>),
    Identity(identity::IdentityStage),
}

impl RequestFilter for Stage {
    fn name(&self) -> &'static str {
        match self {
            Stage::Limits(s) => s.name(),
            Stage::Bot(s) => s.name(),
            Stage::Identity(s) => s.name(),
        }
    }

    async fn filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
    ) -> Result<Flow> {
        match self {
            Stage::Limits(s) => s.filter(session, ctx, route).await,
            Stage::Bot(s) => s.filter(session, ctx, route).await,
            Stage::Identity(s) => s.filter(session, ctx, route).await,
        }
    }
}

/// What a generation hands to every route's chain.
pub struct Kit<'a> {
    pub limiter: &'a Arc<Limiter>,
    /// `[rate_limit] headers_on_success`.
    pub headers_on_success: bool,
    pub bot: Option<&'a Arc<botfilter::BotStage>>,
    pub identity: Option<&'a Arc<identity::Identity>>,
    /// The generation's external issuers, by name.
    pub issuers: &'a std::collections::HashMap<String, Arc<identity::external::External>>,
    /// Where each route's counters live.
    pub metrics: &'a crate::observe::request_metrics::RouteMetrics,
}

/// A route's filters, in order.
#[derive(Default)]
pub struct Chain {
    stages: Box<[Stage]>,
}

impl Chain {
    /// The stages `spec` needs; `policies` are its `limits`, compiled for this generation.
    pub fn for_route(
        spec: &RouteSpec,
        policies: Vec<Arc<Policy>>,
        kit: &Kit,
    ) -> Result<Chain, String> {
        let (user, client): (Vec<_>, Vec<_>) = policies
            .into_iter()
            .partition(|p| p.key == crate::config::LimitKey::User);
        let limits = |policies: Vec<Arc<Policy>>| {
            Stage::Limits(LimitStage::new(
                kit.limiter.clone(),
                policies,
                &spec.name,
                kit.headers_on_success,
            ))
        };
        let mut stages = Vec::with_capacity(4);
        if !client.is_empty() {
            stages.push(limits(client));
        }
        if let Some(bot) = kit.bot {
            stages.push(Stage::Bot(bot.clone()));
        }
        if spec.auth != AuthMode::Public {
            // validation refuses such a route without [auth]; refusing to build keeps it so
            let identity = kit.identity.ok_or_else(|| {
                format!("route {}: auth = {:?} needs [auth]", spec.name, spec.auth)
            })?;
            stages.push(Stage::Identity(identity::IdentityStage {
                identity: identity.clone(),
                accepts: identity::Accepts::resolve(&spec.issuers, kit.issuers),
            }));
        }
        if !user.is_empty() {
            stages.push(limits(user));
        }
        Ok(Chain {
            stages: stages.into_boxed_slice(),
        })
    }

    /// Runs the stages in order; true when one of them answered the request.
    pub async fn run(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
        tracing: Option<&Tracing>,
    ) -> Result<bool> {
        for stage in self.stages.iter() {
            let _span = tracing.and_then(|t| t.phase(ctx, stage.name()));
            if stage.filter(session, ctx, route).await? == Flow::Answered {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The names of the stages, in order (for tests and the reload log).
    #[cfg(test)]
    pub fn names(&self) -> Vec<&'static str> {
        self.stages.iter().map(RequestFilter::name).collect()
    }
}
