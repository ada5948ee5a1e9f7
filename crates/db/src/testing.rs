//! Throwaway databases for tests (feature `testing`).
//!
//! `BULWARK_TEST_DATABASE_URL` names a Postgres server (and a database on it that the role
//! can connect to, to issue `CREATE DATABASE`). Each [`TestDatabase`] is a new database on
//! that server, `bulwark_<label>_test_<random>`, so tests run in parallel without seeing each
//! other's rows, and is dropped again when the value is dropped — also when the test fails.
//!
//! Without the variable a test is skipped with a notice on stderr; with
//! `BULWARK_REQUIRE_DB=1` (CI) it fails instead, so a misconfigured run cannot pass by
//! skipping every database test.
//!
//! The harness panics on setup errors: it exists for tests, and a panic is the failure report.
//! Its messages never include the URL, which holds a password.
#![allow(clippy::expect_used)] // test support: a panic is the failure report

use std::fmt;
use std::io::Write as _;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::MIGRATOR;

/// The variable naming the test server.
pub const URL_VAR: &str = "BULWARK_TEST_DATABASE_URL";
/// Set to `1` to fail, not skip, database tests when [`URL_VAR`] is unset.
pub const REQUIRE_VAR: &str = "BULWARK_REQUIRE_DB";

/// The test server's URL, or `None` after printing a skip notice when [`URL_VAR`] is unset
/// or empty. Panics instead when `BULWARK_REQUIRE_DB=1`.
pub fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let test = current_test();
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                panic!("{test}: {REQUIRE_VAR}=1 but {URL_VAR} is not set");
            }
            // Straight to stderr, not `eprintln!`: the test harness captures the latter, and
            // a skip that nobody sees looks like a pass.
            let _ = writeln!(std::io::stderr(), "{test}: skipped: {URL_VAR} not set");
            None
        }
    }
}

/// The running test's name: libtest names each test's thread after the test.
fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("database test")
        .to_owned()
}

/// A fresh database on the test server, dropped (best effort) when this value is dropped.
///
/// Declare it before anything that holds its pool, so those are dropped first.
pub struct TestDatabase {
    pool: PgPool,
    url: String,
    name: String,
    server_url: String,
}

impl fmt::Debug for TestDatabase {
    // Not the URLs: they hold the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// A fresh database with the Bulwark migrations applied, or `None` when the test is
    /// skipped (see [`server_url`]). `label` (lowercase letters, digits, `_`) names the
    /// crate or suite, so a leftover database says where it came from.
    pub async fn migrated(label: &str) -> Option<Self> {
        let db = Self::empty(label).await?;
        MIGRATOR
            .run(&db.pool)
            .await
            .expect("applying the migrations to the test database");
        Some(db)
    }

    /// A fresh database without the migrations, for code that applies them itself.
    pub async fn empty(label: &str) -> Option<Self> {
        let server_url = server_url()?;
        let name = database_name(label);
        let server = admin_pool(&server_url)
            .await
            .expect("connecting to the test server (BULWARK_TEST_DATABASE_URL)");
        // `name` is `bulwark_<[a-z0-9_]+>_test_<hex>`: safe to interpolate as an identifier.
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&server)
            .await
            .expect("creating the test database");
        server.close().await;
        let url = with_database(&server_url, &name);
        let pool = PgPool::connect(&url)
            .await
            .expect("connecting to the new test database");
        Some(TestDatabase {
            pool,
            url,
            name,
            server_url,
        })
    }

    /// A pool on the database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The database's URL (holds the server's password: do not print it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, where blocking on a future would panic, and
        // a panic while unwinding aborts the whole test binary: so the drop runs on its own
        // thread and runtime, and every failure is ignored. `WITH (FORCE)` ends this pool's
        // connections (and any a test leaked) on the server side.
        let server_url = std::mem::take(&mut self.server_url);
        let name = std::mem::take(&mut self.name);
        let dropper = std::thread::Builder::new()
            .name("drop test database".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    let Ok(server) = admin_pool(&server_url).await else {
                        return;
                    };
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&server)
                            .await;
                    server.close().await;
                });
            });
        if let Ok(dropper) = dropper {
            let _ = dropper.join();
        }
    }
}

async fn admin_pool(server_url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(server_url)
        .await
}

/// `bulwark_<label>_test_<16 hex digits>`: 64 random bits keep parallel tests (and
/// parallel test binaries) apart.
fn database_name(label: &str) -> String {
    assert!(
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "test database label {label:?}: use lowercase letters, digits and '_'"
    );
    let random = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("bulwark_{label}_test_{}", &random[..16]);
    // Postgres truncates longer identifiers, which would make the drop miss the database.
    assert!(
        name.len() <= 63,
        "test database label {label:?} is too long"
    );
    name
}

/// `url` with its database (the path) replaced by `name`, keeping the query (`sslmode`, ...).
fn with_database(url: &str, name: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (url, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let authority_end = main[authority_start..]
        .find('/')
        .map_or(main.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &main[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_query_kept() {
        for (url, want) in [
            ("postgres://u:p@h:5432/postgres", "postgres://u:p@h:5432/x"),
            ("postgres://u:p@h:5432", "postgres://u:p@h:5432/x"),
            ("postgres://u:p@h/", "postgres://u:p@h/x"),
            (
                "postgres://u:p@h/db?sslmode=require&application_name=t",
                "postgres://u:p@h/x?sslmode=require&application_name=t",
            ),
            (
                "postgres://u:p@h?sslmode=disable",
                "postgres://u:p@h/x?sslmode=disable",
            ),
            (
                "postgresql:///db?host=/run/postgresql",
                "postgresql:///x?host=/run/postgresql",
            ),
        ] {
            assert_eq!(with_database(url, "x"), want, "{url}");
        }
    }

    #[test]
    fn names_are_unique_and_labels_checked() {
        let a = database_name("oauth");
        let b = database_name("oauth");
        assert_ne!(a, b);
        assert!(a.starts_with("bulwark_oauth_test_"), "{a}");
        for bad in [
            "",
            "Oauth",
            "a-b",
            "a\"; DROP",
            "a_label_that_is_far_too_long_for_postgres",
        ] {
            assert!(
                std::panic::catch_unwind(|| database_name(bad)).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
