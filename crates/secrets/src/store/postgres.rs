//! Postgres-backed, encrypted, versioned secret store (`bulwark.secretstores.postgres`).
//!
//! # Envelope encryption
//!
//! * Each version of each secret gets a fresh random 256-bit **data key**. The value (the
//!   secret's fields as JSON) is sealed with AES-256-GCM under it, with a random 96-bit
//!   nonce and associated data `value-aad(store, name, version)`.
//! * The data key is sealed (wrapped) with AES-256-GCM under the **master key**, with
//!   associated data `dek-aad(store, name, version, key_id)`. The row records `key_id`.
//! * Because both seals bind (store, name, version), a ciphertext or wrapped key copied
//!   to another row fails authentication; so does any flipped bit.
//! * Rotating the master key ([`PostgresStore::rewrap`]) re-wraps data keys under the new
//!   key and updates `key_id`; ciphertexts are untouched. Until every row is re-wrapped
//!   the keyring holds the old key(s) too.
//!
//! Master keys are 32 random bytes, given as base64 or hex text in a file or environment
//! variable. A key's id is derived from the key (`mk-` + 16 hex digits of a SHA-256 over
//! a label and the key) unless given explicitly; a wrong key therefore shows up as an
//! unknown key id, and a wrong key under a forced id as an integrity failure — either
//! way reads fail closed.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{Node, SecretMap, SecretStore};
use crate::error::{Result, SecretsError};
use crate::secret::Secret;

/// Component type name.
pub const KIND: &str = "bulwark.secretstores.postgres";

const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// A 256-bit master key with its id.
pub struct MasterKey {
    id: String,
    key: LessSafeKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn key_err(reason: impl Into<String>) -> SecretsError {
    SecretsError::MasterKey {
        reason: reason.into(),
    }
}

fn aes_key(bytes: &[u8]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| SecretsError::Crypto("invalid AES-256 key"))
}

impl MasterKey {
    /// A key from 32 raw bytes, id derived from the key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != KEY_LEN {
            return Err(key_err(format!(
                "must be {KEY_LEN} bytes, got {}",
                bytes.len()
            )));
        }
        let digest = Sha256::new()
            .chain_update(b"bulwark-secrets master key id v1\0")
            .chain_update(bytes)
            .finalize();
        let id = format!("mk-{}", hex::encode(&digest[..8]));
        Self::with_id(id, bytes)
    }

    /// A key from 32 raw bytes with an explicit id (1–64 characters of `A-Z a-z 0-9 _ . -`).
    pub fn with_id(id: impl Into<String>, bytes: &[u8]) -> Result<Self> {
        let id = id.into();
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(key_err(
                "key id must be 1-64 characters of A-Z a-z 0-9 _ . -",
            ));
        }
        if bytes.len() != KEY_LEN {
            return Err(key_err(format!(
                "must be {KEY_LEN} bytes, got {}",
                bytes.len()
            )));
        }
        Ok(Self {
            id,
            key: aes_key(bytes)?,
        })
    }

    /// Decodes base64 (standard or URL-safe, padding optional) or hex text.
    pub fn decode(text: &str) -> Result<Zeroizing<Vec<u8>>> {
        let t = text.trim();
        if t.len() == 2 * KEY_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return hex::decode(t)
                .map(Zeroizing::new)
                .map_err(|_| key_err("invalid hex"));
        }
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        STANDARD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
            .map(Zeroizing::new)
            .map_err(|_| key_err("not base64 or hex text"))
    }

    /// A key from base64 or hex text.
    pub fn from_text(text: &str) -> Result<Self> {
        Self::from_bytes(&Self::decode(text)?)
    }

    /// A key from a file holding base64 or hex text. Warns when the file is readable by
    /// group or others.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_file_with_id(path, None)
    }

    /// Like [`MasterKey::from_file`], with an explicit key id when `id` is given.
    pub fn from_file_with_id(path: &Path, id: Option<&str>) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            key_err(format!(
                "cannot read master key file {}: {e}",
                path.display()
            ))
        })?);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "master key file is readable by group or others; use mode 0600");
                }
            }
        }
        let bytes = Self::decode(&text)
            .map_err(|e| key_err(format!("master key file {}: {e}", path.display())))?;
        match id {
            Some(id) => Self::with_id(id, &bytes),
            None => Self::from_bytes(&bytes),
        }
        .map_err(|e| key_err(format!("master key file {}: {e}", path.display())))
    }

    /// Generates a random key; returns it with its base64 text (to write to a key file).
    pub fn generate() -> Result<(Self, Secret)> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| SecretsError::Crypto("random generator failed"))?;
        let text = base64::engine::general_purpose::STANDARD.encode(bytes.as_ref());
        Ok((Self::from_bytes(bytes.as_ref())?, Secret::new(text)))
    }

    /// The key id recorded with every data key it wraps.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The active master key (used for new writes and re-wrapping) plus older keys still
