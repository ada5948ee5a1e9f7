//! `bulwark-init admin`: recover the admin page's accounts with the page down, straight
//! against the database.
//!
//! - `unlock <user>` clears any lock state kept in the database and records `unlocked_at`; a
//!   running bulwark-control picks that up within seconds and forgets that user's backoffs
//!   (they are in memory, per process; a restart clears them too).
//! - `set-password <user>` sets (or creates the account with) a password read from stdin or
//!   a file, never from the command line; every session of the user ends.

use std::{io::Read, path::Path};

use anyhow::{Context, bail};
use argon2::{
    Argon2, PasswordHasher,
    password_hash::{SaltString, rand_core::OsRng},
};
use bulwark_db::MIGRATOR;
use sqlx::PgPool;
use zeroize::Zeroizing;

const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 1024;
/// How the command line appears in the audit log.
const ACTOR: &str = "bulwark-init";
const ADDRESS: &str = "command line";

/// The password in `raw` without its trailing line break, if it is acceptable.
pub fn password_from(raw: &str) -> anyhow::Result<Zeroizing<String>> {
    let p = raw.strip_suffix('\n').unwrap_or(raw);
    let p = p.strip_suffix('\r').unwrap_or(p);
    let n = p.chars().count();
    if n < MIN_PASSWORD {
        bail!("the password must have at least {MIN_PASSWORD} characters");
    }
    if n > MAX_PASSWORD {
        bail!("the password may have at most {MAX_PASSWORD} characters");
    }
    Ok(Zeroizing::new(p.to_owned()))
}

/// Read the new password from `file`, else from stdin.
pub fn read_password(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    let raw = Zeroizing::new(match file {
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the password from stdin")?;
            s
        }
    });
    password_from(&raw)
}

fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// Connect to the Bulwark database named by the URL file (it holds a password, so never a
/// flag), retrying while it starts, and apply the migrations. Every database command uses it.
pub async fn connect(
    url_file: &Path,
    connect_within: std::time::Duration,
) -> anyhow::Result<PgPool> {
    let url = Zeroizing::new(
        std::fs::read_to_string(url_file)
            .with_context(|| format!("reading {}", url_file.display()))?,
    );
    let pool = bulwark_db::connect_with_retry(url.trim(), 2, connect_within)
        .await
        .context(
            "connecting to the Bulwark database (check the URL file and that Postgres runs)",
        )?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;
    Ok(pool)
}

async fn audit(pool: &PgPool, action: &str, user: &str, detail: &str) {
    let r = sqlx::query(
        "INSERT INTO admin_audit (actor, action, target, outcome, detail, address)
         VALUES ($1, $2, $3, 'success', $4, $5)",
    )
    .bind(ACTOR)
    .bind(action)
    .bind(user)
    .bind(detail)
    .bind(ADDRESS)
    .execute(pool)
    .await;
    if let Err(e) = r {
        tracing::error!(error = %e, action, "audit log write failed");
    }
}

/// Clear the database lock state of `user` and tell running controls to forget its backoffs.
pub async fn unlock(pool: &PgPool, user: &str) -> anyhow::Result<()> {
    let n = sqlx::query(
        "UPDATE admin_users SET failed_logins = 0, locked_until = NULL, unlocked_at = now(),
                updated_at = now()
          WHERE username = $1",
    )
    .bind(user)
    .execute(pool)
    .await?
    .rows_affected();
    if n == 0 {
        bail!("no admin account named {user:?}");
    }
    audit(pool, "unlock", user, "").await;
    Ok(())
}

