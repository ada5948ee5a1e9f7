//! [`CredentialRef`]: the only thing about a credential that may travel through workflow
//! inputs, history and logs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Result, SecretsError};

/// The store a reference uses when it does not name one.
pub const DEFAULT_STORE: &str = "default";

const MAX_NAME_LEN: usize = 256;

/// The kind of credential a reference resolves to.
///
/// Serialized as a lower-case string (`"basic"`, `"api_key"`, `"bearer_token"`,
/// `"oauth_client"`, `"certificate"`, or the registered name of a custom type).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CredentialType {
    /// Username and password.
    Basic,
    /// An API key sent in a header.
    ApiKey,
    /// A bearer token, possibly with an expiry.
    BearerToken,
    /// OAuth2 client credentials (and optionally a current token pair).
    OAuthClient,
    /// A client certificate and its private key.
    Certificate,
    /// A type registered at run time with [`crate::CredentialRegistry::register`].
    Custom(String),
}

impl CredentialType {
    /// The wire name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Basic => "basic",
            Self::ApiKey => "api_key",
            Self::BearerToken => "bearer_token",
            Self::OAuthClient => "oauth_client",
            Self::Certificate => "certificate",
            Self::Custom(name) => name,
        }
    }

    /// True for the five built-in types.
    #[must_use]
    pub fn is_builtin(&self) -> bool {
        !matches!(self, Self::Custom(_))
    }

    /// Checks a custom type name: 1–64 characters of `a-z 0-9 _ . -`, starting with a letter.
    pub(crate) fn validate_custom_name(name: &str) -> bool {
        let mut chars = name.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
            && name.len() <= 64
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    }
}

impl fmt::Display for CredentialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialType {
    type Err = SecretsError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "basic" => Self::Basic,
            "api_key" => Self::ApiKey,
            "bearer_token" => Self::BearerToken,
            "oauth_client" => Self::OAuthClient,
            "certificate" => Self::Certificate,
            other if Self::validate_custom_name(other) => Self::Custom(other.to_owned()),
            other => {
                return Err(SecretsError::InvalidCredentialType {
                    type_name: other.chars().take(64).collect(),
                });
            }
        })
    }
}

impl Serialize for CredentialType {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CredentialType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A reference to a credential: which secret (`name`), what shape it has
/// (`credential_type`) and which configured secret store holds it (`store_name`, default
/// `"default"`).
///
/// A reference carries no secret material. It is safe to log, to put in Temporal workflow
/// inputs and to show in errors; the worker turns it into a live credential with
/// [`crate::Resolver::resolve`] at the moment it is needed.
///
/// ```
/// use bulwark_secrets::{basic_ref, CredentialRef};
/// let r = basic_ref("github").with_store("vault");
/// let json = serde_json::to_string(&r).unwrap();
/// assert_eq!(json, r#"{"name":"github","credential_type":"basic","store_name":"vault"}"#);
/// let back: CredentialRef = serde_json::from_str(r#"{"name":"github","credential_type":"basic"}"#).unwrap();
/// assert_eq!(back.store_name, "default");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRef {
    /// Name of the secret in the store (a key such as `github` or `team/github`).
    pub name: String,
    /// The credential type the secret is parsed into.
    pub credential_type: CredentialType,
    /// Name of the component (secret store) that holds it.
    #[serde(default = "default_store")]
    pub store_name: String,
}

fn default_store() -> String {
    DEFAULT_STORE.to_owned()
}

impl CredentialRef {
    /// A reference to `name` of the given type in the default store.
    pub fn new(name: impl Into<String>, credential_type: CredentialType) -> Self {
        Self {
            name: name.into(),
            credential_type,
            store_name: default_store(),
        }
    }

    /// A reference to a credential of a registered custom type.
    pub fn custom(name: impl Into<String>, type_name: impl Into<String>) -> Self {
        Self::new(name, CredentialType::Custom(type_name.into()))
    }

    /// The same reference routed to another store.
    #[must_use]
    pub fn with_store(mut self, store_name: impl Into<String>) -> Self {
        self.store_name = store_name.into();
        self
    }

    /// Checks the reference is well formed: name and store non-empty, at most 256
    /// characters, no control characters; the store name also free of `/`.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &'static str| {
            Err(SecretsError::InvalidReference {
                reference: Box::new(self.sanitized()),
                reason,
            })
        };
        if self.name.trim().is_empty() {
            return bad("name is empty");
        }
        if self.name.len() > MAX_NAME_LEN || self.name.chars().any(char::is_control) {
            return bad("name is too long or contains control characters");
        }
        if self.store_name.trim().is_empty() {
            return bad("store name is empty");
        }
        if self.store_name.len() > MAX_NAME_LEN
            || self.store_name.chars().any(|c| c.is_control() || c == '/')
        {
            return bad("store name is too long or contains '/' or control characters");
        }
        if let CredentialType::Custom(t) = &self.credential_type {
            if !CredentialType::validate_custom_name(t) {
                return bad("credential type name is invalid");
            }
        }
        Ok(())
    }

    /// A copy safe to embed in an error even when the reference itself is malformed
    /// (control characters escaped, length bounded).
    pub(crate) fn sanitized(&self) -> Self {
        fn clean(s: &str) -> String {
            s.chars()
                .take(MAX_NAME_LEN)
                .flat_map(char::escape_default)
                .collect()
        }
        Self {
            name: clean(&self.name),
            credential_type: match &self.credential_type {
                CredentialType::Custom(t) => CredentialType::Custom(clean(t)),
                other => other.clone(),
            },
            store_name: clean(&self.store_name),
        }
    }
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "credential `{}` (type `{}`, store `{}`)",
            self.name, self.credential_type, self.store_name
        )
    }
}

/// A reference to a [`crate::BasicCredential`] in the default store.
pub fn basic_ref(name: impl Into<String>) -> CredentialRef {
    CredentialRef::new(name, CredentialType::Basic)
}

/// A reference to an [`crate::ApiKeyCredential`] in the default store.
pub fn api_key_ref(name: impl Into<String>) -> CredentialRef {
    CredentialRef::new(name, CredentialType::ApiKey)
}

/// A reference to a [`crate::BearerTokenCredential`] in the default store.
pub fn bearer_token_ref(name: impl Into<String>) -> CredentialRef {
    CredentialRef::new(name, CredentialType::BearerToken)
}

/// A reference to an [`crate::OAuthClientCredential`] in the default store.
pub fn oauth_client_ref(name: impl Into<String>) -> CredentialRef {
    CredentialRef::new(name, CredentialType::OAuthClient)
}

/// A reference to a [`crate::CertificateCredential`] in the default store.
pub fn certificate_ref(name: impl Into<String>) -> CredentialRef {
    CredentialRef::new(name, CredentialType::Certificate)
}
