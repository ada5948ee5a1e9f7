//! bulwark-api's HTTP surface. Callers present a bearer token from bulwark-control's token
//! endpoint (audience `bulwark-api`, scopes `workflows:start|read|cancel`); requests are
//! validated and turned into Temporal calls through [`backend::WorkflowBackend`].
#![forbid(unsafe_code)]

pub mod auth;
pub mod backend;
pub mod temporal_backend;
pub mod validate;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, Query, Request, State, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    auth::{Denied, Verifier},
    backend::{BackendError, Outcome, StartRequest, Status, WorkflowBackend},
    validate::StartBody,
};

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct AppState {
    pub backend: Arc<dyn WorkflowBackend>,
    pub verifier: Arc<Verifier>,
    pub metrics: Arc<Metrics>,
    /// Longest a `/result` call may wait.
    pub max_wait: Duration,
}

/// Request counters by route and status class, rendered as Prometheus text.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<BTreeMap<(String, u16), u64>>,
    /// Connection counters of the HTTPS listener.
    listeners: Mutex<Vec<Arc<bulwark_serve::Stats>>>,
}

impl Metrics {
    fn inc(&self, route: &str, status: u16) {
        let mut c = match self.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        *c.entry((route.to_owned(), status)).or_default() += 1;
    }

    /// Include a listener's connection counters in `/metrics`.
    pub fn add_listener(&self, stats: Arc<bulwark_serve::Stats>) {
        match self.listeners.lock() {
            Ok(mut l) => l.push(stats),
            Err(p) => p.into_inner().push(stats),
        }
    }

    fn render(&self) -> String {
        let listeners = match self.listeners.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let c = match self.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let mut out = String::from("# TYPE bulwark_api_requests_total counter\n");
        for ((route, status), v) in c.iter() {
            out.push_str(&format!(
                "bulwark_api_requests_total{{route=\"{route}\",status=\"{status}\"}} {v}\n"
            ));
        }
        if !listeners.is_empty() {
            out.push_str(&bulwark_serve::Stats::render_all(
                listeners.iter().map(|s| &**s),
            ));
        }
        out
    }
}

/// An API error: a status and a message a person can act on; never internal details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Option<serde_json::Value>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Missing => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token from bulwark-control's /oauth/token is required",
            ),
            Denied::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the bearer token is invalid or expired; request a new one",
            ),
            Denied::InsufficientScope(s) => ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this call needs the {s} scope"),
            ),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no workflow with this id",
            ),
            BackendError::AlreadyStarted { run_id } => ApiError {
                extra: Some(json!({"run_id": run_id})),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "already_started",
                    "a workflow with this id is already running; use GET to follow it or choose another id",
                )
            },
            BackendError::Unavailable(m) => {
                tracing::warn!(error = %m, "Temporal call failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Temporal is unavailable; retry later",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "message": self.message});
        if let (Some(extra), Some(obj)) = (self.extra, body.as_object_mut()) {
            if let Some(e) = extra.as_object() {
                obj.extend(e.clone());
            }
        }
        let mut res = (self.status, Json(body)).into_response();
        let challenge = match (self.status, self.code) {
            (StatusCode::UNAUTHORIZED, "invalid_token") => {
                Some("Bearer realm=\"bulwark-api\", error=\"invalid_token\"".to_owned())
            }
            (StatusCode::UNAUTHORIZED, _) => Some("Bearer realm=\"bulwark-api\"".to_owned()),
            (StatusCode::FORBIDDEN, _) => Some(format!(
                "Bearer realm=\"bulwark-api\", error=\"insufficient_scope\", scope=\"{}\"",
                self.message.rsplit(' ').nth(1).unwrap_or("")
            )),
            _ => None,
        };
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        res
    }
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/workflows", post(start).get(list))
        .route("/api/v1/workflows/{id}", get(describe))
        .route("/api/v1/workflows/{id}/result", get(result))
        .route("/api/v1/workflows/{id}/cancel", post(cancel))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let mut res = next.run(req).await;
    state.metrics.inc(&route, res.status().as_u16());
    let h = res.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn new_id() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("wf-{n:x}")
}

