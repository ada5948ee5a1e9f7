//! [`Resolver`]: turns a [`CredentialRef`] into a live [`Credential`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::components::ComponentSet;
use crate::config::{self, ResolvedConfig};
use crate::credential::{Credential, CredentialRegistry};
use crate::error::{Result, SecretsError};
use crate::reference::{CredentialRef, DEFAULT_STORE};
use crate::secret::Secret;
use crate::store::{SecretMap, SecretStore, StoreRegistry};

/// Default name of the deployment secret.
pub const DEFAULT_DEPLOYMENT_SECRET: &str = "bulwark-deployment-secrets";

/// Default cache time-to-live.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

const MAX_CACHE_ENTRIES: usize = 4096;

struct Entry<T> {
    at: Instant,
    ttl: Duration,
    value: T,
}

struct Cache<K, T> {
    map: Mutex<HashMap<K, Entry<T>>>,
}

impl<K: std::hash::Hash + Eq + Clone, T: Clone> Cache<K, T> {
    fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, k: &K) -> Option<T> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(k)
            .filter(|e| e.at.elapsed() < e.ttl)
            .map(|e| e.value.clone())
    }

    fn put(&self, k: K, value: T, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CACHE_ENTRIES {
            map.retain(|_, e| e.at.elapsed() < e.ttl);
            if map.len() >= MAX_CACHE_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            k,
            Entry {
                at: Instant::now(),
                ttl,
                value,
            },
        );
    }

    fn remove(&self, k: &K) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(k);
    }

    fn retain(&self, f: impl Fn(&K) -> bool) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| f(k));
    }

    fn clear(&self) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Builds a [`Resolver`].
#[derive(Debug)]
pub struct ResolverBuilder {
    stores: StoreRegistry,
    registry: CredentialRegistry,
    cache_ttl: Duration,
    environment: Option<String>,
    deployment_store: String,
    deployment_secret: String,
    config_dir: Option<PathBuf>,
}

impl ResolverBuilder {
    /// Adds a store (replacing one of the same name).
    #[must_use]
    pub fn store(mut self, store: impl SecretStore + 'static) -> Self {
        self.stores.insert(Arc::new(store));
        self
    }

    /// Adds a shared store.
    #[must_use]
    pub fn store_arc(mut self, store: Arc<dyn SecretStore>) -> Self {
        self.stores.insert(store);
        self
    }

    /// Uses these stores (e.g. from [`ComponentSet::build`]).
    #[must_use]
    pub fn stores(mut self, stores: StoreRegistry) -> Self {
        self.stores = stores;
        self
    }

