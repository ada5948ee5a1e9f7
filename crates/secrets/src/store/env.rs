//! Environment variables as a secret store (`secretstores.local.env`).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use super::{SecretMap, SecretStore};
use crate::error::{Result, SecretsError};
use crate::secret::Secret;

/// Component type name.
pub const KIND: &str = "secretstores.local.env";

/// Default variable prefix.
pub const DEFAULT_PREFIX: &str = "BULWARK_";

/// Separates a secret's name from a field name in a variable name.
pub const FIELD_SEPARATOR: &str = "__";

enum Source {
    Process,
    Fixed(BTreeMap<String, Secret>),
}

/// Reads secrets from environment variables named `<PREFIX><KEY>` and
/// `<PREFIX><KEY>__<FIELD>`.
///
/// The key is upper-cased and every character other than `A-Z 0-9` becomes `_`
/// (`github-app` → `BULWARK_GITHUB_APP`). For key `github`:
///
/// * `BULWARK_GITHUB__USERNAME=alice` and `BULWARK_GITHUB__PASSWORD=…` give the fields
///   `username` and `password` (field names lower-cased);
/// * `BULWARK_GITHUB=…` alone gives a single field named after the key (`github`).
///
/// The process environment is read on every access, so a changed variable is seen
/// without restart (subject to the resolver's cache TTL).
pub struct EnvStore {
    name: String,
    prefix: String,
    source: Source,
}

impl fmt::Debug for EnvStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvStore")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("fixed", &matches!(self.source, Source::Fixed(_)))
            .finish()
    }
}

fn env_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl EnvStore {
    /// A store over the process environment.
    pub fn new(name: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            prefix: prefix.into(),
            source: Source::Process,
        }
    }

    /// A store over a fixed set of variables instead of the process environment (tests,
    /// and programs that assemble their environment themselves).
    pub fn with_vars<I, K, V>(name: impl Into<String>, prefix: impl Into<String>, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Secret>,
    {
        Self {
            name: name.into(),
            prefix: prefix.into(),
            source: Source::Fixed(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The variable prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn scan(&self, mut visit: impl FnMut(&str, Secret)) {
        match &self.source {
            Source::Process => {
                // vars_os: skip (never panic on) variables that are not valid UTF-8.
                for (k, v) in std::env::vars_os() {
                    if let (Some(k), Ok(v)) = (k.to_str(), v.into_string()) {
                        if k.starts_with(&self.prefix) {
                            visit(k, Secret::new(v));
                        }
                    }
                }
            }
            Source::Fixed(map) => {
                for (k, v) in map.range(self.prefix.clone()..) {
                    if !k.starts_with(&self.prefix) {
                        break;
                    }
                    visit(k, v.clone());
                }
            }
        }
    }
}

#[async_trait]
impl SecretStore for EnvStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn get_optional(&self, key: &str) -> Result<Option<SecretMap>> {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(SecretsError::InvalidKey {
                store: self.name.clone(),
                reason: "key is empty or contains `=` or NUL",
            });
        }
        let var = format!("{}{}", self.prefix, env_key(key));
        let field_prefix = format!("{var}{FIELD_SEPARATOR}");
        let mut out = SecretMap::new();
        self.scan(|k, v| {
            if k == var {
                out.insert(key.to_owned(), v);
            } else if let Some(field) = k.strip_prefix(&field_prefix) {
                if !field.is_empty() {
                    out.insert(field.to_ascii_lowercase(), v);
                }
            }
        });
        Ok((!out.is_empty()).then_some(out))
    }

    async fn list_names(&self) -> Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        self.scan(|k, _| {
            let rest = &k[self.prefix.len()..];
            let name = rest.split(FIELD_SEPARATOR).next().unwrap_or(rest);
            if !name.is_empty() {
                names.insert(name.to_ascii_lowercase());
            }
        });
        Ok(names.into_iter().collect())
    }
}
