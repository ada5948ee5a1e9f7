//! Dapr-style component files that configure the secret stores.
//!
//! ```yaml
//! apiVersion: dapr.io/v1alpha1
//! kind: Component
//! metadata:
//!   name: vault
//! spec:
//!   type: secretstores.hashicorp.vault
//!   version: v1
//!   metadata:
//!     - name: vaultAddr
//!       value: https://vault.internal:8200
//!     - name: vaultTokenMountPath
//!       value: /run/secrets/vault-token
//! ```
//!
//! Every `*.yaml` / `*.yml` file in the directory is read (several documents per file,
//! separated by `---`, are allowed). Documents whose `kind` is not `Component`, and
//! components whose `spec.type` is not a secret store, are skipped. Everything else is
//! checked strictly: unknown or misspelt metadata keys, missing required keys, values of
//! the wrong shape and duplicate names are errors that give the file and the key.
//!
//! A metadata entry has either `value` or `secretKeyRef: {name, key}`. A `secretKeyRef`
//! is read from the component named by the document's `auth.secretStore` (which must be
//! an env or file store defined in the same directory), or, without `auth`, from the
//! process environment variable `secretKeyRef.name`. Relative file paths are relative to
//! the component file's directory.
//!
//! A top-level `scopes: [app-id, ...]` limits a component to those apps, as in Dapr: the set
//! is loaded for one app id ([`ComponentSet::with_app_id`]; the worker's is
//! `BULWARK_APP_ID`), and a component scoped to other apps is not loaded at all. A loader
//! without an app id sees only unscoped components. An empty list is an error.
//!
//! `secretstores.hashicorp.vault` takes only an `https://` `vaultAddr`; a plain `http://`
//! address (a local dev server) needs `vaultAllowInsecureHttp: "true"`, which logs a
//! warning and is refused when `BULWARK_ENV=production`.
//!
//! | `spec.type` | metadata keys (required in bold) |
//! |---|---|
//! | `secretstores.local.env` | `prefix` (default `BULWARK_`) |
//! | `secretstores.local.file` | **`secretsFile`**, `nestedSeparator` (default `:`) |
//! | `secretstores.hashicorp.vault` | **`vaultAddr`**, **`vaultToken`** or **`vaultTokenMountPath`**, `enginePath` (default `secret`), `vaultKVPrefix` (default `dapr`), `vaultKVUsePrefix` (default `true`), `caCert` (PEM) or `caPath`, `vaultNamespace`, `timeoutSeconds`, `vaultAllowInsecureHttp` (default `false`) |
//! | `bulwark.secretstores.postgres` | **`connectionString`**, **`masterKeyFile`** or **`masterKey`**, `masterKeyId`, `previousMasterKeyFiles` (comma-separated), `schema`, `storeNamespace` (default: component name), `maxConnections` (default 5), `acquireTimeoutSeconds` (default 5), `runMigrations` (default `false`) |

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_norway::Value;

use crate::error::{Result, SecretsError};
use crate::secret::Secret;
use crate::store::postgres::{MasterKey, MasterKeyring, PostgresConfig, PostgresStore};
use crate::store::vault::{VaultConfig, VaultStore, VaultToken};
use crate::store::{EnvStore, FileStore, SecretStore, StoreRegistry, env, file, postgres, vault};

/// The only accepted `apiVersion`.
pub const API_VERSION: &str = "dapr.io/v1alpha1";

/// The secret-store component types this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ComponentType {
    /// `secretstores.local.env`
    Env,
    /// `secretstores.local.file`
    File,
    /// `secretstores.hashicorp.vault`
    Vault,
    /// `bulwark.secretstores.postgres`
    Postgres,
}

