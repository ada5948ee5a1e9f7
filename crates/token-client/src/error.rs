//! Errors of the token manager.
//!
//! Invariant kept by every constructor in this crate: no variant carries the
//! token endpoint's response body, a client secret or an access token. Upstream
//! failures are reduced to the HTTP status and the RFC 6749 `error` code, which
//! is a fixed vocabulary ([`OAuthErrorCode`]); `error_description` is dropped
//! because a server may echo request data into it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// Boxed error returned by a [`crate::CredentialSource`].
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while obtaining an access token.
///
/// Errors are `Clone` because one failed refresh is reported to every caller
/// that was waiting on it, and kept in [`crate::RefreshStatus::last_error`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The manager was configured inconsistently (bad URL, unreadable CA
    /// bundle, invalid app name or policy). Not retryable without a fix.
    #[error("invalid token manager configuration: {reason}")]
    Config {
        /// What is wrong; built by this crate from configuration, never from secrets.
        reason: String,
    },

    /// Neither the environment nor the secret store holds client credentials
    /// for the app.
    #[error(
        "no OAuth client credentials for app `{app}`: set {env_id} and {env_secret}, \
         or put {store_id} and {store_secret} in the deployment secret store"
    )]
    MissingCredentials {
        /// The app name as configured.
        app: String,
        /// Environment variable holding the client id.
        env_id: String,
        /// Environment variable holding the client secret.
        env_secret: String,
        /// Secret-store key holding the client id.
        store_id: String,
        /// Secret-store key holding the client secret.
        store_secret: String,
    },

    /// One half of the id/secret pair is present in a source and the other is
    /// not. Refused rather than completed from another source, so an id and a
    /// secret from different places (one of them stale) are never paired.
    #[error(
        "incomplete OAuth client credentials for app `{app}`: {present} is set but {missing} is not"
    )]
    IncompleteCredentials {
        /// The app name as configured.
        app: String,
        /// Name of the variable/key that is set.
        present: String,
        /// Name of the variable/key that is missing or empty.
        missing: String,
    },

    /// A credential source failed (secret store unreachable, permission denied…).
    #[error("credential source failed while reading `{key}` for app `{app}`")]
    CredentialSource {
        /// The app name as configured.
        app: String,
        /// The variable/key being read.
        key: String,
        /// The source's own error; sources must not put secret values in it.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The token endpoint could not be reached or did not answer in time
    /// (DNS, TCP, TLS including an untrusted certificate, timeout).
    #[error("token endpoint request failed: {kind}")]
    Transport {
        /// Coarse classification.
        kind: TransportKind,
        /// The HTTP client's error, with the URL stripped.
        #[source]
        source: Arc<reqwest::Error>,
    },

    /// The token endpoint refused the request with an RFC 6749 error
    /// (e.g. `invalid_client` for a wrong or rotated-away secret).
    #[error("token endpoint refused the request: {code} (HTTP {status})")]
    OAuth {
        /// HTTP status of the response.
        status: u16,
        /// The RFC 6749 `error` code.
        code: OAuthErrorCode,
    },

    /// The token endpoint is rate limiting this client (HTTP 429).
    #[error("token endpoint is rate limiting this client (HTTP 429){}", fmt_retry_after(.retry_after))]
    RateLimited {
        /// The server's `Retry-After`, when given in seconds.
        retry_after: Option<Duration>,
    },

    /// Any other non-success status without a usable RFC 6749 error body
    /// (typically 5xx).
    #[error("token endpoint answered HTTP {status}")]
    HttpStatus {
        /// HTTP status of the response.
        status: u16,
    },

    /// A 200 response that does not satisfy the contract (not JSON, no
    /// `access_token`, `token_type` other than Bearer, oversized…).
    #[error("token endpoint sent an unusable response: {reason}")]
    InvalidResponse {
        /// Fixed description; never a parser message, which could quote the body.
        reason: &'static str,
    },
}

fn fmt_retry_after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}s", d.as_secs()),
        None => String::new(),
    }
}

impl AuthError {
    /// The RFC 6749 error code, if the endpoint sent one.
    pub fn oauth_code(&self) -> Option<OAuthErrorCode> {
        match self {
            Self::OAuth { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status, if the endpoint answered at all.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::OAuth { status, .. } | Self::HttpStatus { status } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
        }
    }

    pub(crate) fn transport(err: reqwest::Error) -> Self {
        let kind = if err.is_timeout() {
            TransportKind::Timeout
        } else if err.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Other
        };
        Self::Transport {
            kind,
            source: Arc::new(err.without_url()),
        }
    }
}

/// Coarse cause of an [`AuthError::Transport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// Connecting failed (refused, unreachable, TLS handshake/certificate).
    Connect,
    /// The request or connect timeout elapsed.
    Timeout,
    /// Anything else (connection reset mid-response, protocol error…).
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "could not connect",
            Self::Timeout => "timed out",
            Self::Other => "connection or protocol error",
        })
    }
}

/// The RFC 6749 section 5.2 error codes.
///
/// Codes outside this list map to [`OAuthErrorCode::Unrecognized`] rather than
/// being echoed, so a misbehaving server cannot smuggle text into our errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`: unknown client, wrong secret, disabled client.
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`: a requested scope is outside the client's set.
    InvalidScope,
    /// A code not defined by RFC 6749.
    Unrecognized,
}

impl OAuthErrorCode {
    /// Maps the wire code; unknown codes become [`OAuthErrorCode::Unrecognized`].
    pub fn from_code(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            _ => Self::Unrecognized,
        }
    }

    /// The wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::Unrecognized => "unrecognized error code",
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
