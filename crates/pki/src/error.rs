use std::path::PathBuf;

/// Everything that can go wrong while creating, loading or checking identity material.
///
/// Messages name the file, item or value at fault so an operator can act on them; they
/// never contain key material or token contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or renaming a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file of a change could not be staged because its file system is full. `path` is the
    /// file that was to be replaced (not the temporary): nothing was renamed into place.
    #[error(
        "{action} {path}: the file system is full ({source}); nothing was replaced, the previous files stay in service; free space on it and retry"
    )]
    NoSpace {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A secret file grants read access to a group (mode 0640) and its replacement could not
    /// be given that group, usually because the writer is not a member of it.
    #[error(
        "cannot keep group {gid}'s read access to {path} (the writing process must be a member of group {gid}, e.g. compose `group_add`)"
    )]
    GroupGrant {
        path: PathBuf,
        gid: u32,
        #[source]
        source: std::io::Error,
    },

    /// The output location exists but is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),

    /// A PEM, JSON or JWT file could not be parsed.
    #[error("{path}: corrupted or unparsable: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    /// A private key does not belong to the certificate it is paired with.
    #[error("{key} does not match the public key in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },

    /// A certificate was not signed by the issuer it is supposed to chain to.
    #[error("{cert} was not issued by {issuer}")]
    NotIssuedBy { cert: PathBuf, issuer: PathBuf },

    /// Only one half of a certificate/key pair is present; regenerating it would silently
    /// replace the half that exists.
    #[error("{present} exists but {missing} is missing")]
    IncompletePair { present: PathBuf, missing: PathBuf },

    /// A configuration value (SAN, namespace, identity, duration, algorithm) is invalid.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidInput {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// `rotate` was asked for an item this inventory does not know.
    #[error("unknown item {0:?}; run `inspect` to list the items")]
    UnknownItem(String),

    /// Certificate or key generation failed inside the crypto library.
    #[error("generating {what}: {reason}")]
    Generate { what: String, reason: String },

    /// Several problems were found; nothing was written.
    #[error("{}", join_errors(.0))]
    Several(Vec<Error>),

    /// A JWT failed verification. The reason is a fixed, non-secret description.
    #[error("token rejected: {0}")]
    Token(TokenError),

    /// Another process (init or control) held the certs directory's lock for the whole wait.
    #[error(
        "{path} is held by another writer (bulwark-init or bulwark-control) and was not released within {waited_secs}s; retry once it has finished"
    )]
    Locked { path: PathBuf, waited_secs: u64 },

    /// A leaf re-issue was asked for an item that is not a leaf certificate (a CA, a bundle,
    /// a token, or an unknown id).
    #[error("{0:?} is not a leaf certificate of this appliance")]
    NotALeaf(String),

    /// A CA overlap was asked for something other than an issuing CA. The root CA is
    /// rotated from the command line (`bulwark-init rotate ca`).
    #[error("{0:?} is not an issuing CA; the root CA is rotated from the command line")]
    NotAnIssuingCa(String),

    /// A prepared JWT key switch no longer applies: the signing key or the pending next key
    /// changed since `prepare` (typically an emergency revoke meanwhile). Nothing was changed.
    #[error(
        "the signing key changed while this rotation waited (kid {kid} signs now, e.g. after a revoke); nothing was switched"
    )]
    SigningKeyChanged { kid: String },

    /// Ending a CA overlap would leave a trust bundle without the CA that issues the current
    /// certificates. Nothing was changed.
    #[error("{file} does not contain the current {ca}; not changing it")]
    BundleLacksCurrentCa { ca: String, file: PathBuf },
}

/// Why a JWT was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("algorithm is not allowed")]
    DisallowedAlgorithm,
    #[error("no key with this kid")]
    UnknownKey,
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("missing exp claim")]
    MissingExpiry,
    #[error("wrong audience")]
    WrongAudience,
    /// `iat` is absent, so the lifetime cannot be bounded. Bulwark always mints `iat`.
    #[error("missing iat claim")]
    MissingIssuedAt,
    /// `exp - iat` exceeds the verifier's maximum lifetime: a token nobody here would mint,
    /// e.g. one made with a leaked key to outlive a revocation.
    #[error("lifetime exceeds the maximum")]
    LifetimeTooLong,
}

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Self {
        Error::Token(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn join_errors(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
