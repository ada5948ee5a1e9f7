//! The login page and its handler, with the expiring CSRF token of the login form.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{
    Form,
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use time::OffsetDateTime;

use super::{
    ceil_secs,
    password::{dummy_hash, verify_password},
    random_token,
    session::{LOGIN_COOKIE, SESSION_COOKIE, Session, cookie, set_cookie},
    sha256,
};
use crate::admin::{
    AdminError, AdminState,
    audit::{self, Action, AuditEntry, Outcome},
    render,
    throttle::Refusal,
};

/// Generic failure message: never says whether the user exists or is backing off.
const LOGIN_FAILED: &str = "Invalid username or password, or the account is temporarily locked.";

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
fn login_csrf(key: &ring::hmac::Key, nonce: &str, issued_at: i64) -> String {
    format!(
        "{issued_at}.{}",
        B64.encode(login_mac(key, nonce, issued_at).as_ref())
    )
}

/// Accept `presented` only if it was issued for `nonce` by this process within `ttl` of
/// `now` (unix seconds; a minute of clock skew into the future is tolerated).
fn check_login_csrf(
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
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(ceil_secs(retry_after)),
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
    // CSRF first: the nonce cookie and the form field must belong together, and be fresh.
    check_login_csrf(
        &state.login_key,
        cookie(&headers, LOGIN_COOKIE).unwrap_or_default(),
        form.get("csrf").map(String::as_str).unwrap_or_default(),
        unix_now(),
        state.cfg.login_form_ttl,
    )?;
    // Throttled by address key: an IPv6 /64 is one address (one host has 2^64 of them).
    let ip = bulwark_token_issuer::throttle::address_key(addr.ip());
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
    AuditEntry {
        actor: &username,
        action: Action::Login,
        target: "",
        outcome: Outcome::Success,
        detail: "",
        address: &address,
    }
    .record(&state.pool)
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
}
