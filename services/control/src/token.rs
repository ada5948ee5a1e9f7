//! The OAuth2 token endpoint (client-credentials grant): size limits checked before the body
//! is read, client credentials from Basic or the form, RFC 6749 error bodies.
//!
//! Tokens for Temporal are bound to the client certificate the request came over (the public
//! listener asks for an optional one, verified against `client-trust.pem`): the handler passes
//! the [`PeerCertificate`] to the issuer, which refuses a Temporal-audience request without one.

use std::net::{IpAddr, SocketAddr};

use axum::{
    Extension, Form, Json,
    extract::{ConnectInfo, DefaultBodyLimit, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, Version, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodRouter, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use bulwark_serve::PeerCertificate;
use bulwark_token_issuer::{GrantError, TokenRequest};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::{AppState, MAX_AUTHORIZATION_BYTES, MAX_TOKEN_BODY_BYTES};

/// `POST /oauth/token`. Sizes are checked before the body is read; the body limit also holds
/// for bodies that announce no length (chunked), whose overflow surfaces as a form rejection.
pub(crate) fn route(state: &AppState) -> MethodRouter<AppState> {
    post(token)
        .layer(DefaultBodyLimit::max(MAX_TOKEN_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), token_sizes))
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
    state.metrics.token_error("invalid_request");
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
    cert: Option<Extension<PeerCertificate>>,
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
        Ok(form) => {
            let cert = cert.map(|Extension(c)| c);
            issue(&state, peer.ip(), cert, &headers, form).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(t) => {
            state.metrics.token_issued(t.client_id.as_ref());
            // The bound identity, never the token.
            match &t.bound_identity {
                Some(identity) => {
                    tracing::info!(client = %t.client_id, scope = %t.scope, %identity, "token issued, bound to the client certificate")
                }
                None => tracing::info!(client = %t.client_id, scope = %t.scope, "token issued"),
            }
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
            state.metrics.token_error(e.code());
            if let GrantError::RateLimited(t) = &e {
                state.metrics.token_throttled(t.reason.as_str());
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
    cert: Option<PeerCertificate>,
    headers: &HeaderMap,
    form: TokenForm,
) -> Result<bulwark_token_issuer::IssuedToken, GrantError> {
    let mut req = token_request(headers, form)?;
    if let Some(c) = cert {
        req = req.with_client_certificate(c.0);
    }
    state.issuer.issue(req, peer).await
}

/// The stateless part of a token request: client credentials from Basic or the form (exactly
/// one method) and the issuer's cheap checks.
fn token_request(headers: &HeaderMap, form: TokenForm) -> Result<TokenRequest, GrantError> {
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
    TokenRequest::new(
        form.grant_type.as_deref(),
        form.scope,
        &client_id,
        &client_secret,
    )
}

/// For the fuzz targets (crates/fuzz-targets) only: a token request's `Authorization` header
/// and form body through the handler's own parsing ([`Form`], [`basic_credentials`],
/// [`token_request`]), without an issuer. `Err(None)` is a body the form extractor refuses.
#[doc(hidden)]
pub fn parse_token_request(
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<TokenRequest, Option<GrantError>> {
    use axum::extract::FromRequest;
    use std::future::Future;
    let mut headers = HeaderMap::new();
    if let Some(a) = authorization {
        let value = HeaderValue::from_bytes(a).map_err(|_| None)?;
        headers.insert(header::AUTHORIZATION, value);
    }
    let request = axum::http::Request::builder()
        .method(axum::http::Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body.to_vec()))
        .map_err(|_| None)?;
    let mut extract = std::pin::pin!(Form::<TokenForm>::from_request(request, &()));
    // An in-memory body is complete, so the extractor finishes on its first poll; a pending
    // one is treated as a refused body rather than driving a runtime here.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let form = match extract.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(Form(f))) => f,
        _ => return Err(None),
    };
    token_request(&headers, form).map_err(Some)
}
