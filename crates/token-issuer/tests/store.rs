//! The client store against a throwaway database (skipped without BULWARK_TEST_DATABASE_URL).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bulwark_db::testing::TestDatabase;
use bulwark_token_issuer::{ClientSecret, ClientStore, Error, ScopeSet};
use time::Duration;

fn accepts(record: &bulwark_token_issuer::store::ClientRecord, secret: &ClientSecret) -> bool {
    record.secrets.iter().any(|(_, h)| h.matches(secret))
}

#[tokio::test]
async fn register_is_idempotent_and_rotation_retires_the_old_secret_after_its_grace() {
    let Some(db) = TestDatabase::migrated("oauth").await else {
        return;
    };
    let store = ClientStore::new(db.pool().clone());
    let scopes: ScopeSet = "temporal:default:write".parse().unwrap();
    let first = store
        .register("worker", "test", &scopes, "temporal")
        .await
        .unwrap()
        .expect("a new client gets a secret");
    // A second registration changes nothing: bootstrap runs on every start.
    assert!(
        store
            .register("worker", "other", &scopes, "other")
            .await
            .unwrap()
            .is_none()
    );
    let record = store.lookup("worker").await.unwrap().unwrap();
    assert_eq!(record.client.description, "test");
    assert_eq!(record.client.audience, "temporal");
    assert!(accepts(&record, &first));

    // With a grace period both secrets work ...
    let (v2, second) = store
        .rotate_secret("worker", Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(v2, 2);
    let record = store.lookup("worker").await.unwrap().unwrap();
    assert!(accepts(&record, &first) && accepts(&record, &second));
    // ... without one only the newest does.
    let (v3, third) = store.rotate_secret("worker", Duration::ZERO).await.unwrap();
    assert_eq!(v3, 3);
    let record = store.lookup("worker").await.unwrap().unwrap();
    assert!(accepts(&record, &third));
    assert!(!accepts(&record, &first) && !accepts(&record, &second));

    assert!(matches!(
        store.rotate_secret("nobody", Duration::ZERO).await,
        Err(Error::UnknownClient(_))
    ));
    assert!(store.lookup("nobody").await.unwrap().is_none());
}
