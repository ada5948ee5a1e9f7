//! Client side of Bulwark's short-lived tokens: an OAuth2 client-credentials
//! token manager.
//!
//! A service builds one [`TokenManager`] per identity, starts its background
//! refresher and either asks it for a token per request
//! ([`TokenManager::get_access_token`], [`TokenManager::authenticated_headers`])
//! or lets it push every new token into a long-lived client
//! ([`TokenManager::on_refresh`], [`TokenManager::subscribe`]), e.g. a Temporal
//! client's `set_api_key`, so a running worker never presents an expired token.
//!
//! * Credentials: `BULWARK_<APP>_CLIENT_ID` / `BULWARK_<APP>_CLIENT_SECRET`
//!   from the environment, else `<app>_client_id` / `<app>_client_secret` from
//!   the deployment secret store, through the [`CredentialSource`] trait.
//! * Schedule: see [`RefreshPolicy::refresh_delay`]; always before expiry.
//! * One request in flight at a time; waiting callers share its outcome.
//! * Failures clear the cached credentials and are retried with jittered
//!   exponential backoff; callers keep the current token while it is usable.
//! * Nothing secret is ever formatted: errors carry status and RFC 6749 code
//!   only, and tokens and secrets print as `...` / `[REDACTED]`.
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn bulwark_token_client::CredentialSource>) -> bulwark_token_client::Result<()> {
//! use std::sync::Arc;
//! use bulwark_token_client::TokenManager;
//!
//! let manager = TokenManager::builder("https://control:8443/oauth/token", "worker")
//!     .ca_bundle_file("/certs/ca.crt")
//!     .secret_store(store)
//!     .build()?;
//! manager.start_background_refresh()?;
//! manager.on_refresh(Arc::new(|token| {
//!     // temporal_client.set_api_key(Some(token.expose_secret().to_owned()));
//!     let _ = token;
//! }));
//! let headers = manager.authenticated_headers().await?;
//! # let _ = headers; Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "clap")]
pub mod cli;
mod clock;
mod credentials;
mod endpoint;
mod error;
mod manager;
mod policy;
mod secret;
mod token;

pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use credentials::{
    ClientCredentials, CredentialNames, CredentialOrigin, CredentialSource, MemorySource,
    ProcessEnv, discover,
};
pub use endpoint::ClientAuthMethod;
pub use error::{AuthError, OAuthErrorCode, Result, SourceError, TransportKind};
pub use manager::{
    DEFAULT_JWKS_WATCH_INTERVAL, MetricsSnapshot, RefreshHook, RefreshStatus, TokenManager,
    TokenManagerBuilder,
};
pub use policy::RefreshPolicy;
pub use secret::{Secret, SecretString};
pub use token::{AccessToken, LifetimeSource};

/// Re-exported so implementors of [`CredentialSource`] use the same macro version.
pub use async_trait::async_trait;
