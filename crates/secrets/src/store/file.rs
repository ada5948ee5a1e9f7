//! A local JSON file as a secret store (`secretstores.local.file`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{Node, SecretMap, SecretStore};
use crate::error::{Result, SecretsError};
use crate::secret::Secret;

/// Component type name.
pub const KIND: &str = "secretstores.local.file";

/// Default separator for nested keys.
pub const DEFAULT_SEPARATOR: &str = ":";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(unix)]
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            ino: meta.ino(),
            #[cfg(unix)]
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Debug)]
struct Loaded {
    stamp: Stamp,
    root: Arc<BTreeMap<String, Node>>,
}

/// Reads secrets from a JSON object in a file.
///
/// `get("github")` on `{"github": {"username": "a", "password": "b"}}` gives the fields
/// `username` and `password`; nested objects below that are flattened with the separator
/// (`{"db": {"primary": {"password": …}}}` → `get("db")` gives `primary:password`).
/// A key containing the separator walks into nested objects: `get("db:primary")`. A key
/// that ends at a scalar gives one field named after the key. Lists and nested values
/// become compact JSON text.
///
/// The file's modification time, length, inode and change time are checked on every
/// access; when any changed, the file is read again, so an edited or atomically replaced
/// file is seen without restart.
#[derive(Debug)]
pub struct FileStore {
    name: String,
    path: PathBuf,
    separator: String,
    state: Mutex<Option<Loaded>>,
}

impl FileStore {
    /// A store over `path` with the default `:` separator. The file is read lazily.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            state: Mutex::new(None),
        }
    }

    /// Uses another nested-key separator.
    #[must_use]
    pub fn with_separator(mut self, separator: impl Into<String>) -> Self {
        self.separator = separator.into();
        self
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_err(&self, source: std::io::Error) -> SecretsError {
        SecretsError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn load(&self) -> Result<Option<Arc<BTreeMap<String, Node>>>> {
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretsError::Unavailable {
                    store: self.name.clone(),
                    reason: format!("secrets file {} does not exist", self.path.display()),
                });
            }
            Err(e) => return Err(self.io_err(e)),
        };
        let stamp = Stamp::of(&meta);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(loaded) = state.as_ref() {
            if loaded.stamp == stamp {
                return Ok(Some(loaded.root.clone()));
            }
        }
        let bytes = Zeroizing::new(fs::read(&self.path).map_err(|e| self.io_err(e))?);
        let root: BTreeMap<String, Node> = if bytes.iter().all(u8::is_ascii_whitespace) {
            BTreeMap::new()
        } else {
            serde_json::from_slice::<Node>(&bytes)
                .map_err(|e| SecretsError::FileFormat {
                    path: self.path.clone(),
                    line: e.line(),
                    column: e.column(),
                })
                .and_then(|node| match node {
                    Node::Branch(map) => Ok(map),
                    _ => Err(SecretsError::Unavailable {
                        store: self.name.clone(),
                        reason: format!("{}: top level is not a JSON object", self.path.display()),
                    }),
                })?
        };
        let root = Arc::new(root);
        tracing::debug!(store = %self.name, path = %self.path.display(), "secrets file (re)loaded");
        *state = Some(Loaded {
            stamp,
            root: root.clone(),
        });
        Ok(Some(root))
    }

    fn lookup<'a>(&self, root: &'a BTreeMap<String, Node>, key: &str) -> Option<&'a Node> {
        if let Some(n) = root.get(key) {
            return Some(n);
        }
        if self.separator.is_empty() {
            return None;
        }
        let mut parts = key.split(self.separator.as_str());
        let mut node = root.get(parts.next()?)?;
        for part in parts {
            match node {
                Node::Branch(map) => node = map.get(part)?,
                _ => return None,
            }
        }
        Some(node)
    }
}

#[async_trait]
impl SecretStore for FileStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn get_optional(&self, key: &str) -> Result<Option<SecretMap>> {
        let Some(root) = self.load()? else {
            return Ok(None);
        };
        Ok(self.lookup(&root, key).map(|node| {
            let mut out = SecretMap::new();
            match node {
                Node::Branch(_) => node.flatten_into("", &self.separator, &mut out),
                other => {
                    out.insert(key.to_owned(), other.to_field());
                }
            }
            out
        }))
    }

    async fn list_names(&self) -> Result<Vec<String>> {
        Ok(self
            .load()?
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Sets top-level `key` to an object of `value`'s fields and rewrites the file
    /// atomically (temp file + rename, mode 0600). For development only; reached through
    /// [`crate::Resolver::save_secret`], which refuses in production.
    async fn put(&self, key: &str, value: &SecretMap) -> Result<()> {
        let root = match self.load() {
            Ok(r) => r.map(|r| (*r).clone()).unwrap_or_default(),
            Err(SecretsError::Unavailable { .. }) if !self.path.exists() => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let mut root = root;
        root.insert(
            key.to_owned(),
            Node::Branch(
                value
                    .iter()
                    .map(|(k, v)| (k.clone(), Node::Leaf(v.clone())))
                    .collect(),
            ),
        );
        let text = Node::Branch(root).to_field();
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let mut tmp = tempfile_in(dir).map_err(|e| self.io_err(e))?;
        tmp.1
            .write_all(text.expose().as_bytes())
            .map_err(|e| self.io_err(e))?;
        tmp.1.sync_all().map_err(|e| self.io_err(e))?;
        fs::rename(&tmp.0, &self.path).map_err(|e| self.io_err(e))?;
        Ok(())
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    let path = dir.join(format!(".bulwark-secrets-{}.tmp", uuid::Uuid::new_v4()));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(&path)?;
    Ok((path, file))
}

impl From<&SecretMap> for Node {
    fn from(map: &SecretMap) -> Self {
        Node::Branch(
            map.iter()
                .map(|(k, v)| (k.clone(), Node::Leaf(Secret::clone(v))))
                .collect(),
        )
    }
}