    /// Parsers for custom credential types.
    #[must_use]
    pub fn registry(mut self, registry: CredentialRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// How long a resolved credential is reused; `Duration::ZERO` disables caching.
    /// A credential carrying a token expiry is never cached past that expiry.
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// The deployment environment (`production` refuses development-only operations).
    /// Default: the `BULWARK_ENV` variable, read when such an operation is attempted.
    #[must_use]
    pub fn environment(mut self, env: impl Into<String>) -> Self {
        self.environment = Some(env.into());
        self
    }

    /// Where [`Resolver::get_deployment_secret`] looks: store and secret name (default
    /// `default` and `bulwark-deployment-secrets`).
    #[must_use]
    pub fn deployment_secret(mut self, store: impl Into<String>, name: impl Into<String>) -> Self {
        self.deployment_store = store.into();
        self.deployment_secret = name.into();
        self
    }

    /// Directory of credential configs (`<id>.json`) for [`Resolver::get_credentials`].
    #[must_use]
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// Finishes.
    #[must_use]
    pub fn build(self) -> Resolver {
        Resolver {
            inner: Arc::new(Inner {
                stores: self.stores,
                registry: self.registry,
                cache_ttl: self.cache_ttl,
                environment: self.environment,
                deployment_store: self.deployment_store,
                deployment_secret: self.deployment_secret,
                config_dir: self.config_dir,
                credentials: Cache::new(),
                secrets: Cache::new(),
            }),
        }
    }
}

struct Inner {
    stores: StoreRegistry,
    registry: CredentialRegistry,
    cache_ttl: Duration,
    environment: Option<String>,
    deployment_store: String,
    deployment_secret: String,
    config_dir: Option<PathBuf>,
    credentials: Cache<CredentialRef, Arc<Credential>>,
    secrets: Cache<(String, String), Arc<SecretMap>>,
}

/// Resolves credential references through the configured stores, with a TTL cache.
///
/// Cheap to clone (shared state). Resolution fails closed: an unknown store, a missing
/// secret, a missing or empty field, a store that cannot be reached — each is an error
/// naming the reference, never a value.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("stores", &self.inner.stores.names().collect::<Vec<_>>())
            .field("registry", &self.inner.registry)
            .field("cache_ttl", &self.inner.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A builder with no stores, built-in types only, a 60 s cache.
    #[must_use]
    pub fn builder() -> ResolverBuilder {
        ResolverBuilder {
            stores: StoreRegistry::new(),
            registry: CredentialRegistry::new(),
            cache_ttl: DEFAULT_CACHE_TTL,
            environment: None,
            deployment_store: DEFAULT_STORE.to_owned(),
            deployment_secret: DEFAULT_DEPLOYMENT_SECRET.to_owned(),
            config_dir: None,
        }
    }

    /// A builder whose stores come from the component files in `dir`. Components with
    /// `scopes:` are left out (no app id); see [`Resolver::from_components_dir_for_app`].
    pub async fn from_components_dir(dir: impl AsRef<Path>) -> Result<ResolverBuilder> {
        let stores = ComponentSet::new().load_dir(dir)?.build().await?;
        Ok(Self::builder().stores(stores))
    }

    /// Like [`Resolver::from_components_dir`], loading as the app `app_id`: components whose
    /// `scopes:` do not list it are not loaded.
    pub async fn from_components_dir_for_app(
        dir: impl AsRef<Path>,
        app_id: &str,
    ) -> Result<ResolverBuilder> {
        let stores = ComponentSet::new()
            .with_app_id(app_id)
            .load_dir(dir)?
            .build()
            .await?;
        Ok(Self::builder().stores(stores))
    }

    /// The configured store named `name`.
    #[must_use]
    pub fn store(&self, name: &str) -> Option<&Arc<dyn SecretStore>> {
        self.inner.stores.get(name)
    }

    fn route(&self, reference: &CredentialRef) -> Result<&Arc<dyn SecretStore>> {
        self.inner
            .stores
            .get(&reference.store_name)
            .ok_or_else(|| SecretsError::UnknownStore {
                reference: Box::new(reference.sanitized()),
                known: self.inner.stores.names().collect::<Vec<_>>().join(", "),
            })
    }

    /// Resolves `reference`, from the cache when a fresh entry exists.
    pub async fn resolve(&self, reference: &CredentialRef) -> Result<Arc<Credential>> {
        if let Some(c) = self.inner.credentials.get(reference) {
            return Ok(c);
        }
        let credential = self.resolve_uncached(reference).await?;
        let mut ttl = self.inner.cache_ttl;
        if let Some(exp) = credential.expires_at() {
            let left = exp - OffsetDateTime::now_utc();
            ttl = ttl.min(Duration::try_from(left).unwrap_or(Duration::ZERO));
        }
        self.inner
            .credentials
            .put(reference.clone(), credential.clone(), ttl);
        Ok(credential)
    }

    /// Resolves `reference` from its store, bypassing (and not filling) the cache.
    pub async fn resolve_uncached(&self, reference: &CredentialRef) -> Result<Arc<Credential>> {
        reference.validate()?;
        if !self.inner.registry.knows(&reference.credential_type) {
            return Err(SecretsError::UnknownCredentialType {
                reference: Box::new(reference.clone()),
            });
        }
        let store = self.route(reference)?;
        tracing::debug!(reference = %reference, "resolving credential");
        let map = match store.get_optional(&reference.name).await {
            Ok(Some(map)) => map,
            Ok(None) => {
                return Err(SecretsError::CredentialNotFound {
                    reference: Box::new(reference.clone()),
                });
            }
            Err(e) => {
                tracing::warn!(reference = %reference, error = %e, "credential resolution failed");
                return Err(SecretsError::Store {
                    reference: Box::new(reference.clone()),
                    source: Box::new(e),
                });
            }
        };
        let credential = self.inner.registry.parse(reference, &map)?;
        Ok(Arc::new(credential))
    }

    /// Drops the cached credential for `reference` (and cached raw secrets of its key).
    pub fn invalidate(&self, reference: &CredentialRef) {
        self.inner.credentials.remove(reference);
        self.inner
            .secrets
            .remove(&(reference.store_name.clone(), reference.name.clone()));
    }

    /// Drops every cached credential and secret of `store_name`.
    pub fn invalidate_store(&self, store_name: &str) {
        self.inner
            .credentials
            .retain(|r| r.store_name != store_name);
        self.inner.secrets.retain(|(s, _)| s != store_name);
    }

    /// Drops the whole cache.
    pub fn invalidate_all(&self) {
        self.inner.credentials.clear();
        self.inner.secrets.clear();
    }

    /// Raw fields of `key` in `store_name`, cached like credentials. Missing is
    /// [`SecretsError::NotFound`]; unreachable is [`SecretsError::Unavailable`].
    pub async fn get_secret(&self, store_name: &str, key: &str) -> Result<Arc<SecretMap>> {
        let ck = (store_name.to_owned(), key.to_owned());
        if let Some(m) = self.inner.secrets.get(&ck) {
            return Ok(m);
        }
        let store = self
            .inner
            .stores
            .get(store_name)
            .ok_or_else(|| SecretsError::Unavailable {
                store: store_name.to_owned(),
                reason: "no secret store with this name is configured".into(),
            })?;
        let map = Arc::new(store.get(key).await?);
        self.inner
            .secrets
            .put(ck, map.clone(), self.inner.cache_ttl);
        Ok(map)
    }

    /// One field of the deployment secret (`bulwark-deployment-secrets` in the `default`
    /// store unless configured otherwise), e.g. `worker_client_id`.
    ///
    /// * the secret or the field does not exist → [`SecretsError::NotFound`]
    ///   (`key` is `<secret>#<field>` for a missing field);
    /// * the field is empty → [`SecretsError::EmptyField`];
    /// * the store is not configured or cannot be reached → [`SecretsError::Unavailable`]
    ///   (or another store error). Nothing is turned into `None`.
    pub async fn get_deployment_secret(&self, field: &str) -> Result<Secret> {
        let (store, name) = (&self.inner.deployment_store, &self.inner.deployment_secret);
        let map = self.get_secret(store, name).await?;
        match map.get(field) {
            None => Err(SecretsError::NotFound {
                store: store.clone(),
                key: format!("{name}#{field}"),
            }),
            Some(v) if v.is_blank() => Err(SecretsError::EmptyField {
                reference: Box::new(
                    CredentialRef::custom(name.clone(), "deployment_secret")
                        .with_store(store.clone()),
                ),
                field: field.to_owned(),
            }),
            Some(v) => Ok(v.clone()),
        }
    }

    fn is_production(&self) -> bool {
        let env = self
            .inner
            .environment
            .clone()
            .or_else(|| std::env::var("BULWARK_ENV").ok())
            .unwrap_or_default();
        matches!(
            env.trim().to_ascii_lowercase().as_str(),
            "production" | "prod"
        )
    }

    /// Writes a secret to a writable store (file, Vault, Postgres) and drops it from the
    /// cache. **Development only**: refused with [`SecretsError::ProductionRefused`] when
    /// the environment is `production` (`BULWARK_ENV=production`); production writes go
    /// through the admin path (`PostgresStore::put_version`) with its own audit.
    pub async fn save_secret(&self, store_name: &str, key: &str, value: &SecretMap) -> Result<()> {
        if self.is_production() {
            return Err(SecretsError::ProductionRefused {
                operation: "save_secret",
            });
        }
        let store = self
            .inner
            .stores
            .get(store_name)
            .ok_or_else(|| SecretsError::Unavailable {
                store: store_name.to_owned(),
                reason: "no secret store with this name is configured".into(),
            })?;
        store.put(key, value).await?;
        self.inner
            .secrets
            .remove(&(store_name.to_owned(), key.to_owned()));
        self.inner
            .credentials
            .retain(|r| !(r.store_name == store_name && r.name == key));
        tracing::info!(store = store_name, key, "secret saved (development)");
        Ok(())
    }

    /// Loads the credential config `<config_dir>/<id>.json` and substitutes its explicit
    /// secret references (see [`crate::config`]).
    pub async fn get_credentials(&self, id: &str) -> Result<ResolvedConfig> {
        config::validate_id(id)?;
        let dir = self
            .inner
            .config_dir
            .as_ref()
            .ok_or_else(|| SecretsError::ConfigNotFound { id: id.to_owned() })?;
        let path = dir.join(format!("{id}.json"));
        let text = match tokio::fs::read(&path).await {
            Ok(t) => zeroize::Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretsError::ConfigNotFound { id: id.to_owned() });
            }
            Err(source) => return Err(SecretsError::Io { path, source }),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| SecretsError::InvalidConfig {
                id: id.to_owned(),
                reason: format!("invalid JSON at line {}, column {}", e.line(), e.column()),
            })?;
        self.resolve_config(id, &value).await
    }

    /// Substitutes the explicit secret references in an already loaded config.
    pub async fn resolve_config(
        &self,
        id: &str,
        value: &serde_json::Value,
    ) -> Result<ResolvedConfig> {
        config::resolve(self, id, value).await
    }
}