impl ComponentType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            env::KIND => Self::Env,
            file::KIND => Self::File,
            vault::KIND => Self::Vault,
            postgres::KIND => Self::Postgres,
            _ => return None,
        })
    }

    /// The `spec.type` string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => env::KIND,
            Self::File => file::KIND,
            Self::Vault => vault::KIND,
            Self::Postgres => postgres::KIND,
        }
    }

    fn keys(self) -> (&'static [&'static str], &'static [&'static str]) {
        // (allowed, always required)
        match self {
            Self::Env => (&["prefix"], &[]),
            Self::File => (&["secretsFile", "nestedSeparator"], &["secretsFile"]),
            Self::Vault => (
                &[
                    "vaultAddr",
                    "vaultToken",
                    "vaultTokenMountPath",
                    "enginePath",
                    "vaultKVPrefix",
                    "vaultKVUsePrefix",
                    "caCert",
                    "caPath",
                    "vaultNamespace",
                    "timeoutSeconds",
                    "skipVerify",
                    "vaultAllowInsecureHttp",
                ],
                &["vaultAddr"],
            ),
            Self::Postgres => (
                &[
                    "connectionString",
                    "masterKeyFile",
                    "masterKey",
                    "masterKeyId",
                    "previousMasterKeyFiles",
                    "schema",
                    "storeNamespace",
                    "maxConnections",
                    "acquireTimeoutSeconds",
                    "runMigrations",
                ],
                &["connectionString"],
            ),
        }
    }

    /// Pairs of keys of which exactly one must be given.
    fn one_of(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Vault => &[("vaultToken", "vaultTokenMountPath")],
            Self::Postgres => &[("masterKeyFile", "masterKey")],
            _ => &[],
        }
    }
}

impl fmt::Display for ComponentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum MetaValue {
    Value(Secret),
    SecretKeyRef { name: String, key: Option<String> },
}

/// One secret-store component read from a file. `Debug` shows metadata keys, not values.
#[derive(Clone)]
pub struct Component {
    /// `metadata.name`: what [`crate::CredentialRef::store_name`] routes on.
    pub name: String,
    /// `spec.type`.
    pub component_type: ComponentType,
    /// The file it came from.
    pub path: PathBuf,
    auth_store: Option<String>,
    scopes: Option<Vec<String>>,
    metadata: BTreeMap<String, MetaValue>,
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .field("type", &self.component_type.as_str())
            .field("path", &self.path)
            .field("scopes", &self.scopes)
            .field("metadata_keys", &self.metadata.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Component {
    /// The app ids of `scopes:`; `None` when the component is not scoped (every app sees it).
    #[must_use]
    pub fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }

    /// True when an app with `app_id` (or a loader with no app id) may use this component.
    #[must_use]
    pub fn visible_to(&self, app_id: Option<&str>) -> bool {
        match (&self.scopes, app_id) {
            (None, _) => true,
            (Some(s), Some(id)) => s.iter().any(|a| a == id),
            (Some(_), None) => false,
        }
    }

    /// Metadata keys present (never values).
    pub fn metadata_keys(&self) -> impl Iterator<Item = &str> {
        self.metadata.keys().map(String::as_str)
    }

    fn err(&self, key: &str, reason: impl Into<String>) -> SecretsError {
        SecretsError::Component {
            path: self.path.clone(),
            key: format!("spec.metadata[{key}]"),
            reason: reason.into(),
        }
    }

    fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }

    fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir().join(p)
        }
    }
}

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The components loaded from a directory.
#[derive(Clone)]
pub struct ComponentSet {
    components: BTreeMap<String, Component>,
    app_id: Option<String>,
    fixed_env: Option<BTreeMap<String, String>>,
    env: EnvLookup,
}

impl fmt::Debug for ComponentSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentSet")
            .field("components", &self.components.values().collect::<Vec<_>>())
            .field("app_id", &self.app_id)
            .field("fixed_env", &self.fixed_env.is_some())
            .finish()
    }
}

impl Default for ComponentSet {
    fn default() -> Self {
        Self {
            components: BTreeMap::new(),
            app_id: None,
            fixed_env: None,
            env: Arc::new(|k| std::env::var(k).ok()),
        }
    }
}

