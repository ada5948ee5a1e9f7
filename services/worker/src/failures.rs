//! Classifying activity errors into Temporal application failures.
//!
//! Non-retryable (`CredentialNotFound`, `CredentialInvalid`, `Unauthorized`, `InvalidInput`,
//! `DestinationNotAllowed`, `ResponseTooLarge`): retrying cannot help until an operator acts. Everything else is `Transient` and retried by
//! the activity retry policy. Messages name references, stores, hosts and codes — never a
//! secret value.

use bulwark_secrets::SecretsError;
use bulwark_workflows::failure_type;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;

/// An activity failure with its type and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// One of [`failure_type`].
    pub kind: &'static str,
    /// What happened (safe to record in history).
    pub message: String,
}

impl Failure {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn non_retryable(&self) -> bool {
        failure_type::NON_RETRYABLE.contains(&self.kind)
    }

    pub fn into_activity_error(self) -> ActivityError {
        let non_retryable = self.non_retryable();
        let kind = self.kind;
        ActivityError::application(
            ApplicationFailure::builder(self)
                .type_name(kind.to_owned())
                .non_retryable(non_retryable)
                .build(),
        )
    }
}

/// Classifies a credential resolution error. The resolver's messages name the reference.
pub fn from_secrets(e: &SecretsError) -> Failure {
    let kind = if e.is_not_found() {
        failure_type::CREDENTIAL_NOT_FOUND
    } else if e.is_unavailable() {
        failure_type::TRANSIENT
    } else {
        match innermost(e) {
            SecretsError::PermissionDenied { .. } => failure_type::UNAUTHORIZED,
            SecretsError::Unavailable { .. }
            | SecretsError::Database { .. }
            | SecretsError::Io { .. } => failure_type::TRANSIENT,
            _ => failure_type::CREDENTIAL_INVALID,
        }
    };
    Failure::new(kind, e.to_string())
}

fn innermost(e: &SecretsError) -> &SecretsError {
    match e {
        SecretsError::Store { source, .. } => innermost(source),
        other => other,
    }
}

/// Classifies a failure to obtain an OAuth token for a credential.
pub fn from_auth(reference: &str, e: &bulwark_token_client::AuthError) -> Failure {
    use bulwark_token_client::AuthError as A;
    let kind = match e {
        A::OAuth { .. } => failure_type::UNAUTHORIZED,
        A::Config { .. } | A::MissingCredentials { .. } | A::IncompleteCredentials { .. } => {
            failure_type::CREDENTIAL_INVALID
        }
        A::HttpStatus { status, .. } if *status == 401 || *status == 403 => {
            failure_type::UNAUTHORIZED
        }
        _ => failure_type::TRANSIENT,
    };
    Failure::new(kind, format!("{reference}: obtaining an access token: {e}"))
}

/// Classifies an HTTP status of the called endpoint (`None` when it is a success).
pub fn from_http_status(reference: &str, url_host: &str, status: u16) -> Option<Failure> {
    match status {
        401 | 403 => Some(Failure::new(
            failure_type::UNAUTHORIZED,
            format!("{url_host} refused {reference} (HTTP {status})"),
        )),
        408 | 429 | 500..=599 => Some(Failure::new(
            failure_type::TRANSIENT,
            format!("{url_host} answered HTTP {status}"),
        )),
        _ => None,
    }
}

/// Classifies a Postgres error by SQLSTATE.
pub fn from_sqlx(reference: &str, database: &str, e: &sqlx::Error) -> Failure {
    if let Some(db) = e.as_database_error() {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        let kind = match code.as_str() {
            // invalid_password, invalid_authorization_specification, insufficient_privilege
            "28P01" | "28000" | "42501" => failure_type::UNAUTHORIZED,
            // invalid_catalog_name (no such database)
            "3D000" => failure_type::INVALID_INPUT,
            _ => failure_type::TRANSIENT,
        };
        // Postgres messages name the role and database, never the password.
        return Failure::new(
            kind,
            format!(
                "database `{database}` with {reference}: {} (SQLSTATE {code})",
                db.message()
            ),
        );
    }
    let what = match e {
        sqlx::Error::Io(_) => "connection failed",
        sqlx::Error::Tls(_) => "TLS failed",
        sqlx::Error::PoolTimedOut => "timed out",
        sqlx::Error::Protocol(_) => "protocol error",
        _ => "query failed",
    };
    Failure::new(
        failure_type::TRANSIENT,
        format!("database `{database}` with {reference}: {what}"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use bulwark_secrets::basic_ref;

    #[test]
    fn secrets_errors_are_classified() {
        let r = Box::new(basic_ref("demo-db"));
        let nf = from_secrets(&SecretsError::CredentialNotFound {
            reference: r.clone(),
        });
        assert_eq!(nf.kind, failure_type::CREDENTIAL_NOT_FOUND);
        assert!(nf.non_retryable());
        assert!(nf.message.contains("demo-db"), "{}", nf.message);

        let missing = from_secrets(&SecretsError::MissingField {
            reference: r.clone(),
            field: "password".into(),
        });
        assert_eq!(missing.kind, failure_type::CREDENTIAL_INVALID);

        let down = from_secrets(&SecretsError::Unavailable {
            store: "default".into(),
            reason: "connection refused".into(),
        });
        assert_eq!(down.kind, failure_type::TRANSIENT);
        assert!(!down.non_retryable());
    }

    #[test]
    fn http_statuses() {
        assert_eq!(
            from_http_status("c", "h", 401).unwrap().kind,
            failure_type::UNAUTHORIZED
        );
        assert_eq!(
            from_http_status("c", "h", 503).unwrap().kind,
            failure_type::TRANSIENT
        );
        assert!(from_http_status("c", "h", 200).is_none());
        assert!(from_http_status("c", "h", 404).is_none());
    }

    #[test]
    fn destination_and_size_failures_are_not_retried() {
        for kind in [
            failure_type::DESTINATION_NOT_ALLOWED,
            failure_type::RESPONSE_TOO_LARGE,
        ] {
            assert!(Failure::new(kind, "x").non_retryable(), "{kind}");
        }
        assert!(!Failure::new(failure_type::TRANSIENT, "x").non_retryable());
    }

    #[test]
    fn sqlx_non_database_errors_are_transient() {
        let f = from_sqlx("credential `demo-db`", "demo", &sqlx::Error::PoolTimedOut);
        assert_eq!(f.kind, failure_type::TRANSIENT);
    }
}
