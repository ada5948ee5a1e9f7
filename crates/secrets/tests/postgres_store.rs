//! The encrypted, versioned Postgres store against a real Postgres.
//!
//! Needs `BULWARK_TEST_DATABASE_URL`; each test works in its own throwaway database, in a
//! named schema (so the store's `schema` setting is exercised too). Without the variable the
//! tests print "skipped" and pass, unless `BULWARK_REQUIRE_DB=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use bulwark_db::testing::TestDatabase;
use bulwark_secrets::*;
use common::{PLANTED, assert_clean, fresh_pg, key, pg_store};
use sqlx::Row;

fn fields(pairs: &[(&str, &str)]) -> SecretMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Secret::new(*v)))
        .collect()
}

fn pw(m: &SecretMap) -> &str {
    m["password"].expose()
}

#[tokio::test]
async fn round_trip_versions_pinned_reads_and_listing() {
    let Some((_db, store, _, _)) = fresh_pg(MasterKeyring::new(key())).await else {
        return;
    };
    assert_eq!(
        store
            .put_version("gh", &fields(&[("username", "bot"), ("password", "v1")]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .put_version("gh", &fields(&[("username", "bot"), ("password", "v2")]))
            .await
            .unwrap(),
        2
    );
    store
        .put("team/other", &fields(&[("token", "x")]))
        .await
        .unwrap();

    let (v, m) = store.get_latest("gh").await.unwrap().unwrap();
    assert_eq!((v, pw(&m)), (2, "v2"));
    assert_eq!(m["username"].expose(), "bot");
    assert_eq!(
        pw(&store.get_version("gh", 1).await.unwrap().unwrap()),
        "v1"
    );
    assert!(store.get_version("gh", 3).await.unwrap().is_none());
    assert!(store.get_optional("absent").await.unwrap().is_none());
    assert!(matches!(
        store.get("absent").await,
        Err(SecretsError::NotFound { .. })
    ));
    assert_eq!(store.list_names().await.unwrap(), ["gh", "team/other"]);
    let versions = store.versions("gh").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(
        versions
            .iter()
            .all(|v| v.key_id == store.active_key_id() && v.deleted_at.is_none())
    );
    assert!(matches!(
        store.put_version("../x", &fields(&[("a", "b")])).await,
        Err(SecretsError::InvalidKey { .. })
    ));
}

#[tokio::test]
async fn concurrent_writers_get_distinct_versions() {
    let Some((_db, store, _, _)) = fresh_pg(MasterKeyring::new(key())).await else {
        return;
    };
    let store = std::sync::Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.put_version("race", &fields(&[("password", &format!("p{i}"))]))
                .await
                .unwrap()
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort();
    assert_eq!(got, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn table_holds_no_plaintext() {
    let Some((_db, store, _, _)) = fresh_pg(MasterKeyring::new(key())).await else {
        return;
    };
    store
        .put_version("gh", &fields(&[("username", "bot"), ("password", PLANTED)]))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT * FROM bulwark_secret_versions")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    // Every column, as text, and the raw bytes of the byte columns.
    let dump: Vec<String> = sqlx::query_scalar("SELECT t::text FROM bulwark_secret_versions t")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for text in &dump {
        assert_clean("row as text", text);
        assert!(!text.contains("username"), "field names are encrypted too");
    }
    for col in ["dek_nonce", "wrapped_dek", "value_nonce", "ciphertext"] {
        let bytes: Vec<u8> = rows[0].get(col);
        assert!(
            !bytes
                .windows(PLANTED.len())
                .any(|w| w == PLANTED.as_bytes()),
            "{col} holds plaintext"
        );
    }
}

#[tokio::test]
async fn soft_delete_hides_every_version_and_can_be_restored() {
    let Some((_db, store, schema, _)) = fresh_pg(MasterKeyring::new(key())).await else {
        return;
    };
    store
        .put_version("gh", &fields(&[("password", "v1")]))
        .await
        .unwrap();
    store
        .put_version("gh", &fields(&[("password", "v2")]))
        .await
        .unwrap();
    assert_eq!(store.delete("gh").await.unwrap(), 2);
    assert!(store.get_optional("gh").await.unwrap().is_none());
    assert!(store.get_version("gh", 1).await.unwrap().is_none());
    assert!(store.list_names().await.unwrap().is_empty());
    // Rows still exist (soft), marked deleted.
    assert!(
        store
            .versions("gh")
            .await
            .unwrap()
            .iter()
            .all(|v| v.deleted_at.is_some())
    );
    // Through the resolver: fails closed as "not found".
    let r = Resolver::builder()
        .store_arc(std::sync::Arc::new(pg_clone(&store, &schema)))
        .build();
    let e = r.resolve(&basic_ref("gh")).await.unwrap_err();
    assert!(
        matches!(e, SecretsError::CredentialNotFound { .. }),
        "{e:?}"
    );
    // Restore brings them back; deleting one version falls back to the previous one.
    assert_eq!(store.restore("gh").await.unwrap(), 2);
    assert_eq!(store.delete_version("gh", 2).await.unwrap(), 1);
    assert_eq!(pw(&store.get("gh").await.unwrap()), "v1");
    // A write after delete is a new, visible version.
    store.delete("gh").await.unwrap();
    assert_eq!(
        store
            .put_version("gh", &fields(&[("password", "v3")]))
            .await
            .unwrap(),
        3
    );
    assert_eq!(pw(&store.get("gh").await.unwrap()), "v3");
}

fn pg_clone(store: &PostgresStore, _schema: &str) -> PostgresStore {
    // Same pool, same namespace; the active key does not matter for the read path here
    // because the test only checks "not found".
    PostgresStore::from_pool(
        "default",
        "default",
        store.pool().clone(),
        MasterKeyring::new(key()),
    )
}

#[tokio::test]
async fn wrong_master_key_fails_closed() {
    let Some((_db, store, schema, url)) = fresh_pg(MasterKeyring::new(key())).await else {
        return;
    };
    store
        .put_version("gh", &fields(&[("password", PLANTED)]))
        .await
        .unwrap();

    // A different key: unknown key id.
    let other = pg_store(&url, &schema, "default", MasterKeyring::new(key()));
    let e = other.get("gh").await.unwrap_err();
    assert!(matches!(e, SecretsError::UnknownMasterKey { .. }), "{e:?}");
    assert_clean("error", &format!("{e} {e:?}"));

    // A different key forced under the same id: authentication fails.
    let forced = MasterKey::with_id(store.active_key_id(), &[7u8; 32]).unwrap();
    let other = pg_store(&url, &schema, "default", MasterKeyring::new(forced));
    let e = other.get("gh").await.unwrap_err();
    assert!(
        matches!(e, SecretsError::Integrity { version: 1, .. }),
        "{e:?}"
    );

    // Through the resolver the error names the reference and keeps the store error as source.
    let r = Resolver::builder().store(other).build();
    let e = r.resolve(&basic_ref("gh")).await.unwrap_err();
    assert!(
        matches!(&e, SecretsError::Store { source, .. } if matches!(**source, SecretsError::Integrity { .. })),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("credential `gh` (type `basic`, store `default`)"),
        "{e}"
    );
    assert_clean("resolver error", &format!("{e} {e:?}"));
}

#[tokio::test]
async fn tampered_or_swapped_rows_fail_integrity() {
    let Some((_db, store, _, _)) = fresh_pg(MasterKeyring::new(key())).await else {
        return;
    };
    store
        .put_version("a", &fields(&[("password", "alpha")]))
        .await
        .unwrap();
    store
        .put_version("b", &fields(&[("password", "bravo")]))
        .await
        .unwrap();
    store
        .put_version("c", &fields(&[("password", "charlie")]))
        .await
        .unwrap();
    store
        .put_version("c", &fields(&[("password", "charlie2")]))
        .await
        .unwrap();

    // Flip one ciphertext bit of `a`.
    sqlx::query(
        "UPDATE bulwark_secret_versions SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE name = 'a'",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert!(matches!(
        store.get("a").await,
        Err(SecretsError::Integrity { .. })
    ));

    // Copy b's whole encrypted row content (data key, nonces, ciphertext) into `c` v2:
    // the associated data binds it to (b, 1), so it does not open as (c, 2).
    sqlx::query(
        "UPDATE bulwark_secret_versions t SET dek_nonce = s.dek_nonce, wrapped_dek = s.wrapped_dek, \
         value_nonce = s.value_nonce, ciphertext = s.ciphertext \
         FROM bulwark_secret_versions s WHERE s.name = 'b' AND t.name = 'c' AND t.version = 2",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert!(matches!(
        store.get("c").await,
        Err(SecretsError::Integrity { version: 2, .. })
    ));

    // Re-label a row's version (v1 → v3): also refused.
    sqlx::query("UPDATE bulwark_secret_versions SET version = 3 WHERE name = 'c' AND version = 1")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.get_version("c", 3).await,
        Err(SecretsError::Integrity { version: 3, .. })
    ));

    // Untouched rows still read.
    assert_eq!(pw(&store.get("b").await.unwrap()), "bravo");
}

#[tokio::test]
async fn master_key_rotation_rewraps_and_keeps_every_version_readable() {
    let old = MasterKey::generate().unwrap().1;
    let new = MasterKey::generate().unwrap().1;
    let k = |s: &Secret| MasterKey::from_text(s.expose()).unwrap();
    let Some((_db, store, schema, url)) = fresh_pg(MasterKeyring::new(k(&old))).await else {
        return;
    };
    store
        .put_version("gh", &fields(&[("password", "v1")]))
        .await
        .unwrap();
    store
        .put_version("gh", &fields(&[("password", "v2")]))
        .await
        .unwrap();
    store
        .put_version("gone", &fields(&[("password", "x")]))
        .await
        .unwrap();
    store.delete("gone").await.unwrap();
    let cipher_before: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT ciphertext FROM bulwark_secret_versions ORDER BY name, version")
            .fetch_all(store.pool())
            .await
            .unwrap();

    // Rotation step 1: new key active, old key kept for reading.
    let rotating = pg_store(
        &url,
        &schema,
        "default",
        MasterKeyring::new(k(&new)).with_previous(k(&old)),
    );
    assert_eq!(
        pw(&rotating.get("gh").await.unwrap()),
        "v2",
        "old rows readable during rotation"
    );
    assert_eq!(
        rotating
            .put_version("gh", &fields(&[("password", "v3")]))
            .await
            .unwrap(),
        3
    );
    let report = rotating.rewrap().await.unwrap();
    assert_eq!(
        report.rewrapped, 3,
        "two versions of gh and the deleted one"
    );
    assert_eq!(rotating.rewrap().await.unwrap().rewrapped, 0, "idempotent");

    // Values were not re-encrypted.
    let cipher_after: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT ciphertext FROM bulwark_secret_versions WHERE NOT (name = 'gh' AND version = 3) ORDER BY name, version",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(cipher_before, cipher_after);

    // Step 2: old key retired. Latest and pinned old versions still read.
    let rotated = pg_store(&url, &schema, "default", MasterKeyring::new(k(&new)));
    assert_eq!(pw(&rotated.get("gh").await.unwrap()), "v3");
    assert_eq!(
        pw(&rotated.get_version("gh", 1).await.unwrap().unwrap()),
        "v1"
    );
    assert_eq!(
        pw(&rotated.get_version("gh", 2).await.unwrap().unwrap()),
        "v2"
    );
    assert!(
        rotated
            .versions("gh")
            .await
            .unwrap()
            .iter()
            .all(|v| v.key_id == rotated.active_key_id())
    );
    rotated.restore("gone").await.unwrap();
    assert_eq!(pw(&rotated.get("gone").await.unwrap()), "x");

    // And the old key alone can no longer read anything.
    let e = store.get("gh").await.unwrap_err();
    assert!(matches!(e, SecretsError::UnknownMasterKey { .. }), "{e:?}");
}

#[tokio::test]
async fn rewrap_without_the_old_key_reports_it() {
    let Some((_db, store, schema, url)) = fresh_pg(MasterKeyring::new(key())).await else {
        return;
    };
    store
        .put_version("gh", &fields(&[("password", "v1")]))
        .await
        .unwrap();
    let other = pg_store(&url, &schema, "default", MasterKeyring::new(key()));
    let e = other.rewrap().await.unwrap_err();
    assert!(matches!(e, SecretsError::UnknownMasterKey { .. }), "{e:?}");
}

#[tokio::test]
async fn rotated_value_is_seen_by_the_resolver_without_restart() {
    let Some((_db, _, schema, url)) = fresh_pg(MasterKeyring::new(key())).await else {
        return;
    };
    let mk = MasterKey::generate().unwrap().1;
    let mk = || MasterKey::from_text(mk.expose()).unwrap();
    let admin = pg_store(&url, &schema, "default", MasterKeyring::new(mk()));
    admin
        .put_version("gh", &fields(&[("username", "bot"), ("password", "one")]))
        .await
        .unwrap();
    let r = Resolver::builder()
        .store(pg_store(&url, &schema, "default", MasterKeyring::new(mk())))
        .cache_ttl(Duration::from_millis(200))
        .build();
    let get = || async {
        r.resolve(&basic_ref("gh"))
            .await
            .unwrap()
            .as_basic()
            .unwrap()
            .password
            .expose()
            .to_owned()
    };
    assert_eq!(get().await, "one");
    admin
        .put_version("gh", &fields(&[("username", "bot"), ("password", "two")]))
        .await
        .unwrap();
    assert_eq!(get().await, "one", "cached");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(get().await, "two", "seen after the TTL");
    admin
        .put_version("gh", &fields(&[("username", "bot"), ("password", "three")]))
        .await
        .unwrap();
    r.invalidate(&basic_ref("gh"));
    assert_eq!(get().await, "three", "seen after invalidation");
}

#[tokio::test]
async fn unreachable_database_is_unavailable_not_not_found() {
    // Needs no database: nothing listens on port 1.
    let mut cfg = PostgresConfig::new("postgres://postgres@127.0.0.1:1/postgres");
    cfg.acquire_timeout = Duration::from_secs(2);
    let store = PostgresStore::connect_lazy("default", cfg, MasterKeyring::new(key())).unwrap();
    let e = store.get("gh").await.unwrap_err();
    assert!(e.is_unavailable() && !e.is_not_found(), "{e:?}");
    let r = Resolver::builder().store(store).build();
    let e = r
        .get_deployment_secret("worker_client_id")
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    let e = r.resolve(&basic_ref("gh")).await.unwrap_err();
    assert!(
        matches!(e, SecretsError::Store { .. }) && e.is_unavailable(),
        "{e:?}"
    );
}

#[tokio::test]
async fn configured_from_a_component_file() {
    let Some(db) = TestDatabase::empty("secrets").await else {
        return;
    };
    let url = db.url().to_owned();
    let schema = common::unique_schema();
    let dir = tempfile::tempdir().unwrap();
    let (_, key_text) = MasterKey::generate().unwrap();
    std::fs::write(dir.path().join("master.key"), key_text.expose()).unwrap();
    std::fs::write(
        dir.path().join("default.yaml"),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: default\nspec:\n  type: bulwark.secretstores.postgres\n  version: v1\n  metadata:\n\
             \x20   - name: connectionString\n      secretKeyRef:\n        name: TEST_SECRETS_DB_URL\n\
             \x20   - name: masterKeyFile\n      value: master.key\n\
             \x20   - name: masterKeyId\n      value: k2026-01\n\
             \x20   - name: schema\n      value: {schema}\n\
             \x20   - name: runMigrations\n      value: true\n"
        ),
    )
    .unwrap();
    let env = [("TEST_SECRETS_DB_URL".to_string(), url.clone())]
        .into_iter()
        .collect();
    let stores = ComponentSet::new()
        .with_environment(env)
        .load_dir(dir.path())
        .unwrap()
        .build()
        .await
        .unwrap();
    let r = Resolver::builder()
        .stores(stores)
        .environment("development")
        .build();
    r.save_secret(
        "default",
        "gh",
        &fields(&[("username", "bot"), ("password", PLANTED)]),
    )
    .await
    .unwrap();
    let c = r.resolve(&basic_ref("gh")).await.unwrap();
    assert_eq!(c.as_basic().unwrap().password.expose(), PLANTED);
    let store = pg_store(&url, &schema, "default", MasterKeyring::new(key()));
    let v = store.versions("gh").await.unwrap();
    assert_eq!(v[0].key_id, "k2026-01", "explicit key id recorded");
}
