//! The authorization server's rules for Bulwark: OAuth clients with hashed, rotatable
//! secrets; scopes and the Temporal permissions they grant; the client-credentials grant;
//! rate limits. HTTP lives in `bulwark-control`; this crate has no web framework in it.
#![forbid(unsafe_code)]

pub mod client_id;
pub mod grant;
pub mod ratelimit;
pub mod scope;
pub mod secret;
pub mod signer;
pub mod store;
pub mod throttle;

/// The file, in a credentials directory, holding one service's own OAuth client
/// credentials (`<client>_client_id`, `<client>_client_secret`): the deployment secret store
/// of that service. One file per client, so each service can be given only its own.
pub fn deployment_secrets_file(client: &str) -> String {
    format!("deployment-secrets-{client}.json")
}

pub use client_id::ClientId;
pub use grant::{GrantError, IssuedToken, IssuerSettings, TokenIssuer, TokenRequest};
pub use scope::{Scope, ScopeSet};
pub use secret::ClientSecret;
pub use store::{Client, ClientStore};
pub use throttle::{ThrottleReason, ThrottleSettings, Throttled};

/// The Bulwark database migrations (`migrations/`), applied by `bulwark-init`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Connect to the Bulwark database, retrying with backoff for up to `within`: at start-up
/// the database (or the name that reaches it, in a container network) may not answer yet.
/// An answer from the server (e.g. authentication failed) or a malformed URL fails at once.
/// Each failure is logged with its error only, never the URL, which holds a password.
pub async fn connect_with_retry(
    url: &str,
    max_connections: u32,
    within: std::time::Duration,
) -> Result<sqlx::PgPool, Error> {
    use std::time::Duration;
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

/// Errors of client management and key loading. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "invalid client id {0:?}: use 1-63 lowercase letters, digits, '_' or '-', starting with a letter"
    )]
    InvalidClientId(String),
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("JWT signing key: {0}")]
    Key(String),
    #[error("the system random source failed")]
    Random,
}
