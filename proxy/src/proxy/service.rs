//! The Pingora `ProxyHttp` implementation. It stays thin: each phase hands its work to the
//! module that owns it (request ids, routing, pools, responses, access log).

use crate::filters::botfilter;
use crate::filters::limiter::{Limiter, Subject, Verdict};
use crate::observe::{access_log, health as readiness, metrics};
use crate::proxy::ctx::RequestCtx;
use crate::proxy::error::EdgeError;
use crate::proxy::{canonical_path, client_ip, request_id, respond};
use crate::server::drain::Draining;
use crate::server::reload::Live;
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use std::sync::Arc;

/// Plain listeners that answer with a redirect to HTTPS, by local port.
pub type RedirectPorts = Vec<(u16, u16)>;

pub struct Edge {
    pub live: Arc<Live>,
    pub redirects: RedirectPorts,
    pub access_log: bool,
    pub draining: Draining,
    pub limiter: Arc<Limiter>,
    /// Token verification; present when the conf has `[auth]`.
    pub identity: Option<Arc<crate::filters::identity::Identity>>,
    pub readiness: Arc<crate::observe::health::Readiness>,
    /// The Smart TV bot filter; present when the conf has `[bot_filter]` at start.
    pub bot: Option<Arc<crate::filters::botfilter::BotFilter>>,
    /// OpenTelemetry; present when the conf has `[tracing]` at start.
    pub tracing: Option<Arc<crate::observe::traces::Tracing>>,
}

/// Paths the edge answers itself.
const EDGE_PREFIX: &str = "/_edge/";
const JSON: &str = "application/json";
const PROMETHEUS: &str = "text/plain; version=0.0.4";

