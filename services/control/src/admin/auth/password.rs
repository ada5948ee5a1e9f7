//! Password hashing and verification (in a work area of the
//! [`HashGate`](crate::admin::throttle::HashGate)), and the signed-in user's password change.

use std::{collections::HashMap, net::IpAddr, sync::OnceLock, time::Instant};

use argon2::{
    Argon2, PasswordHash, PasswordHasher,
    password_hash::{SaltString, rand_core::OsRng},
};
use axum::{
    Form,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::{bootstrap::remove_bootstrap_file, ceil_secs, session::Session};
use crate::admin::{
    AdminError, AdminState,
    audit::{Action, AuditEntry, Outcome},
    render,
};

/// Shortest and longest accepted new password (characters; the form caps at 1024).
pub(super) const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 1024;

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, AdminError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Internal(format!("argon2: {e}")))
}

/// Check `password` against an argon2 PHC string, computing in `area` (a work area of the
/// [`HashGate`](crate::admin::throttle::HashGate)) instead of allocating one. A hash whose
/// parameters need more memory than the area (not written by Bulwark, whose hashes use the
/// defaults) is computed the allocating way, still under the gate.
pub(super) fn verify_password(password: &str, phc: &str, area: &mut [argon2::Block]) -> bool {
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

/// A hash to check unknown users' passwords against, so they take as long as real ones.
pub(super) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("bulwark-dummy-password").unwrap_or_default())
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
    let ip: IpAddr = bulwark_token_issuer::throttle::address_key(
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
        AuditEntry {
            actor: &session.username,
            action: Action::ChangePassword,
            target: &session.username,
            outcome: Outcome::Failure,
            detail: "wrong current password",
            address: &session.address,
        }
        .record(&state.pool)
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
    AuditEntry {
        actor: &session.username,
        action: Action::ChangePassword,
        target: &session.username,
        outcome: Outcome::Success,
        detail: &format!("{ended} other sessions ended"),
        address: &session.address,
    }
    .record(&state.pool)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
