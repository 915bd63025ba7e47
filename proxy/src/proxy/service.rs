//! The Pingora `ProxyHttp` implementation. It stays thin: each phase hands its work to the
//! module that owns it (request ids, routing, pools, responses, access log).

use crate::observe::access_log;
use crate::observe::health::Readiness;
use crate::proxy::ctx::RequestCtx;
use crate::proxy::error::EdgeError;
use crate::proxy::{canonical_path, client_ip, edge_paths, request_id, respond};
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

/// The proxy service. Per request it loads one config generation and walks the phases; what
/// a phase decides is up to the module that owns it (the route's filter chain, above all).
pub struct Edge {
    /// The current generation and the state shared across generations.
    pub live: Arc<Live>,
    pub readiness: Arc<Readiness>,
    /// Read at start, like the listeners they belong to.
    pub redirects: RedirectPorts,
    /// `[log] access_log`, read at start.
    pub access_log: bool,
    /// `[server] keepalive_timeout` in seconds; None closes after each response.
    pub keepalive: Option<u64>,
}

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
        // Pingora waits without end for the next request on an HTTP/1.1 keep-alive
        // connection; an idle TV connection must not hold its memory forever
        if session.get_keepalive().is_some() {
            session.set_keepalive(self.keepalive);
        }
        let generation = self.live.load_full();
        ctx.header_too_large =
            crate::proxy::message_limits::header_block_size(session.req_header())
                > generation.config.http.max_header_block;
        let peer = socket_peer(session);
        // a plain connection takes its slot with its first request; a TLS one took it at
        // accept (server/connections.rs)
        let tls = |s: &Session| s.digest().is_some_and(|d| d.ssl_digest.is_some());
        if ctx.connection.is_none() && !tls(session) {
            if let Some(peer) = peer {
                let peer = auth_core::client_network::canonical_ip(peer);
                match self.live.shared.connections.admit(peer) {
                    Ok(slot) => ctx.connection = slot,
                    Err(_full) => ctx.connection_refused = true,
                }
            }
        }
        if let Some(peer) = peer {
            let spec = &generation.config.client_ip;
            let headers = &session.req_header().headers;
            // the common case (a client, not a proxy) allocates nothing
            let ip = match client_ip::trusted_chain(peer, headers, spec) {
                Some(chain) => {
                    ctx.keep_forwarded = spec.header == crate::config::ForwardedHeader::Forwarded;
                    ctx.keep_proto_host = spec.proxies_set_proto_host;
                    ctx.forwarded_for = Some(crate::proxy::forwarding::join(&chain));
                    chain[0]
                }
                None => auth_core::client_network::canonical_ip(peer),
            };
            ctx.client_ip = Some(ip);
            ctx.client_net = Some(spec.networks.of(ip));
        }
        ctx.generation = Some(generation);
        if let Some(t) = &self.live.shared.tracing {
            let rid = ctx.request_id.to_str().unwrap_or("");
            ctx.trace = Some(t.start_request(session.req_header(), peer, ctx.client_ip, rid));
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if ctx.connection_refused {
            session.set_keepalive(None);
            return self
                .answer(session, ctx, EdgeError::TooManyConnections)
                .await;
        }
        if ctx.header_too_large {
            session.set_keepalive(None);
            return self.answer(session, ctx, EdgeError::HeaderTooLarge).await;
        }
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
        let raw = session.req_header().uri.path();
        if raw.starts_with(edge_paths::PREFIX) {
            ctx.raw_edge_path = Some(raw.into());
        }
        // every decision below, and the upstream, use the canonical path
        let has_params = match canonical_path::apply(session.req_header_mut()) {
            Ok(has_params) => has_params,
            Err(e) => return self.answer(session, ctx, e).await,
        };
        // held for this phase only: a long response (a stream, a WebSocket) keeps its route,
        // not a whole generation that later reloads replaced
        let Some(generation) = ctx.generation.take() else {
            return self.answer(session, ctx, EdgeError::Internal).await;
        };
        if session
            .req_header()
            .uri
            .path()
            .starts_with(edge_paths::PREFIX)
        {
            // the edge's own namespace: never proxied, whatever the routes say
            edge_paths::answer(session, ctx, &generation, &self.readiness).await?;
            return Ok(true);
        }
        let req = session.req_header();
        let host = match crate::routing::request_host(req) {
            Ok(host) => host,
            Err(e) => return self.answer(session, ctx, e).await,
        };
        let Some(route) = generation.router.find(host, req.uri.path()).cloned() else {
            return self.answer(session, ctx, EdgeError::NoRoute).await;
        };
        drop(generation);
        // known from here on: answers of the filters below count and log under the route
        ctx.route = Some(route.clone());
        if has_params && !route.matrix_params {
            return self.answer(session, ctx, EdgeError::MatrixParams).await;
        }
        match crate::proxy::message_limits::body_limit(session.req_header(), route.max_body) {
            Ok(counter) => ctx.body = counter,
            Err(e) => {
                // the body stays unread: the connection cannot carry another request
                session.set_keepalive(None);
                return self.answer(session, ctx, e).await;
            }
        }
        let tracing = self.live.shared.tracing.as_deref();
        route.filters.run(session, ctx, &route, tracing).await
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()>
    where
        Self::CTX: Send + Sync,
    {
        match (ctx.body.as_mut(), body.as_ref()) {
            // after a 101 the bytes are the upgraded protocol's (WebSocket frames)
            (Some(_), _) if session.was_upgraded() => Ok(()),
            (Some(counter), Some(chunk)) => counter.count(chunk.len()),
            _ => Ok(()),
        }
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
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()>
    where
        Self::CTX: Send + Sync,
    {
        if let Some(route) = ctx.route.as_ref() {
            // the edge's own headers below are reserved names: rules cannot undo them
            route.request_headers.apply_request(upstream)?;
        }
        upstream.insert_header(request_id::HEADER, &ctx.request_id)?;
        if let (Some(t), Some(trace)) = (&self.live.shared.tracing, ctx.trace.as_mut()) {
            t.start_upstream(trace, upstream, ctx.server);
        }
        crate::filters::identity::write_upstream(upstream, ctx.identity.as_deref())?;
        // the client as the edge saw it (socket, or a trusted proxy's X-Forwarded-For);
        // replaces any value the client sent
        if let Some(ip) = ctx.client_ip {
            let mut buf = [0u8; 45];
            let ip = format_ip(ip, &mut buf);
            upstream.insert_header(REAL_IP, ip)?;
            let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
            crate::proxy::forwarding::write_upstream(upstream, ctx, ip, tls)?;
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
        if self.live.shared.draining.is_set() {
            session.set_keepalive(None);
        }
        if let Some(route) = ctx.route.as_ref() {
            route.response_headers.apply_response(response)?;
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
        } else if e.etype() == &crate::proxy::message_limits::BODY_TOO_LARGE {
            Some(EdgeError::BodyTooLarge)
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

    fn persist_connection_context(
        &self,
        _session: &Session,
        ctx: &RequestCtx,
    ) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        // the slot lives as long as the connection: carried to its next request, dropped
        // (and given back) when the connection closes
        let slot = ctx.connection.clone()?;
        Some(Box::new(slot))
    }

    fn on_connection_reuse(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
        previous: Box<dyn std::any::Any + Send + Sync>,
    ) {
        if let Ok(slot) = previous.downcast::<Arc<crate::server::connections::Slot>>() {
            ctx.connection = Some(*slot);
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
            None => self
                .live
                .shared
                .route_metrics
                .unrouted()
                .observe(status, ctx.started.elapsed()),
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
pub fn socket_peer(session: &Session) -> Option<std::net::IpAddr> {
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
