//! The bootstrap admin account: created once from `BULWARK_ADMIN_PASSWORD` or the password
//! file, which is deleted once that password has been changed.

use sqlx::PgPool;

use super::password::{MIN_PASSWORD, hash_password};
use crate::admin::{Admin, AdminConfig, AdminError};

/// Create the admin account with `password` unless an account of that name exists.
/// Returns whether it was created. An existing password is never overwritten.
pub async fn ensure_admin(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> Result<bool, AdminError> {
    if password.chars().count() < MIN_PASSWORD {
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

/// Delete the bootstrap password file (its password no longer works). A failure is logged,
/// not fatal: the file is useless now, but an operator should remove it.
pub(super) fn remove_bootstrap_file(cfg: &AdminConfig) {
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
