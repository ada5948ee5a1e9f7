//! Accounts, login, server-side sessions, CSRF tokens and login throttling.
//!
//! - Passwords: argon2id (PHC string). Unknown users are checked against a dummy hash so the
//!   response time does not reveal which accounts exist.
//! - Sessions: a random 256-bit id in the `__Host-bulwark_session` cookie; the database keeps
//!   only its SHA-256, with an idle and an absolute expiry. Login always issues a new id.
//! - CSRF: every session has a synchronizer token that each form carries. The login form,
//!   which has no session yet, uses a signed double-submit token: a random nonce in a
//!   `__Host-` cookie and its HMAC (key held in memory) in the form.
//! - Throttling: failed logins lock the account after `lockout_threshold` attempts in a row,
//!   and each address may fail only `address_limit` times per `address_window`.

use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    sync::{Mutex, OnceLock},
    time::Instant,
};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use axum::{
    Form,
    extract::{ConnectInfo, FromRequestParts, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ring::rand::SecureRandom;
use sha2::Digest;
use sqlx::{PgPool, Row};
use subtle::ConstantTimeEq;

use super::{AdminError, AdminState, audit, render};

pub const SESSION_COOKIE: &str = "__Host-bulwark_session";
pub const LOGIN_COOKIE: &str = "__Host-bulwark_login";

/// Generic failure message: never says whether the user exists or is locked.
const LOGIN_FAILED: &str = "Invalid username or password, or the account is temporarily locked.";

/// 32 random bytes, base64url.
pub(crate) fn random_token() -> Result<String, AdminError> {
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| AdminError::Internal("random source failed".into()))?;
    Ok(B64.encode(b))
}

fn sha256(s: &str) -> Vec<u8> {
    sha2::Sha256::digest(s.as_bytes()).to_vec()
}

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, AdminError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Internal(format!("argon2: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("bulwark-dummy-password").unwrap_or_default())
}

/// Create the admin account with `password` unless an account of that name exists.
/// Returns whether it was created. An existing password is never overwritten.
pub async fn ensure_admin(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> Result<bool, AdminError> {
    if password.chars().count() < 12 {
        return Err(AdminError::BadRequest(
            "the admin password must have at least 12 characters".into(),
        ));
    }
    let pw = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))??;
    let n = sqlx::query(
        "INSERT INTO admin_users (username, password_hash) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING",
    )
    .bind(username)
    .bind(hash)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Failed logins per address in a sliding window (in memory; per process).
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Throttle {
    fn blocked(&self, ip: IpAddr, limit: u32, window: std::time::Duration) -> bool {
        let mut map = match self.failures.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let Some(q) = map.get_mut(&ip) else {
            return false;
        };
        while q.front().is_some_and(|t| t.elapsed() > window) {
            q.pop_front();
        }
        q.len() >= limit as usize
    }

    fn record_failure(&self, ip: IpAddr) {
        let mut map = match self.failures.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() > 10_000 {
            // Bound memory under a spray of addresses: drop the oldest knowledge.
            map.clear();
        }
        map.entry(ip).or_default().push_back(Instant::now());
    }
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
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
    id_hash: Vec<u8>,
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

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
    username: String,
}

fn login_csrf(state: &AdminState, nonce: &str) -> String {
    B64.encode(ring::hmac::sign(&state.login_key, nonce.as_bytes()).as_ref())
}

async fn login_page(
    state: &AdminState,
    status: StatusCode,
    error: Option<String>,
    username: String,
) -> Result<Response, AdminError> {
    let nonce = random_token()?;
    let page = LoginPage {
        csrf: login_csrf(state, &nonce),
        error,
        username,
    };
    let mut res = render(&page)?;
    *res.status_mut() = status;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &nonce, Some(3600)),
    );
    Ok(res)
}

pub async fn login_form(
    State(state): State<AdminState>,
    session: Option<Session>,
) -> Result<Response, AdminError> {
    if session.is_some() {
        return Ok(Redirect::to("/admin/").into_response());
    }
    login_page(&state, StatusCode::OK, None, String::new()).await
}

