//! Credential configs by id (the seeds' `get_credentials(guid)`), with explicit secret
//! references only.
//!
//! A credential config is a JSON object (for example an integration's connection
//! settings). Secret material is never stored in it; instead a string field holds an
//! explicit reference that is substituted at resolution time:
//!
//! * **multi-key mode** — each field names its own secret:
//!   `"password": "secret://vault/db/orders#password"` (`#field` may be left out when the
//!   secret has exactly one field);
//! * **single-key mode** — the top-level `"secret_ref": "secret://<store>/<key>"` names
//!   one bundle, and fields refer into it with `"secret:#<field>"`.
//!
//! References are found anywhere in the tree, including nested objects such as `extra`
//! and arrays. Only strings that *start with* `secret:` are references, and every such
//! string must be well formed and resolvable, or resolution fails. No other string is
//! ever looked up: a value that merely happens to equal a secret's name stays as it is.
//!
//! Ids are 1–128 characters of `A-Z a-z 0-9 _ -`, so an id can never walk out of the
//! config directory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Result, SecretsError};
use crate::resolver::Resolver;
use crate::secret::Secret;
use crate::store::SecretMap;

/// Top-level field naming the bundle of single-key mode.
pub const SECRET_REF_FIELD: &str = "secret_ref";

const SCHEME: &str = "secret://";
const BUNDLE_PREFIX: &str = "secret:#";

/// Checks a credential config id.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(SecretsError::InvalidConfigId {
            id: id.chars().take(64).collect(),
        })
    }
}

/// A config value after substitution. `Debug` and `Serialize` redact [`ConfigValue::Secret`].
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ConfigValue {
    /// JSON null.
    Null,
    /// JSON boolean.
    Bool(bool),
    /// JSON number.
    Number(serde_json::Number),
    /// A plain string from the config.
    String(String),
    /// A substituted secret.
    Secret(Secret),
    /// JSON array.
    Array(Vec<ConfigValue>),
    /// JSON object.
    Object(BTreeMap<String, ConfigValue>),
}

impl ConfigValue {
    /// The member `key` of an object.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        match self {
            Self::Object(m) => m.get(key),
            _ => None,
        }
    }

    /// A plain string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// A substituted secret.
    #[must_use]
    pub fn as_secret(&self) -> Option<&Secret> {
        match self {
            Self::Secret(s) => Some(s),
            _ => None,
        }
    }

    /// Plain JSON with secrets **in clear**, for handing to a client library at the
    /// point of use. Never log the result.
    #[must_use]
    pub fn expose_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null => J::Null,
            Self::Bool(b) => J::Bool(*b),
            Self::Number(n) => J::Number(n.clone()),
            Self::String(s) => J::String(s.clone()),
            Self::Secret(s) => J::String(s.expose().to_owned()),
            Self::Array(a) => J::Array(a.iter().map(Self::expose_json).collect()),
            Self::Object(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.expose_json()))
                    .collect(),
            ),
        }
    }
}

/// A credential config with its references substituted.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvedConfig {
    /// The config id.
    pub id: String,
    /// The config.
    pub value: ConfigValue,
}

impl ResolvedConfig {
    /// A top-level field.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.value.get(key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    store: String,
    key: String,
}