fn syntax_err(path: &Path, e: &serde_norway::Error) -> SecretsError {
    SecretsError::ComponentSyntax {
        path: path.to_owned(),
        location: e.location().map(|l| (l.line(), l.column())),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ComponentSet {
    /// An empty set reading `secretKeyRef`s from the process environment.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses a fixed environment instead of the process's, both for `secretKeyRef`
    /// look-ups and for env stores built from components (tests; embedding).
    #[must_use]
    pub fn with_environment(mut self, vars: BTreeMap<String, String>) -> Self {
        let lookup = vars.clone();
        self.env = Arc::new(move |k| lookup.get(k).cloned());
        self.fixed_env = Some(vars);
        self
    }

    /// Loads as the app `app_id`, for Dapr's `scopes:`: a component that lists app ids is
    /// kept only when `app_id` is one of them, and is otherwise invisible, as if its
    /// document were absent (so two files may define one store name for different apps).
    /// Without an app id, only unscoped components are kept. Set before loading.
    #[must_use]
    pub fn with_app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// The app id components are loaded for, if any.
    #[must_use]
    pub fn app_id(&self) -> Option<&str> {
        self.app_id.as_deref()
    }

    /// Loads every `*.yaml` / `*.yml` file in `dir` (not recursive), in name order.
    pub fn load_dir(self, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let io = |source| SecretsError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let yaml = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml");
            if yaml && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut set = self;
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| SecretsError::Io {
                path: path.clone(),
                source,
            })?;
            set.add_str(&path, &text)?;
        }
        Ok(set)
    }

    /// Parses the documents of one file (`path` is used in errors and to resolve relative
    /// paths) and adds its components.
    pub fn add_str(&mut self, path: impl AsRef<Path>, text: &str) -> Result<()> {
        let path = path.as_ref();
        for doc in serde_norway::Deserializer::from_str(text) {
            let value = Value::deserialize(doc).map_err(|e| syntax_err(path, &e))?;
            if value.is_null() {
                continue;
            }
            if let Some(c) = parse_component(path, &value)? {
                if !c.visible_to(self.app_id.as_deref()) {
                    tracing::info!(
                        component = %c.name,
                        path = %path.display(),
                        app_id = self.app_id.as_deref().unwrap_or("(none)"),
                        "component is scoped to other apps; not loaded"
                    );
                    continue;
                }
                if let Some(prev) = self.components.get(&c.name) {
                    return Err(SecretsError::DuplicateComponent {
                        name: c.name,
                        first: prev.path.clone(),
                        second: path.to_owned(),
                    });
                }
                self.components.insert(c.name.clone(), c);
            }
        }
        Ok(())
    }

    /// The component named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Component> {
        self.components.get(name)
    }

    /// All components, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Component> {
        self.components.values()
    }

    /// Number of components.
    #[must_use]
    pub fn len(&self) -> usize {
        self.components.len()
    }

    /// True when no component was loaded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// Builds a store for every component. Env and file stores are built first, since
    /// other components' `secretKeyRef`s may read from them. Postgres stores connect
    /// lazily (and run migrations here only with `runMigrations: true`).
    pub async fn build(&self) -> Result<StoreRegistry> {
        let mut reg = StoreRegistry::new();
        let (local, remote): (Vec<_>, Vec<_>) = self
            .components
            .values()
            .partition(|c| matches!(c.component_type, ComponentType::Env | ComponentType::File));
        for c in local {
            let store: Arc<dyn SecretStore> = match c.component_type {
                ComponentType::Env => {
                    let prefix = self
                        .plain(c, "prefix")?
                        .unwrap_or_else(|| env::DEFAULT_PREFIX.to_owned());
                    match &self.fixed_env {
                        Some(vars) => Arc::new(EnvStore::with_vars(&c.name, prefix, vars.clone())),
                        None => Arc::new(EnvStore::new(&c.name, prefix)),
                    }
                }
                _ => {
                    let file = self.required_plain(c, "secretsFile")?;
                    let mut s = FileStore::new(&c.name, c.resolve_path(&file));
                    if let Some(sep) = self.plain(c, "nestedSeparator")? {
                        s = s.with_separator(sep);
                    }
                    Arc::new(s)
                }
            };
            reg.insert(store);
        }
        for c in remote {
            let store: Arc<dyn SecretStore> = match c.component_type {
                ComponentType::Vault => Arc::new(self.build_vault(c, &reg).await?),
                _ => {
                    let s = self.build_postgres(c, &reg).await?;
                    if self.bool(c, "runMigrations", false)? {
                        s.migrate().await?;
                    }
                    Arc::new(s)
                }
            };
            reg.insert(store);
        }
        Ok(reg)
    }

    /// A plain (non-secret-reference) metadata value.
    fn plain(&self, c: &Component, key: &str) -> Result<Option<String>> {
        match c.metadata.get(key) {
            None => Ok(None),
            Some(MetaValue::Value(v)) => Ok(Some(v.expose().to_owned())),
            Some(MetaValue::SecretKeyRef { .. }) => {
                Err(c.err(key, "must be a plain `value`, not a `secretKeyRef`"))
            }
        }
    }

    fn required_plain(&self, c: &Component, key: &str) -> Result<String> {
        self.plain(c, key)?.ok_or_else(|| c.err(key, "is required"))
    }

    /// A metadata value that may be a `secretKeyRef`, resolved now.
    async fn secret(
        &self,
        c: &Component,
        key: &str,
        reg: &StoreRegistry,
    ) -> Result<Option<Secret>> {
        let value = match c.metadata.get(key) {
            None => return Ok(None),
            Some(MetaValue::Value(v)) => v.clone(),
            Some(MetaValue::SecretKeyRef { name, key: field }) => match &c.auth_store {
                None => Secret::new((self.env)(name).ok_or_else(|| {
                    c.err(
                        key,
                        format!("secretKeyRef: environment variable `{name}` is not set"),
                    )
                })?),
                Some(store_name) => {
                    let store = reg.get(store_name).ok_or_else(|| SecretsError::Component {
                        path: c.path.clone(),
                        key: "auth.secretStore".into(),
                        reason: format!("no env or file component named `{store_name}`"),
                    })?;
                    let map = store.get_optional(name).await?.ok_or_else(|| {
                        c.err(
                            key,
                            format!("secretKeyRef: store `{store_name}` has no secret `{name}`"),
                        )
                    })?;
                    let field = field.as_deref().unwrap_or(name);
                    map.get(field).cloned().ok_or_else(|| {
                        c.err(key, format!("secretKeyRef: secret `{name}` in `{store_name}` has no field `{field}`"))
                    })?
                }
            },
        };
        if value.is_blank() {
            return Err(c.err(key, "is empty"));
        }
        Ok(Some(value))
    }

    fn bool(&self, c: &Component, key: &str, default: bool) -> Result<bool> {
        match self.plain(c, key)?.as_deref().map(str::trim) {
            None => Ok(default),
            Some("true" | "True" | "TRUE" | "1" | "yes") => Ok(true),
            Some("false" | "False" | "FALSE" | "0" | "no") => Ok(false),
            Some(_) => Err(c.err(key, "must be true or false")),
        }
    }

    fn number(&self, c: &Component, key: &str, default: u64) -> Result<u64> {
        match self.plain(c, key)? {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| c.err(key, "must be a positive integer")),
        }
    }

    async fn build_vault(&self, c: &Component, reg: &StoreRegistry) -> Result<VaultStore> {
        if self.bool(c, "skipVerify", false)? {
            return Err(c.err(
                "skipVerify",
                "TLS verification cannot be turned off; give the CA with caPath or caCert",
            ));
        }
        let addr = self.required_plain(c, "vaultAddr")?;
        let insecure = self.bool(c, "vaultAllowInsecureHttp", false)?;
        if insecure && self.is_production() {
            return Err(c.err(
                "vaultAllowInsecureHttp",
                "is a development switch and is refused when BULWARK_ENV=production",
            ));
        }
        let plain_http = addr
            .trim()
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("http://"));
        if plain_http && !insecure {
            return Err(c.err(
                "vaultAddr",
                "must be an https:// URL: plain http sends the Vault token in clear \
                 (for a local development server only, set vaultAllowInsecureHttp: \"true\")",
            ));
        }
        let token = match self.plain_or_path(c, "vaultTokenMountPath")? {
            Some(p) => VaultToken::File(p),
            None => VaultToken::Value(
                self.secret(c, "vaultToken", reg)
                    .await?
                    .ok_or_else(|| c.err("vaultToken", "is required (or vaultTokenMountPath)"))?,
            ),
        };
        let mut cfg = VaultConfig::new(addr, token);
        if let Some(m) = self.plain(c, "enginePath")? {
            cfg.mount = m;
        }
        let use_prefix = self.bool(c, "vaultKVUsePrefix", true)?;
        cfg.prefix = if use_prefix {
            Some(
                self.plain(c, "vaultKVPrefix")?
                    .unwrap_or_else(|| "dapr".to_owned()),
            )
        } else {
            None
        };
        cfg.namespace = self.plain(c, "vaultNamespace")?;
        cfg.timeout = Duration::from_secs(self.number(c, "timeoutSeconds", 10)?);
        cfg.allow_insecure_http = insecure;
        cfg.ca_pem = match (self.plain(c, "caCert")?, self.plain_or_path(c, "caPath")?) {
            (Some(_), Some(_)) => return Err(c.err("caPath", "give caCert or caPath, not both")),
            (Some(pem), None) => Some(pem.into_bytes()),
            (None, Some(p)) => Some(
                std::fs::read(&p)
                    .map_err(|e| c.err("caPath", format!("cannot read {}: {e}", p.display())))?,
            ),
            (None, None) => None,
        };
        VaultStore::new(&c.name, cfg).map_err(|e| match e {
            SecretsError::Unavailable { reason, .. } => c.err("vaultAddr", reason),
            other => other,
        })
    }

    /// `BULWARK_ENV` of this set's environment is `production`.
    fn is_production(&self) -> bool {
        (self.env)("BULWARK_ENV").is_some_and(|e| {
            matches!(
                e.trim().to_ascii_lowercase().as_str(),
                "production" | "prod"
            )
        })
    }

    fn plain_or_path(&self, c: &Component, key: &str) -> Result<Option<PathBuf>> {
        Ok(self.plain(c, key)?.map(|p| c.resolve_path(p.trim())))
    }

    async fn build_postgres(&self, c: &Component, reg: &StoreRegistry) -> Result<PostgresStore> {
        let url = self
            .secret(c, "connectionString", reg)
            .await?
            .ok_or_else(|| c.err("connectionString", "is required"))?;
        let explicit_id = self.plain(c, "masterKeyId")?;
        let active = match (
            self.plain_or_path(c, "masterKeyFile")?,
            self.secret(c, "masterKey", reg).await?,
        ) {
            (Some(_), Some(_)) => {
                return Err(c.err("masterKey", "give masterKeyFile or masterKey, not both"));
            }
            (None, None) => return Err(c.err("masterKeyFile", "is required (or masterKey)")),
            (Some(path), None) => MasterKey::from_file_with_id(&path, explicit_id.as_deref())
                .map_err(|e| c.err("masterKeyFile", e.to_string()))?,
            (None, Some(text)) => {
                let bytes = MasterKey::decode(text.expose())
                    .map_err(|e| c.err("masterKey", e.to_string()))?;
                match &explicit_id {
                    Some(id) => MasterKey::with_id(id.clone(), &bytes),
                    None => MasterKey::from_bytes(&bytes),
                }
                .map_err(|e| c.err("masterKey", e.to_string()))?
            }
        };
        let mut ring = MasterKeyring::new(active);
        if let Some(list) = self.plain(c, "previousMasterKeyFiles")? {
            for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let key = MasterKey::from_file(&c.resolve_path(p))
                    .map_err(|e| c.err("previousMasterKeyFiles", e.to_string()))?;
                ring = ring.with_previous(key);
            }
        }
        let mut cfg = PostgresConfig::new(url);
        cfg.schema = self.plain(c, "schema")?;
        cfg.namespace = self.plain(c, "storeNamespace")?;
        cfg.max_connections = u32::try_from(self.number(c, "maxConnections", 5)?)
            .map_err(|_| c.err("maxConnections", "too large"))?;
        cfg.acquire_timeout = Duration::from_secs(self.number(c, "acquireTimeoutSeconds", 5)?);
        PostgresStore::connect_lazy(&c.name, cfg, ring).map_err(|e| match e {
            SecretsError::Unavailable { reason, .. } => c.err("connectionString", reason),
            other => other,
        })
    }
}