/// needed to read rows not yet re-wrapped.
#[derive(Debug)]
pub struct MasterKeyring {
    active: MasterKey,
    previous: Vec<MasterKey>,
}

impl MasterKeyring {
    /// A keyring with only `active`.
    #[must_use]
    pub fn new(active: MasterKey) -> Self {
        Self {
            active,
            previous: Vec::new(),
        }
    }

    /// Adds an older key for reading (ignored if its id equals one already present).
    #[must_use]
    pub fn with_previous(mut self, key: MasterKey) -> Self {
        if self.find(&key.id).is_none() {
            self.previous.push(key);
        }
        self
    }

    /// The active key's id.
    #[must_use]
    pub fn active_id(&self) -> &str {
        &self.active.id
    }

    fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.active)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

fn push_lp(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u64).to_be_bytes());
    out.extend_from_slice(field);
}

fn value_aad(store: &str, name: &str, version: i32) -> Vec<u8> {
    let mut aad = b"bulwark-secrets/v1/value".to_vec();
    push_lp(&mut aad, store.as_bytes());
    push_lp(&mut aad, name.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn dek_aad(store: &str, name: &str, version: i32, key_id: &str) -> Vec<u8> {
    let mut aad = b"bulwark-secrets/v1/dek".to_vec();
    push_lp(&mut aad, store.as_bytes());
    push_lp(&mut aad, name.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    push_lp(&mut aad, key_id.as_bytes());
    aad
}

fn random<const N: usize>(rng: &SystemRandom) -> Result<Zeroizing<[u8; N]>> {
    let mut out = Zeroizing::new([0u8; N]);
    rng.fill(out.as_mut())
        .map_err(|_| SecretsError::Crypto("random generator failed"))?;
    Ok(out)
}

fn seal(
    key: &LessSafeKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buf.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(*nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| SecretsError::Crypto("seal failed"))?;
    Ok(buf)
}

/// Opens `sealed`; `None` when authentication fails. The plaintext is zeroized on drop.
fn open(key: &LessSafeKey, nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = Zeroizing::new(sealed.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

/// Connection settings for [`PostgresStore::connect_lazy`].
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://` connection URL (may hold a password, hence [`Secret`]).
    pub url: Secret,
    /// Schema to use (sets `search_path`); `None` for the server default.
    pub schema: Option<String>,
    /// Partition of the table this store reads and writes (several stores can share a
    /// table); default: the store name.
    pub namespace: Option<String>,
    /// Pool size; default 5.
    pub max_connections: u32,
    /// How long to wait for a connection before reporting the store unavailable.
    pub acquire_timeout: Duration,
}

impl PostgresConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<Secret>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            namespace: None,
            max_connections: 5,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// One version of a secret (metadata only).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionInfo {
    /// Version number, from 1.
    pub version: i32,
    /// Master key that wraps its data key.
    pub key_id: String,
    /// When it was written.
    pub created_at: OffsetDateTime,
    /// When it was soft-deleted, if it was.
    pub deleted_at: Option<OffsetDateTime>,
}

/// Outcome of [`PostgresStore::rewrap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Data keys re-wrapped under the active master key.
    pub rewrapped: u64,
}

/// The encrypted, versioned Postgres store. See the module docs for the scheme.
pub struct PostgresStore {
    name: String,
    namespace: String,
    schema: Option<String>,
    pool: PgPool,
    keys: MasterKeyring,
    rng: SystemRandom,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("schema", &self.schema)
            .field("active_key_id", &self.keys.active_id())
            .finish_non_exhaustive()
    }
}

fn valid_schema(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_lowercase() || f == '_')
        && s.len() <= 63
        && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

const SELECT_COLS: &str = "version, key_id, dek_nonce, wrapped_dek, value_nonce, ciphertext";

impl PostgresStore {
    /// A store over a lazily connecting pool: nothing is contacted until first use, so a
    /// database that is down makes reads fail with [`SecretsError::Unavailable`] rather
    /// than making startup fail.
    pub fn connect_lazy(
        name: impl Into<String>,
        config: PostgresConfig,
        keys: MasterKeyring,
    ) -> Result<Self> {
        let name = name.into();
        let mut opts = PgConnectOptions::from_str(config.url.expose()).map_err(|_| {
            SecretsError::Unavailable {
                store: name.clone(),
                reason: "connection string is not a valid postgres URL".into(),
            }
        })?;
        if let Some(schema) = &config.schema {
            if !valid_schema(schema) {
                return Err(SecretsError::Unavailable {
                    store: name,
                    reason: "schema must be 1-63 characters of a-z 0-9 _".into(),
                });
            }
            opts = opts.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .connect_lazy_with(opts);
        let namespace = config.namespace.unwrap_or_else(|| name.clone());
        Ok(Self {
            name,
            namespace,
            schema: config.schema,
            pool,
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// A store over an existing pool (whose `search_path` already points at the table).
    pub fn from_pool(
        name: impl Into<String>,
        namespace: impl Into<String>,
        pool: PgPool,
        keys: MasterKeyring,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            schema: None,
            pool,
            keys,
            rng: SystemRandom::new(),
        }
    }

    /// The pool (for admin tooling and tests).
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The active master key id.
    #[must_use]
    pub fn active_key_id(&self) -> &str {
        self.keys.active_id()
    }

    fn db_err(&self, e: sqlx::Error) -> SecretsError {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed => SecretsError::Unavailable {
                store: self.name.clone(),
                reason: "database unreachable".into(),
            },
            source => SecretsError::Database {
                store: self.name.clone(),
                source,
            },
        }
    }

    /// Creates the schema (if one is configured) and applies the Bulwark migrations
    /// ([`bulwark_db::MIGRATOR`]).
    pub async fn migrate(&self) -> Result<()> {
        if let Some(schema) = &self.schema {
            // `schema` was validated as [a-z_][a-z0-9_]*, so quoting it is safe.
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&self.pool)
                .await
                .map_err(|e| self.db_err(e))?;
        }
        bulwark_db::MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => self.db_err(e),
                other => SecretsError::Unavailable {
                    store: self.name.clone(),
                    reason: format!("migration failed: {other}"),
                },
            })
    }

    /// Writes `value` as a new version of `key`; returns the version number.
    pub async fn put_version(&self, key: &str, value: &SecretMap) -> Result<i32> {
        super::validate_path_key(&self.name, key)?;
        let plaintext = Node::from(value).to_field();
        let mut tx = self.pool.begin().await.map_err(|e| self.db_err(e))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))")
            .bind(&self.namespace)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db_err(e))?;
        let version: i32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM bulwark_secret_versions WHERE store = $1 AND name = $2",
        )
        .bind(&self.namespace)
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.db_err(e))?;

        let dek = random::<KEY_LEN>(&self.rng)?;
        let value_nonce = random::<NONCE_LEN>(&self.rng)?;
        let dek_nonce = random::<NONCE_LEN>(&self.rng)?;
        let ciphertext = seal(
            &aes_key(dek.as_ref())?,
            &value_nonce,
            &value_aad(&self.namespace, key, version),
            plaintext.expose().as_bytes(),
        )?;
        let active = &self.keys.active;
        let wrapped = seal(
            &active.key,
            &dek_nonce,
            &dek_aad(&self.namespace, key, version, &active.id),
            dek.as_ref(),
        )?;
        sqlx::query(
            "INSERT INTO bulwark_secret_versions \
             (store, name, version, key_id, dek_nonce, wrapped_dek, value_nonce, ciphertext) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&self.namespace)
        .bind(key)
        .bind(version)
        .bind(&active.id)
        .bind(dek_nonce.as_ref())
        .bind(&wrapped)
        .bind(value_nonce.as_ref())
        .bind(&ciphertext)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db_err(e))?;
        tx.commit().await.map_err(|e| self.db_err(e))?;
        tracing::info!(store = %self.name, key, version, key_id = %active.id, "secret version written");
        Ok(version)
    }

    fn decrypt_row(&self, key: &str, row: &sqlx::postgres::PgRow) -> Result<(i32, SecretMap)> {
        let get = |col: &str| -> Result<Vec<u8>> { row.try_get(col).map_err(|e| self.db_err(e)) };
        let version: i32 = row.try_get("version").map_err(|e| self.db_err(e))?;
        let key_id: String = row.try_get("key_id").map_err(|e| self.db_err(e))?;
        let integrity = || SecretsError::Integrity {
            store: self.name.clone(),
            key: key.to_owned(),
            version,
        };
        let master = self
            .keys
            .find(&key_id)
            .ok_or_else(|| SecretsError::UnknownMasterKey {
                store: self.name.clone(),
                key: key.to_owned(),
                key_id: key_id.clone(),
            })?;
        let dek = open(
            &master.key,
            &get("dek_nonce")?,
            &dek_aad(&self.namespace, key, version, &key_id),
            &get("wrapped_dek")?,
        )
        .ok_or_else(integrity)?;
        let plaintext = open(
            &aes_key(&dek).map_err(|_| integrity())?,
            &get("value_nonce")?,
            &value_aad(&self.namespace, key, version),
            &get("ciphertext")?,
        )
        .ok_or_else(integrity)?;
        let map: SecretMap = serde_json::from_slice(&plaintext).map_err(|_| integrity())?;
        Ok((version, map))
    }

    /// Reads the latest non-deleted version: `(version, fields)`.
    pub async fn get_latest(&self, key: &str) -> Result<Option<(i32, SecretMap)>> {
        super::validate_path_key(&self.name, key)?;
        let row = sqlx::query(&format!(
            "SELECT {SELECT_COLS} FROM bulwark_secret_versions \
             WHERE store = $1 AND name = $2 AND deleted_at IS NULL ORDER BY version DESC LIMIT 1"
        ))
        .bind(&self.namespace)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        row.map(|r| self.decrypt_row(key, &r)).transpose()
    }

    /// Reads a pinned version; `None` when it does not exist or is soft-deleted.
    pub async fn get_version(&self, key: &str, version: i32) -> Result<Option<SecretMap>> {
        super::validate_path_key(&self.name, key)?;
        let row = sqlx::query(&format!(
            "SELECT {SELECT_COLS} FROM bulwark_secret_versions \
             WHERE store = $1 AND name = $2 AND version = $3 AND deleted_at IS NULL"
        ))
        .bind(&self.namespace)
        .bind(key)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        row.map(|r| self.decrypt_row(key, &r).map(|(_, m)| m))
            .transpose()
    }

    /// Soft-deletes every version of `key`; returns how many versions were deleted.
    /// A later write starts a new, visible version.
    pub async fn delete(&self, key: &str) -> Result<u64> {
        self.mark_deleted(key, None).await
    }

    /// Soft-deletes one version.
    pub async fn delete_version(&self, key: &str, version: i32) -> Result<u64> {
        self.mark_deleted(key, Some(version)).await
    }

    async fn mark_deleted(&self, key: &str, version: Option<i32>) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE bulwark_secret_versions SET deleted_at = now() \
             WHERE store = $1 AND name = $2 AND deleted_at IS NULL AND ($3::int IS NULL OR version = $3)",
        )
        .bind(&self.namespace)
        .bind(key)
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        tracing::info!(store = %self.name, key, ?version, "secret soft-deleted");
        Ok(r.rows_affected())
    }

    /// Undoes soft deletes of `key` (all versions).
    pub async fn restore(&self, key: &str) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE bulwark_secret_versions SET deleted_at = NULL WHERE store = $1 AND name = $2 AND deleted_at IS NOT NULL",
        )
        .bind(&self.namespace)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        Ok(r.rows_affected())
    }

    /// All versions of `key`, oldest first, including deleted ones.
    pub async fn versions(&self, key: &str) -> Result<Vec<VersionInfo>> {
        let rows = sqlx::query(
            "SELECT version, key_id, created_at, deleted_at FROM bulwark_secret_versions \
             WHERE store = $1 AND name = $2 ORDER BY version",
        )
        .bind(&self.namespace)
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        rows.iter()
            .map(|r| {
                Ok(VersionInfo {
                    version: r.try_get("version")?,
                    key_id: r.try_get("key_id")?,
                    created_at: r.try_get("created_at")?,
                    deleted_at: r.try_get("deleted_at")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(|e| self.db_err(e))
    }

    /// Re-wraps every data key of this store that is not under the active master key
    /// (deleted versions included). Values are not re-encrypted. Safe to run repeatedly
    /// and concurrently with reads and writes; returns how many keys were re-wrapped.
    /// Fails (having re-wrapped what it could before) when a row's key is not loaded.
    pub async fn rewrap(&self) -> Result<RewrapReport> {
        let active = &self.keys.active;
        let mut report = RewrapReport::default();
        loop {
            let rows = sqlx::query(
                "SELECT name, version, key_id, dek_nonce, wrapped_dek FROM bulwark_secret_versions \
                 WHERE store = $1 AND key_id <> $2 ORDER BY name, version LIMIT 256",
            )
            .bind(&self.namespace)
            .bind(&active.id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let name: String = row.try_get("name").map_err(|e| self.db_err(e))?;
                let version: i32 = row.try_get("version").map_err(|e| self.db_err(e))?;
                let old_id: String = row.try_get("key_id").map_err(|e| self.db_err(e))?;
                let nonce: Vec<u8> = row.try_get("dek_nonce").map_err(|e| self.db_err(e))?;
                let wrapped: Vec<u8> = row.try_get("wrapped_dek").map_err(|e| self.db_err(e))?;
                let old =
                    self.keys
                        .find(&old_id)
                        .ok_or_else(|| SecretsError::UnknownMasterKey {
                            store: self.name.clone(),
                            key: name.clone(),
                            key_id: old_id.clone(),
                        })?;
                let dek = open(
                    &old.key,
                    &nonce,
                    &dek_aad(&self.namespace, &name, version, &old_id),
                    &wrapped,
                )
                .ok_or_else(|| SecretsError::Integrity {
                    store: self.name.clone(),
                    key: name.clone(),
                    version,
                })?;
                let new_nonce = random::<NONCE_LEN>(&self.rng)?;
                let rewrapped = seal(
                    &active.key,
                    &new_nonce,
                    &dek_aad(&self.namespace, &name, version, &active.id),
                    &dek,
                )?;
                let r = sqlx::query(
                    "UPDATE bulwark_secret_versions SET key_id = $1, dek_nonce = $2, wrapped_dek = $3, rewrapped_at = now() \
                     WHERE store = $4 AND name = $5 AND version = $6 AND key_id = $7",
                )
                .bind(&active.id)
                .bind(new_nonce.as_ref())
                .bind(&rewrapped)
                .bind(&self.namespace)
                .bind(&name)
                .bind(version)
                .bind(&old_id)
                .execute(&self.pool)
                .await
                .map_err(|e| self.db_err(e))?;
                report.rewrapped += r.rows_affected();
            }
        }
        tracing::info!(store = %self.name, rewrapped = report.rewrapped, key_id = %active.id, "master key rotation: data keys re-wrapped");
        Ok(report)
    }
}

#[async_trait]
impl SecretStore for PostgresStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn get_optional(&self, key: &str) -> Result<Option<SecretMap>> {
        Ok(self.get_latest(key).await?.map(|(_, m)| m))
    }

    async fn list_names(&self) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT DISTINCT name FROM bulwark_secret_versions WHERE store = $1 AND deleted_at IS NULL ORDER BY name",
        )
        .bind(&self.namespace)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))
    }

    async fn put(&self, key: &str, value: &SecretMap) -> Result<()> {
        self.put_version(key, value).await.map(|_| ())
    }
}
