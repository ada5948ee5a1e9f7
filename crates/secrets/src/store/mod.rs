//! The [`SecretStore`] trait and its backends.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

use crate::error::{Result, SecretsError};
use crate::secret::Secret;

pub mod env;
pub mod file;
pub mod postgres;
pub mod vault;

pub use env::EnvStore;
pub use file::FileStore;
pub use postgres::{MasterKey, MasterKeyring, PostgresStore, RewrapReport, VersionInfo};
pub use vault::VaultStore;

/// What a store returns for one key: field name → value. A store that holds single
/// values (one env var, one JSON string) returns a one-entry map keyed by the key itself.
pub type SecretMap = BTreeMap<String, Secret>;

/// A secret store. Implementations must never put a value into an error or a log line.
#[async_trait]
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// The component name this store is registered under.
    fn name(&self) -> &str;

    /// The component type (`secretstores.local.env`, …).
    fn kind(&self) -> &'static str;

    /// Fetches `key`; `Ok(None)` when it does not exist. Errors mean "could not find out".
    async fn get_optional(&self, key: &str) -> Result<Option<SecretMap>>;

    /// Fetches `key`; a missing key is [`SecretsError::NotFound`].
    async fn get(&self, key: &str) -> Result<SecretMap> {
        self.get_optional(key)
            .await?
            .ok_or_else(|| SecretsError::NotFound {
                store: self.name().to_owned(),
                key: key.to_owned(),
            })
    }

    /// Fetches several keys; fails closed on the first missing key or error.
    async fn get_bulk(&self, keys: &[String]) -> Result<BTreeMap<String, SecretMap>> {
        let mut out = BTreeMap::new();
        for key in keys {
            if !out.contains_key(key) {
                let value = self.get(key).await?;
                out.insert(key.clone(), value);
            }
        }
        Ok(out)
    }

    /// Names of the secrets the store holds (never values).
    async fn list_names(&self) -> Result<Vec<String>>;

    /// Writes `key` (a new version where the store keeps versions). Stores that cannot
    /// write return [`SecretsError::ReadOnly`].
    async fn put(&self, key: &str, value: &SecretMap) -> Result<()> {
        let _ = (key, value);
        Err(SecretsError::ReadOnly {
            store: self.name().to_owned(),
        })
    }
}

/// The configured stores, by component name.
#[derive(Clone, Debug, Default)]
pub struct StoreRegistry {
    stores: BTreeMap<String, Arc<dyn SecretStore>>,
}

impl StoreRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a store under its own name.
    pub fn insert(&mut self, store: Arc<dyn SecretStore>) {
        self.stores.insert(store.name().to_owned(), store);
    }

    /// Builder-style [`StoreRegistry::insert`].
    #[must_use]
    pub fn with(mut self, store: impl SecretStore + 'static) -> Self {
        self.insert(Arc::new(store));
        self
    }

    /// The store named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Arc<dyn SecretStore>> {
        self.stores.get(name)
    }

    /// Store names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }
}

/// A parsed JSON value whose strings are [`Secret`]s from the moment they are read, so
/// plaintext is not left in unzeroized `serde_json::Value` strings.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Null,
    Leaf(Secret),
    List(Vec<Node>),
    Branch(BTreeMap<String, Node>),
}

impl Node {
    /// This node as one field value: scalars as text, lists and objects as compact JSON.
    pub(crate) fn to_field(&self) -> Secret {
        match self {
            Node::Null => Secret::new(String::new()),
            Node::Leaf(s) => s.clone(),
            other => {
                let mut out = Zeroizing::new(String::new());
                other.write_json(&mut out);
                Secret::new(std::mem::take(&mut *out))
            }
        }
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Leaf(s) => push_json_string(out, s.expose()),
            Node::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Node::Branch(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(out, k);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// A branch's members as fields: each direct member becomes one field; nested
    /// objects are flattened with `separator` (`db:password`).
    pub(crate) fn flatten_into(&self, prefix: &str, separator: &str, out: &mut SecretMap) {
        match self {
            Node::Branch(map) => {
                for (k, v) in map {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}{separator}{k}")
                    };
                    match v {
                        Node::Branch(_) => v.flatten_into(&name, separator, out),
                        other => {
                            out.insert(name, other.to_field());
                        }
                    }
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.to_field());
            }
        }
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Secret::new(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Secret::new(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Secret::new(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Secret::new(v.to_string())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Secret::new(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Secret::new(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Node, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, Node>()? {
                    out.insert(k, v);
                }
                Ok(Node::Branch(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Checks a key for stores that map keys to paths: non-empty, at most 512 bytes, no
/// control characters, no leading `/`, no empty, `.` or `..` segments.
pub(crate) fn validate_path_key(store: &str, key: &str) -> Result<()> {
    let bad = |reason| {
        Err(SecretsError::InvalidKey {
            store: store.to_owned(),
            reason,
        })
    };
    if key.is_empty() || key.len() > 512 {
        return bad("key is empty or longer than 512 bytes");
    }
    if key.chars().any(char::is_control) {
        return bad("key contains control characters");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("key has an empty, `.` or `..` path segment or a leading/trailing `/`");
    }
    Ok(())
}