fn parse_component(path: &Path, doc: &Value) -> Result<Option<Component>> {
    let err = |key: &str, reason: &str| SecretsError::Component {
        path: path.to_owned(),
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(map) = doc.as_mapping() else {
        return Err(err("(document)", "must be a mapping"));
    };
    for k in map.keys() {
        match k.as_str() {
            Some("apiVersion" | "kind" | "metadata" | "spec" | "auth" | "scopes") => {}
            Some(other) => return Err(err(other, "unknown top-level key")),
            None => return Err(err("(document)", "keys must be strings")),
        }
    }
    match doc.get("kind").and_then(Value::as_str) {
        Some("Component") => {}
        Some(other) => {
            tracing::debug!(path = %path.display(), kind = other, "skipping non-Component document");
            return Ok(None);
        }
        None => return Err(err("kind", "is required and must be `Component`")),
    }
    match doc.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => {}
        _ => return Err(err("apiVersion", "must be `dapr.io/v1alpha1`")),
    }
    let name = doc
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("metadata.name", "is required"))?;
    let name_ok = name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        return Err(err(
            "metadata.name",
            "must be at most 253 characters of A-Z a-z 0-9 - _ .",
        ));
    }
    let spec = doc.get("spec").ok_or_else(|| err("spec", "is required"))?;
    let Some(spec_map) = spec.as_mapping() else {
        return Err(err("spec", "must be a mapping"));
    };
    for k in spec_map.keys() {
        match k.as_str() {
            Some("type" | "version" | "metadata" | "initTimeout") => {}
            Some("ignoreErrors") => {
                return Err(err(
                    "spec.ignoreErrors",
                    "is not supported: secret stores fail closed",
                ));
            }
            Some(other) => return Err(err(&format!("spec.{other}"), "unknown key")),
            None => return Err(err("spec", "keys must be strings")),
        }
    }
    let type_name = spec
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| err("spec.type", "is required"))?;
    let Some(component_type) = ComponentType::parse(type_name) else {
        if type_name.starts_with("secretstores.") || type_name.starts_with("bulwark.") {
            return Err(err(
                "spec.type",
                "unsupported secret store type (supported: secretstores.local.env, secretstores.local.file, secretstores.hashicorp.vault, bulwark.secretstores.postgres)",
            ));
        }
        tracing::debug!(path = %path.display(), r#type = type_name, "skipping component that is not a secret store");
        return Ok(None);
    };
    if let Some(v) = spec.get("version") {
        if v.as_str() != Some("v1") {
            return Err(err("spec.version", "must be `v1`"));
        }
    }
    let auth_store = match doc.get("auth") {
        None => None,
        Some(a) => Some(
            a.get("secretStore")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| err("auth.secretStore", "must be a component name"))?,
        ),
    };
    let scopes = match doc.get("scopes") {
        None => None,
        Some(Value::Sequence(items)) => {
            if items.is_empty() {
                return Err(err(
                    "scopes",
                    "is empty: list the app ids that may use this component, or remove `scopes` to allow every app",
                ));
            }
            let mut ids = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let id = item
                    .as_str()
                    .map(str::trim)
                    .filter(|s| valid_app_id(s))
                    .ok_or_else(|| {
                        err(
                            &format!("scopes[{i}]"),
                            "must be an app id (1-253 characters of A-Z a-z 0-9 - _ .)",
                        )
                    })?;
                ids.push(id.to_owned());
            }
            Some(ids)
        }
        Some(_) => return Err(err("scopes", "must be a list of app ids")),
    };
    let items = match spec.get("metadata") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(_) => {
            return Err(err(
                "spec.metadata",
                "must be a list of {name, value} entries",
            ));
        }
    };
    let (allowed, required) = component_type.keys();
    let mut metadata = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let key = item
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| err(&format!("spec.metadata[{i}].name"), "is required"))?;
        let ekey = format!("spec.metadata[{key}]");
        if let Some(m) = item.as_mapping() {
            for k in m.keys() {
                if !matches!(k.as_str(), Some("name" | "value" | "secretKeyRef")) {
                    return Err(err(
                        &ekey,
                        "entries may only have `name`, `value` and `secretKeyRef`",
                    ));
                }
            }
        }
        if !allowed.contains(&key) {
            return Err(err(
                &ekey,
                &format!(
                    "unknown key for {component_type} (known: {})",
                    allowed.join(", ")
                ),
            ));
        }
        let value = match (item.get("value"), item.get("secretKeyRef")) {
            (Some(v), None) => {
                MetaValue::Value(Secret::new(scalar_text(v).ok_or_else(|| {
                    err(&ekey, "`value` must be a string, number or boolean")
                })?))
            }
            (None, Some(r)) => MetaValue::SecretKeyRef {
                name: r
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| err(&ekey, "`secretKeyRef.name` is required"))?
                    .to_owned(),
                key: r.get("key").and_then(Value::as_str).map(str::to_owned),
            },
            (Some(_), Some(_)) => {
                return Err(err(&ekey, "give `value` or `secretKeyRef`, not both"));
            }
            (None, None) => return Err(err(&ekey, "needs a `value` or a `secretKeyRef`")),
        };
        if metadata.insert(key.to_owned(), value).is_some() {
            return Err(err(&ekey, "is given twice"));
        }
    }
    for r in required {
        if !metadata.contains_key(*r) {
            return Err(err(&format!("spec.metadata[{r}]"), "is required"));
        }
    }
    for (a, b) in component_type.one_of() {
        match (metadata.contains_key(*a), metadata.contains_key(*b)) {
            (true, true) => {
                return Err(err(
                    &format!("spec.metadata[{b}]"),
                    &format!("give `{a}` or `{b}`, not both"),
                ));
            }
            (false, false) => {
                return Err(err(
                    &format!("spec.metadata[{a}]"),
                    &format!("is required (or `{b}`)"),
                ));
            }
            _ => {}
        }
    }
    Ok(Some(Component {
        name: name.to_owned(),
        component_type,
        path: path.to_owned(),
        auth_store,
        scopes,
        metadata,
    }))
}

fn valid_app_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}
