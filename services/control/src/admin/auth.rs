//! Accounts, login, server-side sessions, CSRF tokens and login throttling.
//!
//! - Passwords: argon2id (PHC string). Unknown users are checked against a dummy hash so the
//!   response time does not reveal which accounts exist.
//! - Sessions: a random 256-bit id in the `__Host-bulwark_session` cookie; the database keeps
//!   only its SHA-256, with an idle and an absolute expiry. Login always issues a new id.
//! - CSRF: every session has a synchronizer token that each form carries. The login form,
//!   which has no session yet, uses a signed double-submit token: a random nonce in a
//!   `__Host-` cookie and, in the form, `issued_at.HMAC(nonce || issued_at)` (key held in
//!   memory), refused once older than `login_form_ttl`.
//! - Throttling ([`super::throttle`]): an attempt is counted before argon2 runs; each
//!   (user, address) pair backs off after `backoff_after` failures (1 s, 2 s, 4 s ... up to
//!   `backoff_max`), each address may fail `address_limit` times per `address_window`, and
//!   argon2 runs under a semaphore (429 with `Retry-After` when no turn frees up in time).
//!   No account is ever locked for everyone: the admin from an address that has not failed
//!   can always log in. The state is per process; `bulwark-init admin unlock` is noticed
//!   within [`UPKEEP_INTERVAL`].
//! - A refused login never logs or audits the raw username unless it names a real account
//!   ([`audit::login_actor`], keyed); refusals are aggregated per address ([`audit::RefusalLog`]).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    num::NonZeroUsize,
    sync::OnceLock,
    time::{Duration, Instant},
};

use argon2::{
    Argon2, PasswordHash, PasswordHasher,
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
use time::OffsetDateTime;

use super::{
    Admin, AdminConfig, AdminError, AdminState, audit, render,
    throttle::{Refusal, ThrottleSettings},
};

pub const SESSION_COOKIE: &str = "__Host-bulwark_session";
pub const LOGIN_COOKIE: &str = "__Host-bulwark_login";

/// Generic failure message: never says whether the user exists or is backing off.
const LOGIN_FAILED: &str = "Invalid username or password, or the account is temporarily locked.";
/// Shortest and longest accepted new password (characters; the form caps at 1024).
const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 1024;
/// How often refusal windows are flushed and command-line unlocks are picked up.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The throttle's settings from the admin configuration.
pub fn throttle_settings(cfg: &AdminConfig) -> ThrottleSettings {
    ThrottleSettings {
        address_limit: cfg.address_limit.max(1),
        address_window: cfg.address_window,
        backoff_after: cfg.backoff_after.max(1),
        backoff_base: cfg.backoff_base,
        backoff_max: cfg.backoff_max.max(cfg.backoff_base),
        capacity: tracked(cfg),
    }
}

/// Entries per login-state LRU.
pub fn tracked(cfg: &AdminConfig) -> NonZeroUsize {
    NonZeroUsize::new(cfg.login_tracked).unwrap_or(NonZeroUsize::MIN)
}

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

/// Check `password` against an argon2 PHC string, computing in `area` (a work area of the
/// [`super::throttle::HashGate`]) instead of allocating one. A hash whose parameters need
/// more memory than the area (not written by Bulwark, whose hashes use the defaults) is
/// computed the allocating way, still under the gate.
pub(crate) fn verify_password(password: &str, phc: &str, area: &mut [argon2::Block]) -> bool {
    use argon2::{Algorithm, Params, Version};
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let computed = match area.get_mut(..blocks) {
        Some(area) => argon.hash_password_into_with_memory(password.as_bytes(), salt, out, area),
        None => {
            tracing::warn!("a stored password hash needs more memory than the login work areas");
            argon.hash_password_into(password.as_bytes(), salt, out)
        }
    };
    computed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
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

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn login_mac(key: &ring::hmac::Key, nonce: &str, issued_at: i64) -> ring::hmac::Tag {
    ring::hmac::sign(key, format!("{nonce}.{issued_at}").as_bytes())
}

/// The login form's CSRF value for the nonce cookie `nonce`: `issued_at.mac`.
pub(crate) fn login_csrf(key: &ring::hmac::Key, nonce: &str, issued_at: i64) -> String {
    format!(
        "{issued_at}.{}",
        B64.encode(login_mac(key, nonce, issued_at).as_ref())
    )
}

/// Accept `presented` only if it was issued for `nonce` by this process within `ttl` of
/// `now` (unix seconds; a minute of clock skew into the future is tolerated).
pub(crate) fn check_login_csrf(
    key: &ring::hmac::Key,
    nonce: &str,
    presented: &str,
    now: i64,
    ttl: Duration,
) -> Result<(), AdminError> {
    if nonce.is_empty() {
        return Err(AdminError::Csrf);
    }
    let (issued, mac) = presented.split_once('.').ok_or(AdminError::Csrf)?;
    let issued_at: i64 = issued.parse().map_err(|_| AdminError::Csrf)?;
    let mac = B64.decode(mac).map_err(|_| AdminError::Csrf)?;
    ring::hmac::verify(key, format!("{nonce}.{issued_at}").as_bytes(), &mac)
        .map_err(|_| AdminError::Csrf)?;
    let age = now.saturating_sub(issued_at);
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    if age > ttl || age < -60 {
        return Err(AdminError::Csrf);
    }
    Ok(())
}

async fn login_page(
    state: &AdminState,
    status: StatusCode,
    error: Option<String>,
    username: String,
) -> Result<Response, AdminError> {
    let nonce = random_token()?;
    let page = LoginPage {
        csrf: login_csrf(&state.login_key, &nonce, unix_now()),
        error,
        username,
    };
    let mut res = render(&page)?;
    *res.status_mut() = status;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &nonce,
            Some(state.cfg.login_form_ttl.as_secs()),
        ),
    );
    Ok(res)
}

