//! The API's error responses: JSON `{error, message}` and, for 401/403, the RFC 6750
//! `WWW-Authenticate` challenge.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{auth::Denied, backend::BackendError};

/// Seconds a client should wait after a 503 (Temporal restarts in about this long).
const RETRY_AFTER_SECS: &str = "5";
/// Seconds after a 429: Temporal's rate limiters refill every second.
const RATE_LIMITED_RETRY_AFTER_SECS: &str = "1";

/// An API error: a status and a message a person can act on; never internal details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Option<serde_json::Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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
            Denied::NotYetValid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the bearer token is not valid yet: it was issued in this service's future, beyond the allowed clock skew; check that the clocks of bulwark-control and bulwark-api are synchronised (NTP)",
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
            BackendError::Invalid(m) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!(
                    "Temporal refused the request: {}",
                    m.chars().take(300).collect::<String>()
                ),
            ),
            BackendError::RateLimited => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Temporal is rate limiting this namespace; retry after the Retry-After seconds, or call less often",
            ),
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
        // Temporal (or its database) is down: tell clients when to come back (RFC 9110
        // 10.2.3) rather than leave them to hammer a recovering backend.
        let retry_after = match self.status {
            StatusCode::SERVICE_UNAVAILABLE => Some(RETRY_AFTER_SECS),
            StatusCode::TOO_MANY_REQUESTS => Some(RATE_LIMITED_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        res
    }
}
