//! The Bulwark database, owned once: the migrations (`migrations/`, embedded here and
//! nowhere else), connecting with retry while the database starts, and — behind the
//! `testing` feature — throwaway databases for tests.
#![forbid(unsafe_code)]

use std::time::Duration;

#[cfg(feature = "testing")]
pub mod testing;

/// The Bulwark database migrations (`migrations/`), applied by `bulwark-init` and by the
/// encrypted secret store.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Errors of connecting to the database. Never carries the URL: it holds a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused (e.g. authentication failed, no such database), the URL is
    /// malformed, or the server did not answer in time.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Connect to the Bulwark database, retrying with backoff for up to `within`: at start-up
/// the database (or the name that reaches it, in a container network) may not answer yet.
/// An answer from the server (e.g. authentication failed) or a malformed URL fails at once.
/// Each failure is logged with its error only, never the URL, which holds a password.
pub async fn connect_with_retry(
    url: &str,
    max_connections: u32,
    within: Duration,
) -> Result<sqlx::PgPool, Error> {
    let deadline = tokio::time::Instant::now() + within;
    let mut wait = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        let result = sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await;
        match result {
            Ok(pool) => return Ok(pool),
            // The server answered (wrong password, no such database) or the URL is malformed:
            // waiting will not change that.
            Err(e @ (sqlx::Error::Database(_) | sqlx::Error::Configuration(_))) => {
                return Err(Error::Database(e));
            }
            Err(e) if tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(
                    error = %e,
                    attempt,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "connecting to the Bulwark database failed; retrying"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            Err(e) => return Err(Error::Database(e)),
        }
    }
}