/// Set `user`'s password (creating the account if needed); returns (created, sessions ended).
/// Deletes `bootstrap_file` afterwards when given: its password no longer works.
pub async fn set_password(
    pool: &PgPool,
    user: &str,
    password: &str,
    bootstrap_file: Option<&Path>,
) -> anyhow::Result<(bool, u64)> {
    let pw = Zeroizing::new(password.to_owned());
    let phc = tokio::task::spawn_blocking(move || hash(&pw)).await??;
    let mut tx = pool.begin().await?;
    let created: bool = sqlx::query_scalar(
        "INSERT INTO admin_users (username, password_hash, password_changed_at, unlocked_at)
         VALUES ($1, $2, now(), now())
         ON CONFLICT (username) DO UPDATE
            SET password_hash = EXCLUDED.password_hash, password_changed_at = now(),
                unlocked_at = now(), failed_logins = 0, locked_until = NULL, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(user)
    .bind(&phc)
    .fetch_one(&mut *tx)
    .await
    .with_context(|| format!("setting the password of {user:?} (names: a-z, 0-9, _ . -)"))?;
    let ended = sqlx::query("DELETE FROM admin_sessions WHERE username = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    audit(
        pool,
        "set-password",
        user,
        &format!(
            "{}; {ended} sessions ended",
            if created {
                "account created"
            } else {
                "password replaced"
            }
        ),
    )
    .await;
    if let Some(f) = bootstrap_file {
        match std::fs::remove_file(f) {
            Ok(()) => tracing::info!(file = %f.display(), "bootstrap password file deleted"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "the password was set, but deleting {} failed; remove it",
                        f.display()
                    )
                });
            }
        }
    }
    Ok((created, ended))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_lose_one_line_break_and_must_be_long_enough() {
        assert_eq!(
            &*password_from("correct horse battery\n").unwrap(),
            "correct horse battery"
        );
        assert_eq!(
            &*password_from("correct horse battery\r\n").unwrap(),
            "correct horse battery"
        );
        // Only the line break: spaces are part of the password.
        assert_eq!(
            &*password_from(" twelve chars \n").unwrap(),
            " twelve chars "
        );
        assert!(password_from("short\n").is_err());
        assert!(password_from("elevenchars").is_err());
        assert!(password_from(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn hashes_are_argon2id() {
        assert!(
            hash("correct horse battery")
                .unwrap()
                .starts_with("$argon2id$")
        );
    }

    /// Against a fresh database when BULWARK_TEST_DATABASE_URL names a test server.
    #[tokio::test]
    async fn set_password_and_unlock_work_against_the_database() {
        let Ok(admin_url) = std::env::var("BULWARK_TEST_DATABASE_URL") else {
            eprintln!("skipped: BULWARK_TEST_DATABASE_URL not set");
            return;
        };
        let server = PgPool::connect(&admin_url).await.unwrap();
        let name = format!("bulwark_init_admin_{}", std::process::id());
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&server)
            .await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&server)
            .await
            .unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let url_file = tmp.path().join("url");
        std::fs::write(&url_file, format!("{base}/{name}\n")).unwrap();
        let pool = connect(&url_file, std::time::Duration::from_secs(10))
            .await
            .unwrap();

        assert!(unlock(&pool, "admin").await.is_err(), "no such account yet");
        let bootstrap = tmp.path().join("admin-password");
        std::fs::write(&bootstrap, "the bootstrap password").unwrap();
        let (created, _) = set_password(&pool, "admin", "first password!", None)
            .await
            .unwrap();
        assert!(created);
        assert!(bootstrap.exists());
        sqlx::query(
            "INSERT INTO admin_sessions (id_hash, username, csrf_token, expires_at)
             VALUES (sha256('x'), 'admin', 't', now() + interval '1 hour')",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE admin_users SET failed_logins = 9, locked_until = now() + interval '1 hour'",
        )
        .execute(&pool)
        .await
        .unwrap();
        let (created, ended) = set_password(&pool, "admin", "second password!", Some(&bootstrap))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(ended, 1);
        assert!(!bootstrap.exists());
        let (phc, failed, locked, changed): (String, i32, bool, bool) = sqlx::query_as(
            "SELECT password_hash, failed_logins, locked_until IS NOT NULL, password_changed_at IS NOT NULL
               FROM admin_users WHERE username = 'admin'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("second password!"));
        assert_eq!((failed, locked, changed), (0, false, true));

        sqlx::query("UPDATE admin_users SET failed_logins = 9, locked_until = now() + interval '1 hour', unlocked_at = NULL")
            .execute(&pool)
            .await
            .unwrap();
        unlock(&pool, "admin").await.unwrap();
        let (failed, locked, unlocked): (i32, bool, bool) = sqlx::query_as(
            "SELECT failed_logins, locked_until IS NOT NULL, unlocked_at IS NOT NULL FROM admin_users",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((failed, locked, unlocked), (0, false, true));
        let audited: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM admin_audit WHERE actor = 'bulwark-init' AND target = 'admin'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(audited, 3);
        // Invalid names are refused by the schema.
        assert!(
            set_password(&pool, "Not Valid", "long enough password", None)
                .await
                .is_err()
        );
        pool.close().await;
        let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&server)
            .await;
    }
}
