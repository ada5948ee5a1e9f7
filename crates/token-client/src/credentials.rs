//! Discovering the OAuth client id and secret for an app.
//!
//! Order: the process environment (`BULWARK_<APP>_CLIENT_ID` /
//! `BULWARK_<APP>_CLIENT_SECRET`), then the deployment secret store
//! (`<app>_client_id` / `<app>_client_secret`). The store is reached through
//! [`CredentialSource`], so any store can be plugged in with a small adapter.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;

use crate::error::{AuthError, Result, SourceError};
use crate::secret::SecretString;

/// A read-only key/value view of somewhere secrets live.
///
/// Implementations return `Ok(None)` for an absent key and reserve `Err` for
/// the source itself failing. Errors must not contain secret values.
#[async_trait]
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// Looks up `key`.
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SourceError>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

#[async_trait]
impl CredentialSource for ProcessEnv {
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SourceError> {
        match std::env::var(key) {
            Ok(value) => Ok(Some(SecretString::new(value))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err("value is not valid UTF-8".into()),
        }
    }
}

/// An in-memory source, for tests and for values a service already holds.
///
/// `Debug` lists the keys only.
#[derive(Clone, Default)]
pub struct MemorySource {
    values: Arc<RwLock<HashMap<String, SecretString>>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a value (visible to every clone of this source).
    pub fn set(&self, key: impl Into<String>, value: impl Into<SecretString>) {
        self.values
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.into(), value.into());
    }

    /// Removes a value.
    pub fn remove(&self, key: &str) {
        self.values
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Builder-style [`MemorySource::set`].
    pub fn with(self, key: impl Into<String>, value: impl Into<SecretString>) -> Self {
        self.set(key, value);
        self
    }
}

impl fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<&str> = values.keys().map(String::as_str).collect();
        keys.sort_unstable();
        f.debug_struct("MemorySource").field("keys", &keys).finish()
    }
}

#[async_trait]
impl CredentialSource for MemorySource {
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SourceError> {
        Ok(self
            .values
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned())
    }
}

/// The variable and key names credentials are looked up under for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialNames {
    /// `BULWARK_<APP>_CLIENT_ID`
    pub env_id: String,
    /// `BULWARK_<APP>_CLIENT_SECRET`
    pub env_secret: String,
    /// `<app>_client_id`
    pub store_id: String,
    /// `<app>_client_secret`
    pub store_secret: String,
}

impl CredentialNames {
    /// Names for `app`: upper-cased for the environment, lower-cased for the
    /// store, `-` becoming `_` in both.
    pub fn for_app(app: &str) -> Self {
        let upper = app.to_ascii_uppercase().replace('-', "_");
        let lower = app.to_ascii_lowercase().replace('-', "_");
        Self {
            env_id: format!("BULWARK_{upper}_CLIENT_ID"),
            env_secret: format!("BULWARK_{upper}_CLIENT_SECRET"),
            store_id: format!("{lower}_client_id"),
            store_secret: format!("{lower}_client_secret"),
        }
    }
}

/// Where a credential pair was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialOrigin {
    /// `BULWARK_<APP>_CLIENT_ID` / `_SECRET`.
    Environment,
    /// The deployment secret store.
    SecretStore,
}

/// A discovered client id and secret. `Debug` redacts the secret.
#[derive(Clone)]
pub struct ClientCredentials {
    client_id: String,
    client_secret: SecretString,
    origin: CredentialOrigin,
}

impl ClientCredentials {
    /// The OAuth client id (not a secret).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret.
    pub fn client_secret(&self) -> &SecretString {
        &self.client_secret
    }

    /// Where the pair came from.
    pub fn origin(&self) -> CredentialOrigin {
        self.origin
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("origin", &self.origin)
            .finish()
    }
}

/// Finds the credential pair for `app`; see the module docs for the order.
///
/// Empty values count as absent, because an unset compose substitution yields
/// `VAR=` rather than no variable.
pub async fn discover(
    app: &str,
    names: &CredentialNames,
    env: &dyn CredentialSource,
    store: Option<&dyn CredentialSource>,
) -> Result<ClientCredentials> {
    if let Some((id, secret)) = read_pair(app, env, &names.env_id, &names.env_secret).await? {
        return Ok(ClientCredentials {
            client_id: id,
            client_secret: secret,
            origin: CredentialOrigin::Environment,
        });
    }
    if let Some(store) = store {
        if let Some((id, secret)) =
            read_pair(app, store, &names.store_id, &names.store_secret).await?
        {
            return Ok(ClientCredentials {
                client_id: id,
                client_secret: secret,
                origin: CredentialOrigin::SecretStore,
            });
        }
    }
    Err(AuthError::MissingCredentials {
        app: app.to_owned(),
        env_id: names.env_id.clone(),
        env_secret: names.env_secret.clone(),
        store_id: names.store_id.clone(),
        store_secret: names.store_secret.clone(),
    })
}