async fn start(
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

async fn describe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.verifier.authorize(&headers, "workflows:read")?;
    Ok(Json(state.backend.describe(&id).await?).into_response())
}

#[derive(Deserialize)]
struct ResultQuery {
    timeout: Option<String>,
}

async fn result(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ResultQuery>,
) -> Result<Response, ApiError> {
    state.verifier.authorize(&headers, "workflows:read")?;
    let wait = match q.timeout.as_deref() {
        None => Duration::from_secs(30),
        Some(t) => humantime::parse_duration(t).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "timeout must be a duration such as 30s or 2m",
            )
        })?,
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

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.verifier.authorize(&headers, "workflows:cancel")?;
    state.backend.cancel(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"workflow_id": id, "status": "cancel_requested"})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    state.verifier.authorize(&headers, "workflows:read")?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<Status>().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", "status must be one of running, completed, failed, canceled, terminated, continued_as_new, timed_out")
        })?),
    };
    let items = state
        .backend
        .list(status, q.limit.unwrap_or(100).min(1000))
        .await?;
    Ok(Json(json!({"workflows": items})).into_response())
}

async fn readyz(State(state): State<AppState>) -> Response {
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

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

/// The OpenAPI 3.1 description of this API.
pub fn openapi_document() -> serde_json::Value {
    let err = json!({"$ref": "#/components/schemas/Error"});
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "bulwark-api", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Start and track Temporal workflows. Bearer tokens come from bulwark-control's /oauth/token (client credentials). Inputs carry credential references, never secret values."},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                "CredentialRef": {"type": "object", "required": ["name", "credential_type"], "additionalProperties": false,
                    "properties": {"name": {"type": "string"}, "credential_type": {"type": "string", "examples": ["basic", "api_key", "bearer_token", "oauth_client", "certificate"]}, "store_name": {"type": "string", "default": "default"}}},
                "StartRequest": {"type": "object", "required": ["workflow_type"], "additionalProperties": false,
                    "properties": {"workflow_type": {"enum": validate::WORKFLOW_TYPES}, "workflow_id": {"type": "string"},
                                   "task_queue": {"type": "string", "default": validate::DEFAULT_TASK_QUEUE}, "input": {"type": "object"},
                                   "credentials": {"type": "array", "items": {"$ref": "#/components/schemas/CredentialRef"}, "maxItems": 1}}},
                "Started": {"type": "object", "properties": {"workflow_id": {"type": "string"}, "run_id": {"type": "string"}}},
            }
        },
        "paths": {
            "/api/v1/workflows": {
                "post": {"summary": "Start a workflow (scope workflows:start). An id that is already running gives 409 with its run_id.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StartRequest"}}}},
                    "responses": {"201": {"description": "started", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Started"}}}},
                                  "400": {"description": "malformed JSON", "content": {"application/json": {"schema": err}}},
                                  "401": {"description": "no or invalid token"}, "403": {"description": "missing scope"},
                                  "409": {"description": "already running"}, "413": {"description": "body too large"},
                                  "422": {"description": "invalid request (unknown type, secret in input, bad reference)"}}},
                "get": {"summary": "List workflows (scope workflows:read)",
                    "parameters": [{"name": "status", "in": "query", "schema": {"type": "string"}}, {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "workflows"}}}
            },
            "/api/v1/workflows/{id}": {"get": {"summary": "Describe (scope workflows:read)", "parameters": [id], "responses": {"200": {"description": "status"}, "404": {"description": "unknown id"}}}},
            "/api/v1/workflows/{id}/result": {"get": {"summary": "Wait for the result (scope workflows:read); 202 if still running after the timeout",
                "parameters": [id, {"name": "timeout", "in": "query", "schema": {"type": "string", "default": "30s"}}],
                "responses": {"200": {"description": "finished"}, "202": {"description": "still running"}}}},
            "/api/v1/workflows/{id}/cancel": {"post": {"summary": "Request cancellation (scope workflows:cancel)", "parameters": [id], "responses": {"202": {"description": "cancel requested"}}}},
            "/healthz": {"get": {"security": [], "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"security": [], "responses": {"200": {"description": "Temporal reachable with current credentials"}, "503": {"description": "not ready"}}}},
        }
    })
}
