//! Roles and grants (admin only).

use super::error::ErrorBody;
use super::extract::{JsonBody, PathParams};
use crate::error::Error;
use crate::model::{Caller, NewRole};
use crate::repo::roles::Role;
use crate::Auth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;
use uuid::Uuid;

#[utoipa::path(get, path = "/auth/roles", tag = "roles", security(("bearer" = [])),
    responses((status = 200, body = Vec<Role>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all, name = "http.list")]
pub async fn list(State(auth): State<Arc<Auth>>, caller: Caller) -> Result<Json<Vec<Role>>, Error> {
    Ok(Json(auth.list_roles(&caller).await?))
}

#[utoipa::path(post, path = "/auth/roles", tag = "roles", security(("bearer" = [])), request_body = NewRole,
    responses(
        (status = 201, body = Role),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Role exists", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.create")]
pub async fn create(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    JsonBody(req): JsonBody<NewRole>,
) -> Result<(StatusCode, Json<Role>), Error> {
    Ok((
        StatusCode::CREATED,
        Json(auth.create_role(&caller, &req).await?),
    ))
}

#[utoipa::path(delete, path = "/auth/roles/{name}", tag = "roles", security(("bearer" = [])),
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9_-]{1,31}$", description = "Role name")),
    responses(
        (status = 204, description = "Deleted, with every grant of it"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Built-in role", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.delete")]
pub async fn delete(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, Error> {
    auth.delete_role(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn user_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw).map_err(|_| Error::NotFound("user"))
}

/// Grant a role. Takes effect in the user's access tokens at their next refresh.
#[utoipa::path(put, path = "/auth/users/{id}/roles/{name}", tag = "roles", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("name" = String, Path, pattern = "^[a-z][a-z0-9_-]{1,31}$")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, description = "No such user or role", body = ErrorBody)))]
#[tracing::instrument(skip_all, name = "http.grant")]
pub async fn grant(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    PathParams((id, name)): PathParams<(String, String)>,
) -> Result<StatusCode, Error> {
    auth.grant_role(&caller, user_id(&id)?, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/auth/users/{id}/roles/{name}", tag = "roles", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("name" = String, Path, pattern = "^[a-z][a-z0-9_-]{1,31}$")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, name = "http.revoke")]
pub async fn revoke(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    PathParams((id, name)): PathParams<(String, String)>,
) -> Result<StatusCode, Error> {
    auth.revoke_role(&caller, user_id(&id)?, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