/// A 429 login page with `Retry-After` (whole seconds, at least 1).
async fn too_many(
    state: &AdminState,
    retry_after: Duration,
    message: String,
    username: String,
) -> Result<Response, AdminError> {
    let mut res = login_page(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        Some(message),
        username,
    )
    .await?;
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    Ok(res)
}

fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
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
    // CSRF first: the nonce cookie and the form field must belong together, and be fresh.
    check_login_csrf(
        &state.login_key,
        cookie(&headers, LOGIN_COOKIE).unwrap_or_default(),
        form.get("csrf").map(String::as_str).unwrap_or_default(),
        unix_now(),
        state.cfg.login_form_ttl,
    )?;
    // Throttled by address key: an IPv6 /64 is one address (one host has 2^64 of them).
    let ip = bulwark_oauth::throttle::address_key(addr.ip());
    let address = addr.ip().to_string();
    let username: String = form
        .get("username")
        .map(|u| u.trim().chars().take(64).collect())
        .unwrap_or_default();
    let password = zeroize::Zeroizing::new(form.get("password").cloned().unwrap_or_default());

    // Counted before any work, so concurrent attempts cannot all pass this check.
    let reservation =
        match state
            .throttle
            .reserve(ip, &username, Instant::now(), OffsetDateTime::now_utc())
        {
            Ok(r) => r,
            Err(refusal) => {
                // Whether the name is an account is not looked up for a throttled attempt.
                let actor = audit::login_actor(&state.login_key, &username, false);
                let (reason, message) = match refusal {
                    Refusal::Address { .. } => (
                        "throttled (address)",
                        "Too many failed sign-ins from this address; try again later.".to_owned(),
                    ),
                    Refusal::Backoff { retry_after } => (
                        "throttled (backoff)",
                        format!(
                            "Too many failed sign-ins; wait {} seconds and try again.",
                            ceil_secs(retry_after)
                        ),
                    ),
                };
                tracing::info!(user = %actor, address = %address, reason, "admin login throttled");
                audit::refused(&state.pool, &state.refusals, ip, &actor, reason, reason).await;
                return too_many(&state, refusal.retry_after(), message, username).await;
            }
        };

    let phc: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM admin_users WHERE username = $1")
            .bind(&username)
            .fetch_optional(&state.pool)
            .await?;
    let exists = phc.is_some();
    let pw = password.clone();
    // Unknown users are checked against the dummy hash (computed under the permit too) so
    // the answer takes as long either way.
    let verdict = state
        .hash_gate
        .run(move |area| match phc {
            Some(phc) => verify_password(&pw, &phc, area),
            None => {
                let _ = verify_password(&pw, dummy_hash(), area);
                false
            }
        })
        .await;
    let actor = audit::login_actor(&state.login_key, &username, exists);
    let ok = match verdict {
        Ok(joined) => joined.map_err(|e| AdminError::Internal(e.to_string()))?,
        Err(busy) => {
            // No check ran, so this was no failed password: given back, or a flood from
            // elsewhere that keeps the turns busy would back the real admin off. The flood
            // itself stays bounded: every attempt of its that gets a turn counts.
            state.throttle.released(reservation);
            tracing::warn!(user = %actor, address = %address, "admin login refused: password checks busy");
            audit::refused(
                &state.pool,
                &state.refusals,
                ip,
                &actor,
                "busy",
                "busy: no password check free",
            )
            .await;
            return too_many(
                &state,
                busy.retry_after,
                "The server is busy checking other sign-ins; try again in a moment.".into(),
                username,
            )
            .await;
        }
    };

    if !ok || !exists {
        let detail = "wrong username or password";
        tracing::info!(user = %actor, address = %address, reason = detail, "admin login failed");
        audit::refused(&state.pool, &state.refusals, ip, &actor, detail, detail).await;
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(LOGIN_FAILED.into()),
            username,
        )
        .await;
    }
    state.throttle.succeeded(reservation);

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
    sqlx::query("UPDATE admin_users SET last_login_at = now() WHERE username = $1")
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

