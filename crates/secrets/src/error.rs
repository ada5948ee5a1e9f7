//! The crate's error type.

use std::path::PathBuf;

use crate::reference::CredentialRef;

/// Result alias for this crate.
pub type Result<T, E = SecretsError> = std::result::Result<T, E>;

/// Everything that can go wrong resolving a credential.
///
/// **No variant ever carries a secret value.** Variants name the credential reference
/// (name, type, store), the store, the key and the field; reasons are fixed texts written
/// by this crate, never text taken from a secret, a stored config or an upstream response
/// body. Resolution fails closed: every problem is an error, nothing degrades to `None` or
/// to an empty credential.
///
/// The enum is `#[non_exhaustive]`; match the variants you handle and keep a fallback arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    // ---- resolving a reference -------------------------------------------------------
    /// The reference is malformed (empty name, control characters, bad store name).
    #[error("{reference}: invalid reference: {reason}")]
    InvalidReference {
        /// The reference, with control characters escaped.
        reference: Box<CredentialRef>,
        /// What is wrong.
        reason: &'static str,
    },
    /// The reference names a store no component defines.
    #[error("{reference}: no secret store named `{}` is configured (known: {known})", reference.store_name)]
    UnknownStore {
        /// The reference.
        reference: Box<CredentialRef>,
        /// Comma-separated names of the configured stores.
        known: String,
    },
    /// The store has no secret under the reference's name.
    #[error("{reference}: not found in the secret store")]
    CredentialNotFound {
        /// The reference.
        reference: Box<CredentialRef>,
    },
    /// A required field is absent.
    #[error("{reference}: required field `{field}` is missing")]
    MissingField {
        /// The reference.
        reference: Box<CredentialRef>,
        /// The field.
        field: String,
    },
    /// A required field is present but empty or only whitespace.
    #[error("{reference}: required field `{field}` is empty")]
    EmptyField {
        /// The reference.
        reference: Box<CredentialRef>,
        /// The field.
        field: String,
    },
    /// A field has a value of the wrong shape.
    #[error("{reference}: field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The reference.
        reference: Box<CredentialRef>,
        /// The field.
        field: String,
        /// What is wrong (never the value).
        reason: String,
    },
    /// The reference's custom credential type is not registered.
    #[error("{reference}: credential type is not registered")]
    UnknownCredentialType {
        /// The reference.
        reference: Box<CredentialRef>,
    },
    /// The store failed while resolving the reference (unavailable, denied, integrity…).
    #[error("{reference}: {source}")]
    Store {
        /// The reference.
        reference: Box<CredentialRef>,
        /// What the store reported.
        #[source]
        source: Box<SecretsError>,
    },

    // ---- credential types ------------------------------------------------------------
    /// A credential type name is not valid.
    #[error(
        "invalid credential type name `{type_name}` (use a-z, 0-9, `_`, `.`, `-`, starting with a letter)"
    )]
    InvalidCredentialType {
        /// The name (truncated).
        type_name: String,
    },
    /// A custom type was registered twice or under a built-in name.
    #[error("credential type `{type_name}` is already registered")]
    DuplicateCredentialType {
        /// The name.
        type_name: String,
    },

    // ---- stores ----------------------------------------------------------------------
    /// The store answered that the key does not exist (or is deleted).
    #[error("secret store `{store}`: no secret `{key}`")]
    NotFound {
        /// Store name.
        store: String,
        /// Key (for a field of a secret, `secret#field`).
        key: String,
    },
    /// The store could not be reached or answered with a server error.
    #[error("secret store `{store}` is unavailable: {reason}")]
    Unavailable {
        /// Store name.
        store: String,
        /// Why (transport error class or HTTP status; never a response body).
        reason: String,
    },
    /// The store refused the credentials this process presented.
    #[error("secret store `{store}`: permission denied reading `{key}`")]
    PermissionDenied {
        /// Store name.
        store: String,
        /// Key.
        key: String,
    },
    /// A key is not acceptable for the store (empty, `..`, absolute path, bad characters).
    #[error("secret store `{store}`: invalid key: {reason}")]
    InvalidKey {
        /// Store name.
        store: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The store answered with something that is not the expected shape.
    #[error("secret store `{store}`: malformed response for `{key}`: {reason}")]
    MalformedResponse {
        /// Store name.
        store: String,
        /// Key.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The store does not support writing.
    #[error("secret store `{store}` is read-only")]
    ReadOnly {
        /// Store name.
        store: String,
    },
    /// Authenticated decryption failed: the ciphertext, its wrapped data key, or its
    /// binding to (name, version) was altered, or the master key with this id is not the
    /// one that wrapped it.
    #[error("secret store `{store}`: integrity check failed for `{key}` version {version}")]
    Integrity {
        /// Store name.
        store: String,
        /// Key.
        key: String,
        /// Version.
        version: i32,
    },
    /// The value was wrapped under a master key that is not loaded.
    #[error("secret store `{store}`: master key `{key_id}` needed for `{key}` is not loaded")]
    UnknownMasterKey {
        /// Store name.
        store: String,
        /// Key.
        key: String,
        /// Id of the missing master key.
        key_id: String,
    },
    /// A master key could not be loaded.
    #[error("master key: {reason}")]
    MasterKey {
        /// What is wrong (never key material).
        reason: String,
    },
    /// A database error.
    #[error("secret store `{store}`: database error")]
    Database {
        /// Store name.
        store: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// Cryptographic failure (random generator or sealing).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),

    // ---- files and configuration -----------------------------------------------------
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON secrets file is not valid JSON (position only, never content).
    #[error("{}: invalid JSON at line {line}, column {column}", path.display())]
    FileFormat {
        /// The file.
        path: PathBuf,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
    },
    /// A component file is not valid YAML.
    #[error("{}: invalid YAML{}", path.display(), location.as_ref().map(|(l, c)| format!(" at line {l}, column {c}")).unwrap_or_default())]
    ComponentSyntax {
        /// The file.
        path: PathBuf,
        /// Line and column, when known.
        location: Option<(usize, usize)>,
    },
    /// A component file has a bad, missing or unknown key.
    #[error("{}: `{key}`: {reason}", path.display())]
    Component {
        /// The file.
        path: PathBuf,
        /// The offending key, as a path (`spec.metadata[vaultAddr]`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Two component files define the same name.
    #[error("component `{name}` is defined twice: {} and {}", first.display(), second.display())]
    DuplicateComponent {
        /// The component name.
        name: String,
        /// First file.
        first: PathBuf,
        /// Second file.
        second: PathBuf,
    },

    // ---- credential configs and deployment secrets -----------------------------------
    /// A credential config id is not acceptable (path traversal, bad characters).
    #[error("invalid credential config id {id:?}: use 1-128 characters of A-Z a-z 0-9 _ -")]
    InvalidConfigId {
        /// The id (truncated).
        id: String,
    },
    /// No credential config has this id.
    #[error("credential config `{id}` not found")]
    ConfigNotFound {
        /// The id.
        id: String,
    },
    /// A credential config is not a JSON object, or not JSON.
    #[error("credential config `{id}`: {reason}")]
    InvalidConfig {
        /// The id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A `secret://` reference in a config is malformed or cannot be satisfied.
    #[error("credential config `{id}`: at `{pointer}`: {reason}")]
    SecretReference {
        /// The config id.
        id: String,
        /// JSON pointer of the field holding the reference.
        pointer: String,
        /// What is wrong (names store, key and field, never a value).
        reason: String,
    },
    /// A development-only operation was refused because `BULWARK_ENV=production`.
    #[error("{operation} is for development only and is refused when BULWARK_ENV=production")]
    ProductionRefused {
        /// The operation.
        operation: &'static str,
    },
}

impl SecretsError {
    /// True for "does not exist" errors (as opposed to "could not find out").
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound { .. }
            | Self::CredentialNotFound { .. }
            | Self::ConfigNotFound { .. } => true,
            Self::Store { source, .. } => source.is_not_found(),
            _ => false,
        }
    }

    /// True when the store could not be reached (retrying later may help).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Database { source, .. } => !matches!(source, sqlx::Error::RowNotFound),
            Self::Store { source, .. } => source.is_unavailable(),
            _ => false,
        }
    }
}
