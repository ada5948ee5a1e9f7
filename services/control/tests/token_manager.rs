//! bulwark-token-client's token manager against the real bulwark-control over HTTPS: issue,
//! cache, forced refresh, a rotated secret re-discovered from the store, a disabled client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use bulwark_pki::jwt::{Jwks, VerifyOptions, verify};
use bulwark_token_client::{MemorySource, TokenManager};
use bulwark_token_issuer::IssuerSettings;
use time::OffsetDateTime;

fn manager(h: &support::Harness, store: &MemorySource) -> TokenManager {
    TokenManager::builder(format!("{}/oauth/token", h.url), "worker")
        .ca_bundle_file(h.certs.join("ca.crt"))
        .client_certificate(h.client_cert.clone())
        .secret_store(Arc::new(store.clone()))
        // Keep the process environment out of credential discovery.
        .environment(Arc::new(MemorySource::new()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn manager_gets_caches_refreshes_and_follows_a_rotation() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let store = MemorySource::new()
        .with("worker_client_id", "worker")
        .with("worker_client_secret", h.secret("worker"));
    let m = manager(&h, &store);

    let first = m.get_access_token(false).await.unwrap();
    let jwks: Jwks = h
        .http
        .get(format!("{}/.well-known/jwks.json", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = verify(
        first.expose_secret(),
        &jwks,
        OffsetDateTime::now_utc(),
        &VerifyOptions::new(time::Duration::minutes(15)).audience("temporal"),
    )
    .unwrap();
    assert_eq!(claims.permissions, ["default:write"]);
    assert!(m.is_token_valid());

    let cached = m.get_access_token(false).await.unwrap();
    assert_eq!(
        cached.expose_secret(),
        first.expose_secret(),
        "second call served from cache"
    );
    let forced = m.get_access_token(true).await.unwrap();
    assert_ne!(
        forced.expose_secret(),
        first.expose_secret(),
        "forced refresh asks the endpoint"
    );

    // Rotate with no grace: the old secret stops working at once. The manager fails, clears
    // its cached credentials, and succeeds once the store has the new secret.
    let (_, new_secret) = h
        .store
        .rotate_secret("worker", time::Duration::ZERO)
        .await
        .unwrap();
    assert!(m.get_access_token(true).await.is_err());
    store.set("worker_client_secret", new_secret.expose());
    let after = m.get_access_token(true).await.unwrap();
    verify(
        after.expose_secret(),
        &jwks,
        OffsetDateTime::now_utc(),
        &VerifyOptions::new(time::Duration::minutes(15)).audience("temporal"),
    )
    .unwrap();

    // A disabled client gets nothing new, and the error carries no secret.
    h.store.set_enabled("worker", false).await.unwrap();
    let err = m.get_access_token(true).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains(new_secret.expose()) && !text.contains(after.expose_secret()));
}
