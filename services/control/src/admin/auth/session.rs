//! The session cookie, the [`Session`] extractor (with its CSRF check) and logout.

use std::{collections::HashMap, net::SocketAddr};

use axum::{
    Form,
    extract::{ConnectInfo, FromRequestParts, State},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::sha256;
use crate::admin::{
    AdminError, AdminState,
    audit::{Action, AuditEntry, Outcome},
};

pub const SESSION_COOKIE: &str = "__Host-bulwark_session";
pub const LOGIN_COOKIE: &str = "__Host-bulwark_login";

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(super) fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    let v = format!("{name}={value}; Secure; HttpOnly; SameSite=Strict; Path=/{age}");
    // Names and values here are base64url or empty: always valid header bytes.
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// A logged-in operator. Extracting it refreshes the idle timer; without a valid session
/// the request is redirected to the login page.
#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub csrf: String,
    pub address: String,
    pub(super) id_hash: Vec<u8>,
}

impl Session {
    /// Reject the request unless `form` carries this session's CSRF token.
    pub fn check_csrf(&self, form: &HashMap<String, String>) -> Result<(), AdminError> {
        let Some(presented) = form.get("csrf") else {
            return Err(AdminError::Csrf);
        };
        if bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(AdminError::Csrf)
        }
    }
}

/// Redirect to the login page (the rejection of [`Session`]).
#[derive(Debug)]
pub struct LoginRequired;

impl IntoResponse for LoginRequired {
    fn into_response(self) -> Response {
        let mut res = Redirect::to("/admin/login").into_response();
        res.headers_mut()
            .insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
        res
    }
}

fn peer(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

impl FromRequestParts<AdminState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
            return Err(LoginRequired.into_response());
        };
        let id_hash = sha256(id);
        let idle = state.cfg.session_idle.as_secs_f64();
        let row = sqlx::query(
            "UPDATE admin_sessions SET last_seen = now()
              WHERE id_hash = $1 AND expires_at > now()
                AND last_seen > now() - make_interval(secs => $2)
              RETURNING username, csrf_token",
        )
        .bind(&id_hash)
        .bind(idle)
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| AdminError::from(e).into_response())?;
        let Some(row) = row else {
            return Err(LoginRequired.into_response());
        };
        Ok(Session {
            username: row
                .try_get("username")
                .map_err(|e| AdminError::from(e).into_response())?,
            csrf: row
                .try_get("csrf_token")
                .map_err(|e| AdminError::from(e).into_response())?,
            address: peer(parts),
            id_hash,
        })
    }
}

impl axum::extract::OptionalFromRequestParts<AdminState> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Session as FromRequestParts<AdminState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

pub async fn logout(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
        .bind(&session.id_hash)
        .execute(&state.pool)
        .await?;
    AuditEntry {
        actor: &session.username,
        action: Action::Logout,
        target: "",
        outcome: Outcome::Success,
        detail: "",
        address: &session.address,
    }
    .record(&state.pool)
    .await;
    Ok(LoginRequired.into_response())
}
