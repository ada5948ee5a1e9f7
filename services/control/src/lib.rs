//! bulwark-control's HTTP surface: the OAuth2 token endpoint (client-credentials grant), the
//! JWKS and RFC 8414 metadata, health, readiness and metrics. Logic lives in `bulwark-oauth`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod metrics;

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
};

use axum::{
    Form, Json, Router,
    extract::{ConnectInfo, DefaultBodyLimit, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use bulwark_oauth::{ClientSecret, GrantError, TokenIssuer, TokenRequest};
use serde::Deserialize;

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

/// The whole router. `ConnectInfo<SocketAddr>` must be provided by the server.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(8 * 1024))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// RFC 6749 section 5.2 error response. Only fixed strings reach the client.
struct OAuthError(GrantError);

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.0 {
            GrantError::InvalidClient => StatusCode::UNAUTHORIZED,
            GrantError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            GrantError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body =
            serde_json::json!({"error": self.0.code(), "error_description": self.0.to_string()});
        let mut res = (status, Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let GrantError::InvalidClient = self.0 {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"bulwark-control\""),
            );
        }
        if let GrantError::RateLimited(d) = self.0 {
            if let Ok(v) = HeaderValue::from_str(&d.as_secs().max(1).to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

#[derive(Deserialize, Default)]
struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl std::fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenForm")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "..."))
            .finish()
    }
}

/// RFC 6749 2.3.1: Basic credentials are form-urlencoded before base64.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, ClientSecret)>, GrantError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = GrantError::InvalidClient;
    let value = value.to_str().map_err(|_| bad.clone())?;
    let Some(b64) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(bad);
    };
    let decoded = STANDARD.decode(b64.trim()).map_err(|_| bad.clone())?;
    let text = String::from_utf8(decoded).map_err(|_| bad.clone())?;
    let (id, secret) = text.split_once(':').ok_or(bad.clone())?;
    let unescape = |s: &str| form_unescape(s).ok_or(bad.clone());
    Ok(Some((
        unescape(id)?,
        ClientSecret::from_presented(&unescape(secret)?),
    )))
}

fn form_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let result = issue(&state, peer.ip(), &headers, form).await;
    match result {
        Ok(t) => {
            state.metrics.inc(
                "bulwark_control_tokens_issued_total",
                format!("{{client=\"{}\"}}", t.client_id),
            );
            tracing::info!(client = %t.client_id, scope = %t.scope, "token issued");
            let body = serde_json::json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "scope": t.scope,
            });
            let mut res = Json(body).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            res
        }
        Err(e) => {
            state.metrics.inc(
                "bulwark_control_token_errors_total",
                format!("{{error=\"{}\"}}", e.code()),
            );
            tracing::info!(error = e.code(), peer = %peer.ip(), "token request refused");
            OAuthError(e).into_response()
        }
    }
}

async fn issue(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Result<bulwark_oauth::IssuedToken, GrantError> {
    let Form(form) = form.map_err(|_| {
        GrantError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded with grant_type=client_credentials",
        )
    })?;
    let basic = basic_credentials(headers)?;
    let (client_id, client_secret) = match (basic, form.client_id, form.client_secret) {
        (Some(_), _, Some(_)) => {
            return Err(GrantError::InvalidRequest(
                "use exactly one client authentication method",
            ));
        }
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(GrantError::InvalidRequest(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            (id, secret)
        }
        (None, Some(id), Some(secret)) => (id, ClientSecret::from_presented(&secret)),
        (None, _, _) => return Err(GrantError::InvalidClient),
    };
    let req = TokenRequest {
        grant_type: form.grant_type,
        scope: form.scope,
        client_id,
        client_secret,
    };
    state.issuer.issue(req, peer).await
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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
