//! bulwark-api's HTTP surface. Callers present a bearer token from bulwark-control's token
//! endpoint (audience `bulwark-api`, scopes `workflows:start|read|cancel`); requests are
//! validated and turned into Temporal calls through [`backend::WorkflowBackend`].
#![forbid(unsafe_code)]

pub mod auth;
pub mod backend;
mod error;
mod handlers;
mod metrics;
mod openapi;
pub mod temporal_backend;
pub mod validate;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};

pub use crate::error::ApiError;
pub use crate::metrics::Metrics;
pub use crate::openapi::openapi_document;
use bulwark_serve::headers::{self, Policy};

use crate::{auth::Verifier, backend::WorkflowBackend};

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

pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route(
            "/api/v1/workflows",
            post(handlers::start).get(handlers::list),
        )
        .route("/api/v1/workflows/{id}", get(handlers::describe))
        .route("/api/v1/workflows/{id}/result", get(handlers::result))
        .route("/api/v1/workflows/{id}/cancel", post(handlers::cancel))
        .route("/api/v1/openapi.json", get(handlers::openapi))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), observe));
    headers::apply(routes, Policy::Api).with_state(state)
}

async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    state.metrics.inc(&route, res.status().as_u16());
    res
}
