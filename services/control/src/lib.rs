//! bulwark-control's HTTP surface: the OAuth2 token endpoint (client-credentials grant, in
//! `token`), the JWKS and RFC 8414 metadata, health, readiness and metrics. Logic lives in
//! `bulwark-token-issuer`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod metrics;
mod token;

/// For crates/fuzz-targets only.
#[doc(hidden)]
pub use token::parse_token_request;

use std::{path::PathBuf, sync::Arc};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bulwark_serve::headers::{self, Policy};
use bulwark_token_issuer::TokenIssuer;

use crate::metrics::Metrics;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub issuer: Arc<TokenIssuer>,
    pub certs_dir: PathBuf,
    /// Public base URL (`https://host:port`), used in the metadata document.
    pub base_url: String,
    pub metrics: Arc<Metrics>,
}

/// The largest `Authorization` header the token endpoint reads: Basic credentials of a
/// 63-character id and a 256-byte secret, form-encoded (x3) and base64 (x4/3), fit well.
pub const MAX_AUTHORIZATION_BYTES: usize = 4 * 1024;

/// The largest token request body: a grant type, a scope list and client credentials.
pub const MAX_TOKEN_BODY_BYTES: usize = 8 * 1024;

/// The whole router. `ConnectInfo<SocketAddr>` must be provided by the server.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/oauth/token", token::route(&state))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(8 * 1024));
    headers::apply(routes, Policy::Api).with_state(state)
}

async fn jwks(State(state): State<AppState>) -> Response {
    match tokio::fs::read(state.certs_dir.join("jwks.json")).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/jwk-set+json"),
                (header::CACHE_CONTROL, "public, max-age=30"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "jwks.json unreadable");
            (StatusCode::SERVICE_UNAVAILABLE, "key set unavailable\n").into_response()
        }
    }
}

async fn metadata(State(state): State<AppState>) -> Json<serde_json::Value> {
    let base = &state.base_url;
    Json(serde_json::json!({
        "issuer": state.issuer.settings().issuer,
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": [],
        "scopes_supported": ["temporal:<namespace>:read", "temporal:<namespace>:write", "temporal:system:admin", "workflows:start", "workflows:read", "workflows:cancel"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
    }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let db = sqlx::query("SELECT 1")
        .execute(state.issuer.store().pool())
        .await;
    let jwks = std::fs::metadata(state.certs_dir.join("jwks.json"));
    let kid = state.issuer.key().current().kid().to_owned();
    match (db, jwks) {
        (Ok(_), Ok(_)) => (StatusCode::OK, format!("ready (signing kid {kid})\n")).into_response(),
        (Err(e), _) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: database unreachable\n",
            )
                .into_response()
        }
        (_, Err(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: jwks.json missing\n",
        )
            .into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .set_limiter_keys(state.issuer.limiter_keys().labelled());
    (
        [(header::CONTENT_TYPE, bulwark_serve::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}
