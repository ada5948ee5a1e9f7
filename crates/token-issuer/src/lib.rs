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
pub use grant::{
    CERTIFICATE_REQUIRED, GrantError, IssuedToken, IssuerSettings, TEMPORAL_AUDIENCE, TokenIssuer,
    TokenRequest,
};
pub use scope::{Scope, ScopeSet};
pub use secret::ClientSecret;
pub use store::{Client, ClientStore};
pub use throttle::{ThrottleReason, ThrottleSettings, Throttled};

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
