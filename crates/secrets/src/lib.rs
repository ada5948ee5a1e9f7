//! # bulwark-secrets — credentials by reference
//!
//! Workflow inputs carry [`CredentialRef`]s (`name`, `credential_type`, `store_name`),
//! never secret values. A worker activity hands the reference to a [`Resolver`], which
//! routes it to the secret store configured under `store_name`, fetches the fields and
//! parses them into a typed [`Credential`].
//!
//! * **Typed credentials** ([`BasicCredential`], [`ApiKeyCredential`],
//!   [`BearerTokenCredential`], [`OAuthClientCredential`], [`CertificateCredential`], and
//!   custom types registered in a [`CredentialRegistry`]) keep secret material in
//!   [`Secret`], whose `Debug`, `Display` and `Serialize` print `[REDACTED]` and whose
//!   buffer is zeroized on drop.
//! * **Stores** implement [`SecretStore`]: environment variables ([`EnvStore`]), a JSON
//!   file re-read when it changes ([`FileStore`]), HashiCorp Vault KV v2
//!   ([`VaultStore`]) and an encrypted, versioned Postgres store ([`PostgresStore`],
//!   AES-256-GCM envelope encryption with rotatable master keys).
//! * **Component files** ([`ComponentSet`]): Dapr-style YAML in a `components/` directory
//!   configures the stores.
//! * **Destinations**: a credential may carry `allowed_hosts` ([`AllowedHosts`]); callers
//!   check a destination with [`AllowedHosts::permits`] before sending the credential.
//! * **Fail closed**: a missing store, secret or field, an empty field, an unreachable
//!   store or a failed integrity check is a [`SecretsError`] that names the reference,
//!   store, key or field — never a value.
//!
//! ```no_run
//! # async fn demo() -> bulwark_secrets::Result<()> {
//! use bulwark_secrets::{basic_ref, Resolver};
//! let resolver = Resolver::from_components_dir("components").await?.build();
//! let cred = resolver.resolve(&basic_ref("github").with_store("vault")).await?;
//! let basic = cred.as_basic().expect("a basic credential");
//! println!("{cred}"); // basic credential (username `bot`, password [REDACTED])
//! let _password: &str = basic.password.expose(); // only at the point of use
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod allowed_hosts;
pub mod components;
pub mod config;
pub mod credential;
pub mod error;
pub mod reference;
pub mod resolver;
pub mod secret;
pub mod store;

pub use allowed_hosts::{AllowedHosts, AllowedHostsError, HostPattern};
pub use components::{Component, ComponentSet, ComponentType};
pub use config::{ConfigValue, ResolvedConfig};
pub use credential::{
    ApiKeyCredential, BasicCredential, BearerTokenCredential, CertificateCredential, Credential,
    CredentialRegistry, Custom, CustomCredential, Fields, FieldsCredential, OAuthClientCredential,
};
pub use error::{Result, SecretsError};
pub use reference::{
    CredentialRef, CredentialType, DEFAULT_STORE, api_key_ref, basic_ref, bearer_token_ref,
    certificate_ref, oauth_client_ref,
};
pub use resolver::{DEFAULT_CACHE_TTL, DEFAULT_DEPLOYMENT_SECRET, Resolver, ResolverBuilder};
pub use secret::{REDACTED, Secret};
pub use store::postgres::PostgresConfig;
pub use store::vault::{VaultConfig, VaultToken};
pub use store::{
    EnvStore, FileStore, MasterKey, MasterKeyring, PostgresStore, RewrapReport, SecretMap,
    SecretStore, StoreRegistry, VaultStore, VersionInfo,
};