pub async fn login(
    State(state): State<AdminState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    // CSRF first: the nonce cookie and the form field must belong together.
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let presented = form
        .get("csrf")
        .and_then(|c| B64.decode(c).ok())
        .unwrap_or_default();
    if nonce.is_empty()
        || ring::hmac::verify(&state.login_key, nonce.as_bytes(), &presented).is_err()
    {
        return Err(AdminError::Csrf);
    }
    let ip = addr.ip();
    let address = ip.to_string();
    let username: String = form
        .get("username")
        .map(|u| u.trim().chars().take(64).collect())
        .unwrap_or_default();
    let password = zeroize::Zeroizing::new(form.get("password").cloned().unwrap_or_default());

    if state
        .throttle
        .blocked(ip, state.cfg.address_limit, state.cfg.address_window)
    {
        tracing::warn!(address = %address, "admin login throttled for this address");
        audit::record(
            &state.pool,
            &username,
            "login",
            "",
            audit::Outcome::Failure,
            "throttled: too many failures from this address",
            &address,
        )
        .await;
        return login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins from this address; try again later.".into()),
            username,
        )
        .await;
    }

    let row = sqlx::query(
        "SELECT password_hash, locked_until > now() AS locked FROM admin_users WHERE username = $1",
    )
    .bind(&username)
    .fetch_optional(&state.pool)
    .await?;
    let (phc, locked) = match &row {
        Some(r) => (
            r.try_get::<String, _>("password_hash")?,
            r.try_get::<Option<bool>, _>("locked")?.unwrap_or(false),
        ),
        None => (dummy_hash().to_owned(), false),
    };
    let pw = password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let exists = row.is_some();

    if !ok || locked || !exists {
        state.throttle.record_failure(ip);
        let mut detail = if locked {
            "account locked".to_owned()
        } else {
            "wrong username or password".to_owned()
        };
        if exists && !locked {
            let r = sqlx::query(
                "UPDATE admin_users SET failed_logins = failed_logins + 1,
                        locked_until = CASE WHEN failed_logins + 1 >= $2
                                            THEN now() + make_interval(secs => $3) ELSE locked_until END
                  WHERE username = $1 RETURNING locked_until > now() AS now_locked",
            )
            .bind(&username)
            .bind(state.cfg.lockout_threshold as i32)
            .bind(state.cfg.lockout_duration.as_secs_f64())
            .fetch_one(&state.pool)
            .await?;
            if r.try_get::<Option<bool>, _>("now_locked")?.unwrap_or(false) {
                sqlx::query("UPDATE admin_users SET failed_logins = 0 WHERE username = $1")
                    .bind(&username)
                    .execute(&state.pool)
                    .await?;
                detail = "wrong password; account locked".into();
                tracing::warn!(user = %username, "admin account locked after failed logins");
            }
        }
        tracing::info!(user = %username, address = %address, reason = %detail, "admin login failed");
        audit::record(
            &state.pool,
            &username,
            "login",
            "",
            audit::Outcome::Failure,
            &detail,
            &address,
        )
        .await;
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(LOGIN_FAILED.into()),
            username,
        )
        .await;
    }

    // Success: a brand-new session id (any presented id is discarded: no fixation).
    if let Some(old) = cookie(&headers, SESSION_COOKIE).filter(|v| !v.is_empty()) {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
            .bind(sha256(old))
            .execute(&state.pool)
            .await?;
    }
    sqlx::query("DELETE FROM admin_sessions WHERE expires_at < now()")
        .execute(&state.pool)
        .await?;
    sqlx::query(
        "UPDATE admin_users SET failed_logins = 0, locked_until = NULL, last_login_at = now() WHERE username = $1",
    )
    .bind(&username)
    .execute(&state.pool)
    .await?;
    let id = random_token()?;
    let csrf = random_token()?;
    sqlx::query(
        "INSERT INTO admin_sessions (id_hash, username, csrf_token, expires_at, address)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5)",
    )
    .bind(sha256(&id))
    .bind(&username)
    .bind(&csrf)
    .bind(state.cfg.session_absolute.as_secs_f64())
    .bind(&address)
    .execute(&state.pool)
    .await?;
    tracing::info!(user = %username, address = %address, "admin login");
    audit::record(
        &state.pool,
        &username,
        "login",
        "",
        audit::Outcome::Success,
        "",
        &address,
    )
    .await;
    let mut res = Redirect::to("/admin/").into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &id,
            Some(state.cfg.session_absolute.as_secs()),
        ),
    );
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", Some(0)));
    Ok(res)
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
    audit::record(
        &state.pool,
        &session.username,
        "logout",
        "",
        audit::Outcome::Success,
        "",
        &session.address,
    )
    .await;
    Ok(LoginRequired.into_response())
}