#[derive(Debug)]
enum Ref {
    Full {
        target: Target,
        field: Option<String>,
    },
    Bundle {
        field: String,
    },
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn parse_ref(id: &str, pointer: &str, s: &str) -> Result<Option<Ref>> {
    if !s.starts_with("secret:") {
        return Ok(None);
    }
    let bad = |reason: &str| SecretsError::SecretReference {
        id: id.to_owned(),
        pointer: pointer.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(field) = s.strip_prefix(BUNDLE_PREFIX) {
        if field.is_empty() {
            return Err(bad("`secret:#` needs a field name"));
        }
        return Ok(Some(Ref::Bundle {
            field: field.to_owned(),
        }));
    }
    let rest = s.strip_prefix(SCHEME).ok_or_else(|| {
        bad("a secret reference is `secret://<store>/<key>[#<field>]` or `secret:#<field>`")
    })?;
    let (path, field) = match rest.split_once('#') {
        Some((p, f)) if !f.is_empty() => (p, Some(f.to_owned())),
        Some(_) => return Err(bad("empty `#field` in secret reference")),
        None => (rest, None),
    };
    let (store, key) = path
        .split_once('/')
        .filter(|(s, k)| !s.is_empty() && !k.is_empty())
        .ok_or_else(|| {
            bad("a secret reference needs a store and a key: `secret://<store>/<key>`")
        })?;
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(bad(
            "the key of a secret reference has an empty, `.` or `..` segment",
        ));
    }
    Ok(Some(Ref::Full {
        target: Target {
            store: store.to_owned(),
            key: key.to_owned(),
        },
        field,
    }))
}

fn collect(
    id: &str,
    v: &serde_json::Value,
    pointer: &str,
    out: &mut BTreeSet<Target>,
) -> Result<()> {
    match v {
        serde_json::Value::String(s) => {
            if let Some(Ref::Full { target, .. }) = parse_ref(id, pointer, s)? {
                out.insert(target);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                collect(id, item, &format!("{pointer}/{i}"), out)?;
            }
        }
        serde_json::Value::Object(m) => {
            for (k, item) in m {
                collect(id, item, &format!("{pointer}/{}", pointer_escape(k)), out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

struct Ctx<'a> {
    id: &'a str,
    fetched: BTreeMap<Target, Arc<SecretMap>>,
    bundle: Option<(Target, Arc<SecretMap>)>,
}

impl Ctx<'_> {
    fn bad(&self, pointer: &str, reason: String) -> SecretsError {
        SecretsError::SecretReference {
            id: self.id.to_owned(),
            pointer: pointer.to_owned(),
            reason,
        }
    }

    fn field(
        &self,
        pointer: &str,
        target: &Target,
        map: &SecretMap,
        field: Option<&str>,
    ) -> Result<Secret> {
        let value = match field {
            Some(f) => map.get(f).ok_or_else(|| {
                self.bad(
                    pointer,
                    format!(
                        "secret `{}` in store `{}` has no field `{f}`",
                        target.key, target.store
                    ),
                )
            })?,
            None => {
                let mut it = map.values();
                match (it.next(), it.next()) {
                    (Some(v), None) => v,
                    _ => {
                        return Err(self.bad(
                            pointer,
                            format!(
                                "secret `{}` in store `{}` has several fields; name one with `#<field>`",
                                target.key, target.store
                            ),
                        ));
                    }
                }
            }
        };
        if value.is_blank() {
            return Err(self.bad(
                pointer,
                format!(
                    "secret `{}` in store `{}`: the field is empty",
                    target.key, target.store
                ),
            ));
        }
        Ok(value.clone())
    }

    fn build(&self, v: &serde_json::Value, pointer: &str) -> Result<ConfigValue> {
        use serde_json::Value as J;
        Ok(match v {
            J::Null => ConfigValue::Null,
            J::Bool(b) => ConfigValue::Bool(*b),
            J::Number(n) => ConfigValue::Number(n.clone()),
            J::String(s) => match parse_ref(self.id, pointer, s)? {
                None => ConfigValue::String(s.clone()),
                Some(Ref::Full { target, field }) => {
                    let map = self.fetched.get(&target).ok_or_else(|| {
                        self.bad(pointer, "internal: reference not fetched".into())
                    })?;
                    ConfigValue::Secret(self.field(pointer, &target, map, field.as_deref())?)
                }
                Some(Ref::Bundle { field }) => {
                    let (target, map) = self.bundle.as_ref().ok_or_else(|| {
                        self.bad(pointer, format!("`secret:#` needs a top-level `{SECRET_REF_FIELD}` naming the bundle"))
                    })?;
                    ConfigValue::Secret(self.field(pointer, target, map, Some(&field))?)
                }
            },
            J::Array(a) => ConfigValue::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, item)| self.build(item, &format!("{pointer}/{i}")))
                    .collect::<Result<_>>()?,
            ),
            J::Object(m) => ConfigValue::Object(
                m.iter()
                    .map(|(k, item)| {
                        Ok((
                            k.clone(),
                            self.build(item, &format!("{pointer}/{}", pointer_escape(k)))?,
                        ))
                    })
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

pub(crate) async fn resolve(
    resolver: &Resolver,
    id: &str,
    value: &serde_json::Value,
) -> Result<ResolvedConfig> {
    validate_id(id)?;
    let Some(obj) = value.as_object() else {
        return Err(SecretsError::InvalidConfig {
            id: id.to_owned(),
            reason: "a credential config must be a JSON object".into(),
        });
    };
    let mut targets = BTreeSet::new();
    collect(id, value, "", &mut targets)?;
    // The bundle reference itself is not a value to substitute.
    let pointer = format!("/{SECRET_REF_FIELD}");
    let bundle_target = match obj.get(SECRET_REF_FIELD) {
        None => None,
        Some(serde_json::Value::String(s)) => match parse_ref(id, &pointer, s)? {
            Some(Ref::Full {
                target,
                field: None,
            }) => Some(target),
            _ => {
                return Err(SecretsError::SecretReference {
                    id: id.to_owned(),
                    pointer,
                    reason: "must be `secret://<store>/<key>` without `#field`".into(),
                });
            }
        },
        Some(_) => {
            return Err(SecretsError::SecretReference {
                id: id.to_owned(),
                pointer,
                reason: "must be a string".into(),
            });
        }
    };
    let mut ctx = Ctx {
        id,
        fetched: BTreeMap::new(),
        bundle: None,
    };
    for target in targets {
        let map = resolver
            .get_secret(&target.store, &target.key)
            .await
            .map_err(|e| match e {
                SecretsError::NotFound { store, key } => SecretsError::SecretReference {
                    id: id.to_owned(),
                    pointer: String::new(),
                    reason: format!("store `{store}` has no secret `{key}`"),
                },
                other => other,
            })?;
        ctx.fetched.insert(target, map);
    }
    if let Some(t) = bundle_target {
        if let Some(m) = ctx.fetched.get(&t).cloned() {
            ctx.bundle = Some((t, m));
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let p = format!("/{}", pointer_escape(k));
        let cv = if k == SECRET_REF_FIELD {
            ConfigValue::String(v.as_str().unwrap_or_default().to_owned())
        } else {
            ctx.build(v, &p)?
        };
        out.insert(k.clone(), cv);
    }
    Ok(ResolvedConfig {
        id: id.to_owned(),
        value: ConfigValue::Object(out),
    })
}
