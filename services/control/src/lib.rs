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
    http::{HeaderMap, HeaderValue, StatusCode, Version, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use bulwark_oauth::{GrantError, TokenIssuer, TokenRequest};
use serde::Deserialize;
use zeroize::Zeroizing;

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
    // Sizes are checked before the body is read; the body limit also holds for bodies that
    // announce no length (chunked), whose overflow surfaces as a form rejection.
    let token_route = post(token)
        .layer(DefaultBodyLimit::max(MAX_TOKEN_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), token_sizes));
    Router::new()
        .route("/oauth/token", token_route)
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

/// An RFC 6749 section 5.2 JSON error body with the no-store headers.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": code, "error_description": description});
    let mut res = (status, Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

const BODY_TOO_LARGE: &str = "the request body is too large";

/// Refuse an oversized `Authorization` header (431) or announced body (413) before the
/// handler reads anything.
async fn token_sizes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let auth_len = req
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|v| v.len())
        .sum::<usize>();
    if auth_len > MAX_AUTHORIZATION_BYTES {
        return too_large(
            &state,
            req.version(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the Authorization header is too large",
        );
    }
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_TOKEN_BODY_BYTES as u64) {
        return too_large(
            &state,
            req.version(),
            StatusCode::PAYLOAD_TOO_LARGE,
            BODY_TOO_LARGE,
        );
    }
    next.run(req).await
}

fn too_large(
    state: &AppState,
    version: Version,
    status: StatusCode,
    description: &str,
) -> Response {
    state.metrics.inc(
        "bulwark_control_token_errors_total",
        "{error=\"invalid_request\"}".to_owned(),
    );
    tracing::debug!(status = status.as_u16(), "token request refused: too large");
    let mut res = oauth_error(status, "invalid_request", description);
    // The rest of an oversized body is not worth reading: close an HTTP/1 connection after
    // this (HTTP/2 has no such header; the stream is reset instead).
    if version < Version::HTTP_2 {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
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
        let mut res = oauth_error(status, self.0.code(), &self.0.to_string());
        let h = res.headers_mut();
        if let GrantError::InvalidClient = self.0 {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"bulwark-control\""),
            );
        }
        if let GrantError::RateLimited(t) = self.0 {
            h.insert(header::RETRY_AFTER, HeaderValue::from(t.retry_after_secs()));
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

type Credentials = (String, Zeroizing<String>);

/// RFC 6749 2.3.1: Basic credentials are form-urlencoded before base64. The header's size
/// was bounded by [`token_sizes`].
fn basic_credentials(headers: &HeaderMap) -> Result<Option<Credentials>, GrantError> {
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
    let text = Zeroizing::new(String::from_utf8(decoded).map_err(|_| bad.clone())?);
    let (id, secret) = text.split_once(':').ok_or(bad.clone())?;
    let unescape = |s: &str| form_unescape(s).ok_or(bad.clone());
    Ok(Some((unescape(id)?, Zeroizing::new(unescape(secret)?))))
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
    version: Version,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => Ok(f),
        // A body without a Content-Length that ran past the limit.
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large(
                &state,
                version,
                StatusCode::PAYLOAD_TOO_LARGE,
                BODY_TOO_LARGE,
            );
        }
        Err(_) => Err(GrantError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded with grant_type=client_credentials",
        )),
    };
    let result = match form {
        Ok(form) => issue(&state, peer.ip(), &headers, form).await,
        Err(e) => Err(e),
    };
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
            if let GrantError::RateLimited(t) = &e {
                state.metrics.inc(
                    "bulwark_control_token_throttled_total",
                    format!("{{reason=\"{}\"}}", t.reason.as_str()),
                );
            }
            // Debug only: refusals before authentication are as many as a caller sends, and
            // each would otherwise be a log line. Failed authentications, which the failure
            // budgets bound, are logged by the issuer; the counters above count everything.
            tracing::debug!(error = e.code(), peer = %peer.ip(), "token request refused");
            OAuthError(e).into_response()
        }
    }
}

async fn issue(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    form: TokenForm,
) -> Result<bulwark_oauth::IssuedToken, GrantError> {
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
        (None, Some(id), Some(secret)) => (id, Zeroizing::new(secret)),
        (None, _, _) => return Err(GrantError::InvalidClient),
    };
    let req = TokenRequest::new(
        form.grant_type.as_deref(),
        form.scope,
        &client_id,
        &client_secret,
    )?;
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
    use std::fmt::Write;
    let mut text = state.metrics.render();
    let _ = writeln!(text, "# TYPE bulwark_control_token_limiter_keys gauge");
    for (limiter, n) in state.issuer.limiter_keys().labelled() {
        let _ = writeln!(
            text,
            "bulwark_control_token_limiter_keys{{limiter=\"{limiter}\"}} {n}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
