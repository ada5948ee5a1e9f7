//! The route handlers: authorize the caller's scope, validate, call the backend.

use std::time::Duration;

use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    AppState, MAX_BODY,
    backend::{Outcome, StartRequest, Status},
    error::ApiError,
    openapi::openapi_document,
    validate::{self, StartBody},
};

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// The workflow id of a `/workflows/{id}...` path. Authorization comes first in every
/// handler, so an unauthenticated caller learns nothing about which ids are well formed.
fn workflow_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| bad_request(format!("bad path: {}", e.body_text())))?;
    validate::path_id(&id).map_err(bad_request)?;
    Ok(id)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| bad_request(format!("bad query string: {}", e.body_text())))
}

fn new_id() -> String {
    // The clock alone repeats under load (two starts read the same value on a coarse or
    // virtualised clock, seen as a 409 for a caller that never chose an id); the per-process
    // sequence makes every generated id distinct.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("wf-{n:x}-{seq:x}")
}

pub(crate) async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let claims = state.verifier.authorize(&headers, "workflows:start")?;
    let Json(body) = body.map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(_) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request bodies are limited to {MAX_BODY} bytes"),
            )
        }
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!(
                "the body is not a valid start request: {}",
                other.body_text()
            ),
        ),
    })?;
    let new = body
        .into_new(new_id)
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m))?;
    let started = state
        .backend
        .start(StartRequest {
            workflow_type: new.workflow_type.clone(),
            workflow_id: new.workflow_id,
            task_queue: new.task_queue,
            input: new.input,
        })
        .await?;
    tracing::info!(caller = %claims.sub, workflow_type = %new.workflow_type, workflow_id = %started.workflow_id, "workflow started");
    Ok((StatusCode::CREATED, Json(started)).into_response())
}

pub(crate) async fn describe(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    state.verifier.authorize(&headers, "workflows:read")?;
    let id = workflow_id(path)?;
    Ok(Json(state.backend.describe(&id).await?).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ResultQuery {
    timeout: Option<String>,
}

pub(crate) async fn result(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ResultQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    state.verifier.authorize(&headers, "workflows:read")?;
    let id = workflow_id(path)?;
    let q = query(q)?;
    let wait = match q.timeout.as_deref() {
        None => Duration::from_secs(30),
        Some(t) => validate::timeout(t).map_err(bad_request)?,
    }
    .min(state.max_wait);
    Ok(match state.backend.result(&id, wait).await? {
        Outcome::Completed(v) => Json(json!({"workflow_id": id, "status": "completed", "result": v})).into_response(),
        Outcome::Failed { failure_type, message } => {
            Json(json!({"workflow_id": id, "status": "failed", "failure": {"type": failure_type, "message": message}})).into_response()
        }
        Outcome::Other(s) => Json(json!({"workflow_id": id, "status": s})).into_response(),
        Outcome::StillRunning => (StatusCode::ACCEPTED, Json(json!({"workflow_id": id, "status": "running"}))).into_response(),
    })
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    state.verifier.authorize(&headers, "workflows:cancel")?;
    let id = workflow_id(path)?;
    state.backend.cancel(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"workflow_id": id, "status": "cancel_requested"})),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    state.verifier.authorize(&headers, "workflows:read")?;
    let q = query(q)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<Status>().map_err(|_| {
            bad_request(format!(
                "status must be one of {}",
                Status::NAMES.join(", ")
            ))
        })?),
    };
    let limit = validate::limit(q.limit).map_err(bad_request)?;
    let items = state.backend.list(status, limit as usize).await?;
    Ok(Json(json!({"workflows": items})).into_response())
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if !state.verifier.has_keys() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no JWKS loaded\n",
        )
            .into_response();
    }
    match state.backend.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, bulwark_serve::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

pub(crate) async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

/// Unknown paths get the same JSON error shape as every other refusal.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; the routes are listed in /api/v1/openapi.json",
    )
}

/// A known path with another method; axum adds the `Allow` header.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method; see the Allow header",
    )
}