async fn read_pair(
    app: &str,
    source: &dyn CredentialSource,
    id_key: &str,
    secret_key: &str,
) -> Result<Option<(String, SecretString)>> {
    let id = read(app, source, id_key).await?;
    let secret = read(app, source, secret_key).await?;
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some((id.expose_secret().to_owned(), secret))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(AuthError::IncompleteCredentials {
            app: app.to_owned(),
            present: id_key.to_owned(),
            missing: secret_key.to_owned(),
        }),
        (None, Some(_)) => Err(AuthError::IncompleteCredentials {
            app: app.to_owned(),
            present: secret_key.to_owned(),
            missing: id_key.to_owned(),
        }),
    }
}

async fn read(app: &str, source: &dyn CredentialSource, key: &str) -> Result<Option<SecretString>> {
    match source.get(key).await {
        Ok(Some(v)) if !v.is_empty() => Ok(Some(v)),
        Ok(_) => Ok(None),
        Err(e) => Err(AuthError::CredentialSource {
            app: app.to_owned(),
            key: key.to_owned(),
            source: Arc::from(e),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub(crate) fn creds(id: &str, secret: &str) -> ClientCredentials {
        ClientCredentials {
            client_id: id.to_owned(),
            client_secret: SecretString::new(secret),
            origin: CredentialOrigin::Environment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "order-worker";

    fn names() -> CredentialNames {
        CredentialNames::for_app(APP)
    }

    #[test]
    fn names_follow_the_convention() {
        let n = CredentialNames::for_app("Order-Worker");
        assert_eq!(n.env_id, "BULWARK_ORDER_WORKER_CLIENT_ID");
        assert_eq!(n.env_secret, "BULWARK_ORDER_WORKER_CLIENT_SECRET");
        assert_eq!(n.store_id, "order_worker_client_id");
        assert_eq!(n.store_secret, "order_worker_client_secret");
    }

    #[tokio::test]
    async fn environment_beats_store() {
        let n = names();
        let env = MemorySource::new()
            .with(&n.env_id, "env-id")
            .with(&n.env_secret, "env-secret");
        let store = MemorySource::new()
            .with(&n.store_id, "store-id")
            .with(&n.store_secret, "store-secret");
        let c = discover(APP, &n, &env, Some(&store)).await.unwrap();
        assert_eq!(c.client_id(), "env-id");
        assert_eq!(c.client_secret().expose_secret(), "env-secret");
        assert_eq!(c.origin(), CredentialOrigin::Environment);
    }

    #[tokio::test]
    async fn store_used_when_environment_missing_or_empty() {
        let n = names();
        let store = MemorySource::new()
            .with(&n.store_id, "store-id")
            .with(&n.store_secret, "store-secret");
        let c = discover(APP, &n, &MemorySource::new(), Some(&store))
            .await
            .unwrap();
        assert_eq!(c.client_id(), "store-id");
        assert_eq!(c.origin(), CredentialOrigin::SecretStore);

        let empty_env = MemorySource::new()
            .with(&n.env_id, "")
            .with(&n.env_secret, "");
        let c = discover(APP, &n, &empty_env, Some(&store)).await.unwrap();
        assert_eq!(c.origin(), CredentialOrigin::SecretStore);
    }

    #[tokio::test]
    async fn missing_everywhere_names_the_variables() {
        let n = names();
        let err = discover(APP, &n, &MemorySource::new(), Some(&MemorySource::new()))
            .await
            .unwrap_err();
        let msg = err.to_string();
        for needle in [
            "order-worker",
            "BULWARK_ORDER_WORKER_CLIENT_ID",
            "BULWARK_ORDER_WORKER_CLIENT_SECRET",
            "order_worker_client_id",
            "order_worker_client_secret",
        ] {
            assert!(msg.contains(needle), "{msg:?} lacks {needle}");
        }
        assert!(matches!(err, AuthError::MissingCredentials { .. }));
        // Same without any store configured.
        let err = discover(APP, &n, &MemorySource::new(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::MissingCredentials { .. }));
    }

    #[tokio::test]
    async fn half_a_pair_is_refused_not_mixed() {
        let n = names();
        let env = MemorySource::new().with(&n.env_id, "env-id");
        let store = MemorySource::new()
            .with(&n.store_id, "store-id")
            .with(&n.store_secret, "store-secret-value");
        let err = discover(APP, &n, &env, Some(&store)).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("BULWARK_ORDER_WORKER_CLIENT_ID is set"),
            "{msg}"
        );
        assert!(
            msg.contains("BULWARK_ORDER_WORKER_CLIENT_SECRET is not"),
            "{msg}"
        );
        assert!(!msg.contains("env-id") && !msg.contains("store-secret-value"));
    }

    #[derive(Debug)]
    struct Broken;

    #[async_trait]
    impl CredentialSource for Broken {
        async fn get(&self, _key: &str) -> Result<Option<SecretString>, SourceError> {
            Err("store unreachable".into())
        }
    }

    #[tokio::test]
    async fn source_failure_names_the_key() {
        let n = names();
        let err = discover(APP, &n, &MemorySource::new(), Some(&Broken))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("order_worker_client_id"), "{err}");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(source, "store unreachable");
    }
}
