//! Why a rotation (or one of its checks) did not finish. The texts are what the operator reads
//! on the job page and in the audit log: each says what is still in service and what to do.
//! None carries a secret value: only ids, kids, fingerprints, addresses and file names.

use std::path::PathBuf;

use crate::admin::probe::ProbeError;

/// A failed rotation step. A failure never leaves half-written material behind: pki writes
/// are atomic, and every step that changes the certs directory runs under its lock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// bulwark-pki refused or failed the change; the previous material stays in service.
    #[error(transparent)]
    Pki(#[from] bulwark_pki::Error),
    /// The blocking task running a pki step panicked or was cancelled.
    #[error("rotation task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A database statement of the rotation failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// `manifest.json` could not be read.
    #[error("reading {}: {source}", path.display())]
    ManifestRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `manifest.json` is not a manifest.
    #[error("parsing {}: {source}", path.display())]
    ManifestParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A fresh handshake did not show the rotated server certificate in time.
    #[error(
        "the new certificate was not observed on {address} within {waited_secs}s ({last}); the previous certificate remains valid, so nothing is broken; retry the check by rotating again or wait for the server's refresh"
    )]
    CertNotObserved {
        address: String,
        waited_secs: u64,
        /// What the last handshake showed (a fingerprint or the probe's error).
        last: String,
    },
    /// Temporal kept refusing tokens of the published next key.
    #[error(
        "Temporal at {address} still refuses tokens signed by kid {kid}; the old key keeps signing; retry later (the new key stays published)"
    )]
    NewKeyRefused { address: String, kid: String },
    /// Temporal could not be asked whether it accepts the next key.
    #[error(
        "could not check the new key against Temporal ({0}); the old key keeps signing; retry later"
    )]
    NewKeyUnchecked(#[source] ProbeError),
    /// Without a Temporal to ask: the next key's token does not verify against jwks.json.
    #[error("a token signed by the new key does not verify against the published jwks.json: {0}")]
    NewKeyUnverified(#[source] bulwark_pki::TokenError),
    /// The switch happened; only the static tokens are still signed by the old key.
    #[error(
        "the new key signs, but re-issuing the static tokens failed ({0}); the old tokens stay valid until they expire; use \"Re-issue static tokens\" to retry"
    )]
    TokensNotReissued(#[source] bulwark_pki::Error),
    /// The emergency revoke changed nothing.
    #[error("revoking failed ({0}); nothing was changed, the current key still signs")]
    RevokeFailed(#[source] bulwark_pki::Error),
    /// The revoke is on disk, but Temporal kept accepting the revoked key.
    #[error(
        "the key is revoked on disk, but Temporal at {address} still accepts tokens signed by it after {waited_secs}s; check its JWKS refresh (jwtKeyProvider.refreshInterval)"
    )]
    RevokedKeyAccepted { address: String, waited_secs: u64 },
    /// The revoke is on disk, but Temporal could not be asked.
    #[error("the key is revoked on disk, but Temporal could not be checked ({0})")]
    RevokedKeyUnchecked(#[source] ProbeError),
    /// The OAuth client does not exist.
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    /// The OAuth secret rotation was refused by the database (details in the control log).
    #[error("the database refused the change; the previous secret is unchanged")]
    SecretUnchanged,
    /// No stored credential of that name.
    #[error("no stored credential named {0:?}")]
    UnknownCredential(String),
    /// The stored credential could not be read.
    #[error("reading {name:?}: {source}")]
    CredentialRead {
        name: String,
        #[source]
        source: bulwark_secrets::SecretsError,
    },
    /// The form named no field, or one the credential does not have.
    #[error("choose one of the fields of {name:?}: {fields}")]
    UnknownField { name: String, fields: String },
    /// The new credential version could not be written.
    #[error("writing a new version of {name:?}: {source}")]
    CredentialWrite {
        name: String,
        #[source]
        source: bulwark_secrets::SecretsError,
    },
    /// A deployment secret store file could not be read.
    #[error("reading {}: {source}", path.display())]
    DeploymentSecretRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A deployment secret store file is not a JSON object.
    #[error("{}: not a JSON object: {source}", path.display())]
    DeploymentSecretParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A deployment secret store path has no directory or file name to write through.
    #[error("{}: not a file in a directory", .0.display())]
    DeploymentSecretPath(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operators (and runbooks) know these texts: they say what is still in service.
    #[test]
    fn texts_say_what_stays_in_service() {
        let e = RotationError::CertNotObserved {
            address: "temporal:7233".into(),
            waited_secs: 150,
            last: "still presenting ab12".into(),
        };
        assert_eq!(
            e.to_string(),
            "the new certificate was not observed on temporal:7233 within 150s (still presenting ab12); the previous certificate remains valid, so nothing is broken; retry the check by rotating again or wait for the server's refresh"
        );
        let e = RotationError::NewKeyRefused {
            address: "temporal:7233".into(),
            kid: "k2".into(),
        };
        assert_eq!(
            e.to_string(),
            "Temporal at temporal:7233 still refuses tokens signed by kid k2; the old key keeps signing; retry later (the new key stays published)"
        );
        let e = RotationError::TokensNotReissued(bulwark_pki::Error::UnknownItem("x".into()));
        assert!(e.to_string().starts_with(
            "the new key signs, but re-issuing the static tokens failed (unknown item \"x\""
        ));
        let e = RotationError::RevokeFailed(bulwark_pki::Error::UnknownItem("x".into()));
        assert!(
            e.to_string()
                .ends_with("; nothing was changed, the current key still signs")
        );
        // pki's own refusals pass through unchanged.
        let e = RotationError::from(bulwark_pki::Error::SigningKeyChanged { kid: "k3".into() });
        assert_eq!(
            e.to_string(),
            "the signing key changed while this rotation waited (kid k3 signs now, e.g. after a revoke); nothing was switched"
        );
        assert_eq!(
            RotationError::UnknownClient("worker".into()).to_string(),
            "unknown client \"worker\""
        );
    }
}