#[derive(askama::Template)]
#[template(path = "password.html")]
struct PasswordPage {
    user: String,
    csrf: String,
    error: Option<String>,
    done: Option<String>,
}

fn password_page(
    session: &Session,
    status: StatusCode,
    error: Option<String>,
    done: Option<String>,
) -> Result<Response, AdminError> {
    let mut res = render(&PasswordPage {
        user: session.username.clone(),
        csrf: session.csrf.clone(),
        error,
        done,
    })?;
    *res.status_mut() = status;
    Ok(res)
}

pub async fn password_form(session: Session) -> Result<Response, AdminError> {
    password_page(&session, StatusCode::OK, None, None)
}

/// Why a new password is not acceptable, if it is not.
fn new_password_problem(current: &str, new: &str, repeat: &str) -> Option<&'static str> {
    let n = new.chars().count();
    if new != repeat {
        Some("The two new passwords differ.")
    } else if n < MIN_PASSWORD {
        Some("The new password must have at least 12 characters.")
    } else if n > MAX_PASSWORD {
        Some("The new password may have at most 1024 characters.")
    } else if new == current {
        Some("The new password must differ from the current one.")
    } else {
        None
    }
}

/// Change the signed-in user's password: the current one is checked (throttled like a
/// login), every other session of the user ends, and the bootstrap password file goes.
pub async fn change_password(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    let field = |k: &str| zeroize::Zeroizing::new(form.get(k).cloned().unwrap_or_default());
    let (current, new, repeat) = (field("current"), field("new"), field("repeat"));
    if let Some(problem) = new_password_problem(&current, &new, &repeat) {
        return password_page(
            &session,
            StatusCode::BAD_REQUEST,
            Some(problem.into()),
            None,
        );
    }
    let ip: IpAddr = bulwark_oauth::throttle::address_key(
        session
            .address
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0])),
    );
    let reservation = match state.throttle.reserve(
        ip,
        &session.username,
        Instant::now(),
        OffsetDateTime::now_utc(),
    ) {
        Ok(r) => r,
        Err(refusal) => {
            let mut res = password_page(
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                Some(format!(
                    "Too many wrong passwords; wait {} seconds and try again.",
                    ceil_secs(refusal.retry_after())
                )),
                None,
            )?;
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(ceil_secs(refusal.retry_after())),
            );
            return Ok(res);
        }
    };
    let phc: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM admin_users WHERE username = $1")
            .bind(&session.username)
            .fetch_optional(&state.pool)
            .await?;
    let phc = phc.ok_or(AdminError::NotFound)?;
    let (cur, next) = (current.clone(), new.clone());
    // One turn for both: the check of the current password and the new hash.
    let outcome = state
        .hash_gate
        .run(move |area| {
            if verify_password(&cur, &phc, area) {
                Some(hash_password(&next))
            } else {
                None
            }
        })
        .await;
    let outcome = match outcome {
        Ok(joined) => joined.map_err(|e| AdminError::Internal(e.to_string()))?,
        Err(busy) => {
            state.throttle.released(reservation);
            let mut res = password_page(
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                Some("The server is busy checking other sign-ins; try again in a moment.".into()),
                None,
            )?;
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(ceil_secs(busy.retry_after)),
            );
            return Ok(res);
        }
    };
    let Some(hash) = outcome else {
        audit::record(
            &state.pool,
            &session.username,
            "change-password",
            &session.username,
            audit::Outcome::Failure,
            "wrong current password",
            &session.address,
        )
        .await;
        return password_page(
            &session,
            StatusCode::UNAUTHORIZED,
            Some("The current password is wrong.".into()),
            None,
        );
    };
    let hash = hash?;
    state.throttle.succeeded(reservation);
    let mut tx = state.pool.begin().await?;
    sqlx::query(
        "UPDATE admin_users SET password_hash = $2, password_changed_at = now(), updated_at = now(),
                failed_logins = 0, locked_until = NULL
          WHERE username = $1",
    )
    .bind(&session.username)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    let ended = sqlx::query("DELETE FROM admin_sessions WHERE username = $1 AND id_hash <> $2")
        .bind(&session.username)
        .bind(&session.id_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    tracing::info!(user = %session.username, other_sessions_ended = ended, "admin password changed");
    audit::record(
        &state.pool,
        &session.username,
        "change-password",
        &session.username,
        audit::Outcome::Success,
        &format!("{ended} other sessions ended"),
        &session.address,
    )
    .await;
    if session.username == state.cfg.admin_user {
        remove_bootstrap_file(&state.cfg);
    }
    password_page(
        &session,
        StatusCode::OK,
        None,
        Some(format!(
            "Password changed; {ended} other sessions of {} were ended.",
            session.username
        )),
    )
}

