//! Middleware applying the database circuit breaker (`db_gate.rs`) to the endpoints that
//! need PostgreSQL: while it is open they answer 503 with `Retry-After` at once; an answer
//! that found the database unreachable opens it.

use crate::db_gate::Change;
use crate::error::Error;
use crate::Auth;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Set on a response by `Error::into_response` when the database was unreachable.
#[derive(Clone, Copy)]
pub struct DatabaseUnreachable;

/// Endpoints that answer without the database: health reports it, the JWKS and the OpenAPI
/// document are in memory.
fn needs_database(path: &str) -> bool {
    !matches!(
        path,
        "/auth/health" | "/auth/.well-known/jwks.json" | "/auth/openapi.json"
    )
}

pub async fn guard(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let gated = needs_database(req.uri().path());
    if gated && auth.db_gate.is_open() {
        return Error::Unavailable(crate::error::Dependency::Database).into_response();
    }
    let response = next.run(req).await;
    if gated && response.extensions().get::<DatabaseUnreachable>().is_some() {
        report_failure(&auth);
    }
    response
}

/// One probe of the database, its result fed to the breaker.
pub(crate) async fn probe(auth: &Auth) -> bool {
    let up = auth.database_up().await;
    if up {
        report_success(auth);
    } else {
        report_failure(auth);
    }
    up
}

fn report_failure(auth: &Auth) {
    if auth.db_gate.failed(crate::plumbing::clock::unix_millis()) == Change::Opened {
        tracing::error!(
            "auth database unreachable: endpoints that need it answer 503 until a probe succeeds"
        );
    }
}

fn report_success(auth: &Auth) {
    if let Change::Closed { down_for } = auth
        .db_gate
        .succeeded(crate::plumbing::clock::unix_millis())
    {
        tracing::info!(down_for = ?down_for, "auth database reachable again");
    }
}
