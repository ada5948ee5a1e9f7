//! Shared helpers for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};

use bulwark_db::testing::TestDatabase;
use bulwark_secrets::{MasterKey, MasterKeyring, PostgresConfig, PostgresStore};

pub mod vault_standin;

/// A value that must never show up in any output.
pub const PLANTED: &str = "PLANTED-s3cr3t-9f2c7e11-do-not-print";

/// Asserts `text` does not contain the planted secret.
#[track_caller]
pub fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(PLANTED),
        "{what} leaked the planted secret: {text}"
    );
}

/// A fresh, uniquely named schema for one test.
pub fn unique_schema() -> String {
    format!("bulwark_secrets_test_{}", uuid::Uuid::new_v4().simple())
}

/// A store over `schema` with `keys`, store name `name` (namespace = name).
pub fn pg_store(url: &str, schema: &str, name: &str, keys: MasterKeyring) -> PostgresStore {
    let mut cfg = PostgresConfig::new(url);
    cfg.schema = Some(schema.to_owned());
    PostgresStore::connect_lazy(name, cfg, keys).expect("store")
}

/// A throwaway database (dropped with the returned guard) and a store migrated into a
/// fresh schema of it, with the database's URL; `None` when the test is skipped.
pub async fn fresh_pg(
    keys: MasterKeyring,
) -> Option<(TestDatabase, PostgresStore, String, String)> {
    let db = TestDatabase::empty("secrets").await?;
    let url = db.url().to_owned();
    let schema = unique_schema();
    let store = pg_store(&url, &schema, "default", keys);
    store.migrate().await.expect("migrate");
    Some((db, store, schema, url))
}

pub fn key() -> MasterKey {
    MasterKey::generate().expect("key").0
}

/// Captures everything `tracing` emits (all levels) while the guard lives.
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    pub fn start() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = Writer(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || w.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self { buf, _guard: guard }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}