/// Delete the bootstrap password file (its password no longer works). A failure is logged,
/// not fatal: the file is useless now, but an operator should remove it.
fn remove_bootstrap_file(cfg: &AdminConfig) {
    let Some(path) = &cfg.admin_password_file else {
        return;
    };
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(file = %path.display(), "bootstrap admin password file deleted"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(
            file = %path.display(),
            error = %e,
            "could not delete the bootstrap admin password file (its password no longer works); remove it"
        ),
    }
}

/// Create the bootstrap account from `env_password` or `cfg.admin_password_file` if it does
/// not exist yet. A missing file is not an error (it is deleted once the password has been
/// changed), and a file whose account has since changed its password is deleted.
pub async fn bootstrap(admin: &Admin, env_password: Option<String>) -> Result<(), AdminError> {
    let cfg = &admin.cfg;
    let changed: Option<bool> = sqlx::query_scalar(
        "SELECT password_changed_at IS NOT NULL FROM admin_users WHERE username = $1",
    )
    .bind(&cfg.admin_user)
    .fetch_optional(&admin.pool)
    .await?;
    if changed == Some(true) {
        remove_bootstrap_file(cfg);
        return Ok(());
    }
    let password = match env_password.filter(|p| !p.is_empty()) {
        Some(p) => Some(zeroize::Zeroizing::new(p)),
        None => match &cfg.admin_password_file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(p) => Some(zeroize::Zeroizing::new(p.trim().to_owned())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(AdminError::Internal(format!(
                        "reading {}: {e}",
                        path.display()
                    )));
                }
            },
            None => None,
        },
    };
    match password {
        Some(p) if ensure_admin(&admin.pool, &cfg.admin_user, &p).await? => {
            tracing::info!(user = %cfg.admin_user, "admin account created");
        }
        Some(_) => {}
        None if changed.is_none() => tracing::warn!(
            user = %cfg.admin_user,
            "no bootstrap admin password (BULWARK_ADMIN_PASSWORD_FILE unset or missing): the account is not created; `bulwark-init admin set-password` can create it"
        ),
        None => {}
    }
    Ok(())
}

/// Every [`UPKEEP_INTERVAL`]: write the refusal counts of closed windows, and forget the
/// backoff of accounts unlocked from the command line since the last look.
pub fn spawn_refusal_flush(state: AdminState) {
    tokio::spawn(async move {
        let mut seen = OffsetDateTime::UNIX_EPOCH;
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            audit::flush_refusals(&state.pool, &state.refusals, false).await;
            // Recent unlocks by the database's clock; applying one twice is harmless (only
            // backoffs that began before it are forgotten).
            let unlocks = sqlx::query_as::<_, (String, OffsetDateTime)>(
                "SELECT username, unlocked_at FROM admin_users
                  WHERE unlocked_at > now() - make_interval(secs => 60)",
            )
            .fetch_all(&state.pool)
            .await;
            match unlocks {
                Ok(rows) => {
                    for (user, at) in rows {
                        if at > seen {
                            tracing::info!(user = %user, "admin account unlocked from the command line");
                            seen = at;
                        }
                        state.throttle.unlocked(&user, at);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "checking for admin unlocks failed"),
            }
        }
    });
}