const NO_HEALTHY_UPSTREAM: ErrorType = ErrorType::Custom("NoHealthyUpstream");

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    fn init_downstream_modules(&self, _modules: &mut HttpModules) {
        // Pingora's default adds a (disabled) compression module whose context is built and
        // whose filters run on every request; the edge does not compress, so add nothing.
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.request_id = request_id::from_incoming(session.get_header(request_id::HEADER));
        // before anything reads them, on every route: only the edge sets identity headers
        crate::filters::identity::strip_spoofed(session.req_header_mut());
        let peer = socket_peer(session);
        if let Some(peer) = peer {
            let runtime = self.live.load();
            let spec = &runtime.config.client_ip;
            let ip = client_ip::resolve(peer, &session.req_header().headers, spec);
            ctx.client_ip = Some(ip);
            ctx.client_net = Some(spec.networks.of(ip));
        }
        if let Some(t) = &self.tracing {
            let rid = ctx.request_id.to_str().unwrap_or("");
            ctx.trace = Some(t.start_request(session.req_header(), peer, ctx.client_ip, rid));
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if let Some(https_port) = self.redirect_port(session) {
            return match crate::proxy::redirect::https_location(session.req_header(), https_port) {
                Some(location) => respond::redirect(session, &location, &ctx.request_id)
                    .await
                    .map(|_| true),
                None => {
                    self.answer(session, ctx, EdgeError::BadRequest("missing Host header"))
                        .await
                }
            };
        }
        // every decision below, and the upstream, use the canonical path
        let has_params = match canonical_path::apply(session.req_header_mut()) {
            Ok(has_params) => has_params,
            Err(e) => return self.answer(session, ctx, e).await,
        };
        let path = session.req_header().uri.path();
        if path.starts_with(EDGE_PREFIX) {
            // the edge's own namespace: never proxied, whatever the routes say
            let (status, content_type, body) = match path {
                readiness::HEALTH_PATH => {
                    let (status, body) = self.readiness.health();
                    (status, JSON, body)
                }
                readiness::READY_PATH if self.may_scrape(session) => {
                    let (status, body) =
                        self.readiness.ready(crate::filters::identity::now_millis());
                    (status, JSON, body)
                }
                metrics::PATH if self.may_scrape(session) => (
                    200,
                    PROMETHEUS,
                    metrics::render(&self.limiter, self.bot.as_deref(), &self.readiness),
                ),
                p if p.starts_with(botfilter::http::ANSWER_PREFIX) && self.bot.is_some() => {
                    self.answer_challenge(session, ctx).await?;
                    return Ok(true);
                }
                _ => return self.answer(session, ctx, EdgeError::NoRoute).await,
            };
            respond::text(session, status, content_type, body, &ctx.request_id).await?;
            return Ok(true);
        }
        let req = session.req_header();
        let host = match crate::routing::request_host(req) {
            Ok(host) => host,
            Err(e) => return self.answer(session, ctx, e).await,
        };
        let runtime = self.live.load_full();
        let Some(route) = runtime.router.find(host, req.uri.path()).cloned() else {
            return self.answer(session, ctx, EdgeError::NoRoute).await;
        };
        // known from here on: answers of the filters below count and log under the route
        ctx.route = Some(route.clone());
        if has_params && !route.matrix_params {
            return self.answer(session, ctx, EdgeError::MatrixParams).await;
        }
        // Cheapest refusals first: limits keyed by the client before the bot filter's
        // questions and before any signature is checked, so a flood of junk tokens or TV
        // requests is refused by its limit; limits keyed by the user once the token is known.
        if !route.client_limits.is_empty() {
            let _span = self.span(ctx, "rate_limit");
            if self
                .rate_limit(session, ctx, &route.client_limits, &route.name)
                .await?
            {
                return Ok(true);
            }
        }
        if let (Some(bot), Some(rules), Some(spec)) =
            (&self.bot, &runtime.bot_rules, &runtime.config.bot_filter)
        {
            let _span = self.span(ctx, "bot_filter");
            if botfilter::http::guard(bot, rules, spec, session, ctx).await? {
                return Ok(true);
            }
        }
        if route.auth != crate::config::AuthMode::Public {
            let _span = self.span(ctx, "identity");
            let checked = match &self.identity {
                Some(identity) => {
                    identity
                        .check(session.req_header(), &route, now_secs())
                        .await
                }
                None => Err(EdgeError::Internal),
            };
            match checked {
                Ok(claims) => ctx.identity = claims,
                Err(e) => return self.answer(session, ctx, e).await,
            }
        }
        if !route.user_limits.is_empty() {
            let _span = self.span(ctx, "rate_limit");
            if self
                .rate_limit(session, ctx, &route.user_limits, &route.name)
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(route) = ctx.route.as_ref() else {
            return Error::e_explain(ErrorType::InternalError, "no route in upstream_peer");
        };
        let mut key_buf = [0u8; 16];
        let user = ctx.identity.as_deref().map(|v| v.claims.sub.as_str());
        let key = crate::routing::balance_key::extract(
            &route.pool.spec.balance,
            session,
            ctx.client_ip,
            user,
            &mut key_buf,
        );
        let Some(backend) = route.pool.select(key, &ctx.tried) else {
            return Error::e_explain(
                NO_HEALTHY_UPSTREAM,
                format!("upstream {}", route.pool.spec.name),
            );
        };
        ctx.server = backend.addr.as_inet().copied();
        Ok(route.pool.peer(&backend))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let Some(route) = ctx.route.as_ref() else {
            return e;
        };
        if let Some(server) = ctx.server {
            ctx.tried.push(server);
        }
        let retry = ctx.tried.len() <= route.pool.spec.retries
            && ctx.tried.len() < route.pool.spec.servers.len();
        tracing::warn!(
            request_id = ctx.request_id.to_str().unwrap_or(""),
            upstream = %route.pool.spec.name,
            server = ctx.server.map(tracing::field::display),
            error = e.etype().as_str(),
            retry,
            "upstream connect failed"
        );
        e.set_retry(retry);
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()>
    where
        Self::CTX: Send + Sync,
    {
        upstream.insert_header(request_id::HEADER, &ctx.request_id)?;
        if let (Some(t), Some(trace)) = (&self.tracing, ctx.trace.as_mut()) {
            t.start_upstream(trace, upstream, ctx.server);
        }
        crate::filters::identity::write_upstream(upstream, ctx.identity.as_deref())?;
        // the client as the edge saw it (socket, or a trusted proxy's X-Forwarded-For);
        // replaces any value the client sent
        if let Some(ip) = ctx.client_ip {
            let mut buf = [0u8; 45];
            upstream.insert_header(REAL_IP, format_ip(ip, &mut buf))?;
        } else {
            upstream.remove_header(REAL_IP);
        }
        if let Some(route) = ctx.route.as_ref().filter(|r| r.strip_prefix) {
            let path = route.upstream_path(upstream.uri.path());
            let uri = match upstream.uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path.to_string(),
            };
            let uri = uri.parse().map_err(|_| {
                Error::explain(ErrorType::InternalError, "stripped path is not a URI")
            })?;
            upstream.set_uri(uri);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()>
    where
        Self::CTX: Send + Sync,
    {
        if self.draining.is_set() {
            session.set_keepalive(None);
        }
        if let Some(quota) = &ctx.quota {
            quota.write_to(response)?;
        }
        response.insert_header(request_id::HEADER, &ctx.request_id)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy
    where
        Self::CTX: Send + Sync,
    {
        let err = if e.etype() == &NO_HEALTHY_UPSTREAM {
            Some(EdgeError::NoHealthyUpstream)
        } else {
            EdgeError::from_proxy_error(e)
        };
        let error_code = err.as_ref().map_or(0, EdgeError::status);
        if let (Some(route), Some(kind)) =
            (&ctx.route, err.as_ref().and_then(EdgeError::upstream_kind))
        {
            route.stats.upstream_error(kind);
        }
        tracing::error!(
            request_id = ctx.request_id.to_str().unwrap_or(""),
            route = ctx.route.as_ref().map(|r| r.name.as_str()),
            server = ctx.server.map(tracing::field::display),
            status = error_code,
            error = %e,
            trace_id = ctx.trace.as_ref().and_then(|t| t.trace_id()),
            "request failed"
        );
        // A response already started cannot be replaced; Pingora closes the connection.
        if let Some(err) = err.filter(|_| session.response_written().is_none()) {
            if let Err(write_err) = respond::error(session, &err, &ctx.request_id).await {
                tracing::debug!(error = %write_err, "could not send the error response");
            }
        }
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        // fail_to_proxy logs the same failure with the request id
        true
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx)
    where
        Self::CTX: Send + Sync,
    {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        match &ctx.route {
            Some(route) => route.stats.observe(status, ctx.started.elapsed()),
            None => {
                crate::observe::request_metrics::unrouted().observe(status, ctx.started.elapsed())
            }
        }
        if self.access_log {
            let trace_id = ctx.trace.as_ref().and_then(|t| t.trace_id());
            access_log::write(session, ctx, e, trace_id.as_deref());
        }
        if let Some(trace) = ctx.trace.as_mut() {
            let route = ctx.route.as_ref().map(|r| r.name.as_str());
            crate::observe::traces::Tracing::finish(trace, route, status, e.map(|e| e.to_string()));
        }
    }
}

impl Edge {
    /// Applies rate limits (a route's, or the answer limit of the bot filter); true when the
    /// request was answered (429 or 503).
    async fn rate_limit(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        policies: &[Arc<crate::filters::limiter::Policy>],
        route_name: &str,
    ) -> Result<bool> {
        let Some(ip) = ctx.client_net else {
            return Ok(false);
        };
        let headers_on_success = self.live.load().config.rate_limit.headers_on_success;
        let mut key = String::with_capacity(64);
        let subject = Subject {
            ip,
            // anonymous requests on a user-keyed policy count by client network
            user: ctx.identity.as_deref().map(|v| v.claims.sub.as_str()),
            route: route_name,
            headers: &session.req_header().headers,
        };
        match self.limiter.check(policies, &subject, &mut key).await {
            Verdict::Allow(quota) => {
                // a route checks client and user limits apart: keep the tighter quota
                if let Some(q) = quota.filter(|_| headers_on_success) {
                    if ctx.quota.as_ref().is_none_or(|t| q.remaining < t.remaining) {
                        ctx.quota = Some(q);
                    }
                }
                Ok(false)
            }
            Verdict::Deny {
                quota,
                retry_after_secs,
            } => {
                let err = EdgeError::RateLimited {
                    retry_after: retry_after_secs,
                };
                respond::error_with(session, &err, &ctx.request_id, |h| quota.write_to(h)).await?;
                Ok(true)
            }
            Verdict::Unavailable => {
                self.answer(session, ctx, EdgeError::LimiterUnavailable)
                    .await
            }
        }
    }

    /// A child span of the request for one phase; ended when dropped.
    fn span(&self, ctx: &RequestCtx, name: &'static str) -> Option<crate::observe::traces::Span> {
        let t = self.tracing.as_ref()?;
        t.child(
            ctx.trace.as_ref()?,
            name,
            opentelemetry::trace::SpanKind::Internal,
        )
    }

    /// `POST /_edge/challenge/{id}` with the current `[bot_filter]` settings, behind its
    /// answer limit.
    async fn answer_challenge(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let runtime = self.live.load_full();
        if let Some(policy) = &runtime.bot_answer_policy {
            if self
                .rate_limit(
                    session,
                    ctx,
                    std::slice::from_ref(policy),
                    "bot-filter-answer",
                )
                .await?
            {
                return Ok(());
            }
        }
        match (&self.bot, &runtime.config.bot_filter) {
            (Some(bot), Some(spec)) => botfilter::http::answer(bot, spec, session, ctx).await,
            _ => respond::error(session, &EdgeError::NoRoute, &ctx.request_id).await,
        }
    }

    /// Metrics and the readiness report are for the operators' scrapers and the site's own
    /// services only; anyone else gets the usual 404. Decided on
    /// the socket peer, never on forwarded headers, which a client behind a proxy controls.
    fn may_scrape(&self, session: &Session) -> bool {
        let allow = &self.live.load().config.metrics_allow;
        socket_peer(session).is_some_and(|ip| allow.iter().any(|net| net.contains(&ip)))
    }

    async fn answer(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        err: EdgeError,
    ) -> Result<bool> {
        respond::error(session, &err, &ctx.request_id).await?;
        Ok(true)
    }

    fn redirect_port(&self, session: &Session) -> Option<u16> {
        if self.redirects.is_empty() {
            return None;
        }
        let local = session.server_addr()?.as_inet()?.port();
        self.redirects
            .iter()
            .find(|(port, _)| *port == local)
            .map(|(_, https)| *https)
    }
}

const REAL_IP: &str = "x-real-ip";

/// The address of the TCP peer (not what forwarded headers claim).
fn socket_peer(session: &Session) -> Option<std::net::IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// Formats an IP into a stack buffer: no allocation on the request path.
fn format_ip(ip: std::net::IpAddr, buf: &mut [u8; 45]) -> &str {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "{ip}");
    let len = cursor.position() as usize;
    std::str::from_utf8(&buf[..len]).unwrap_or("")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