/// Write every refusal count still held in memory; call once the server has stopped.
pub async fn flush_on_shutdown(state: &AdminState) {
    audit::flush_refusals(&state.pool, &state.refusals, true).await;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> ring::hmac::Key {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"test key for the login form")
    }

    #[test]
    fn the_login_form_token_expires() {
        let ttl = Duration::from_secs(600);
        let t0 = 1_800_000_000;
        let token = login_csrf(&key(), "nonce-1", t0);
        assert!(check_login_csrf(&key(), "nonce-1", &token, t0, ttl).is_ok());
        assert!(check_login_csrf(&key(), "nonce-1", &token, t0 + 600, ttl).is_ok());
        assert!(matches!(
            check_login_csrf(&key(), "nonce-1", &token, t0 + 601, ttl),
            Err(AdminError::Csrf)
        ));
        // Issued "in the future" beyond skew: refused too.
        assert!(check_login_csrf(&key(), "nonce-1", &token, t0 - 120, ttl).is_err());
    }

    #[test]
    fn the_login_form_token_is_bound_to_its_nonce_and_time() {
        let ttl = Duration::from_secs(600);
        let t0 = 1_800_000_000;
        let token = login_csrf(&key(), "nonce-1", t0);
        assert!(check_login_csrf(&key(), "nonce-2", &token, t0, ttl).is_err());
        assert!(check_login_csrf(&key(), "", &token, t0, ttl).is_err());
        // Moving the issue time forward breaks the MAC.
        let (_, mac) = token.split_once('.').unwrap();
        let forged = format!("{}.{mac}", t0 + 500);
        assert!(check_login_csrf(&key(), "nonce-1", &forged, t0 + 700, ttl).is_err());
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"another key");
        assert!(check_login_csrf(&other, "nonce-1", &token, t0, ttl).is_err());
        for junk in ["", "AAAA", "1.", ".AAAA", "x.AAAA"] {
            assert!(check_login_csrf(&key(), "nonce-1", junk, t0, ttl).is_err());
        }
    }

    #[test]
    fn new_passwords_are_checked() {
        let cur = "the current password";
        assert!(new_password_problem(cur, "short", "short").is_some());
        assert!(
            new_password_problem(cur, "long enough password", "long enough passw0rd").is_some()
        );
        assert!(new_password_problem(cur, cur, cur).is_some());
        let long = "x".repeat(1025);
        assert!(new_password_problem(cur, &long, &long).is_some());
        assert!(
            new_password_problem(cur, "long enough password", "long enough password").is_none()
        );
    }

    #[test]
    fn verification_in_a_work_area_agrees_with_argon2() {
        use argon2::{Algorithm, Params, PasswordVerifier, Version};
        let mut area =
            vec![argon2::Block::default(); Params::default().block_count()].into_boxed_slice();
        let phc = hash_password("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(verify_password("correct horse battery", &phc, &mut area));
        assert!(!verify_password("correct horse batterz", &phc, &mut area));
        assert!(!verify_password("", &phc, &mut area));
        // A hash with other (smaller) parameters is verified in a slice of the area...
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let phc_small = small.hash_password(b"pw-small", &salt).unwrap().to_string();
        assert!(verify_password("pw-small", &phc_small, &mut area));
        assert!(!verify_password("pw-smalL", &phc_small, &mut area));
        // ...one needing more memory than the area still verifies (allocating).
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(Params::DEFAULT_M_COST * 2, 1, 1, None).unwrap(),
        );
        let phc_big = big.hash_password(b"pw-big", &salt).unwrap().to_string();
        assert!(verify_password("pw-big", &phc_big, &mut area));
        assert!(!verify_password("pw-bi", &phc_big, &mut area));
        // Malformed or foreign strings never verify.
        for junk in ["", "$argon2id$", "$bcrypt$v=1$x", "not a hash"] {
            assert!(!verify_password("anything", junk, &mut area));
        }
    }
}
