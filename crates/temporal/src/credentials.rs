//! Adapter from a `bulwark-secrets` store to the token manager's credential source.

use std::sync::Arc;

use bulwark_secrets::SecretStore;
use bulwark_token_client::{CredentialSource, SecretString, SourceError};

/// Serves `<app>_client_id` / `<app>_client_secret` (and any other key) from a
/// [`SecretStore`], e.g. the deployment secret store: a flat JSON file
/// `{"worker_client_id": "...", "worker_client_secret": "..."}` read by a
/// [`bulwark_secrets::FileStore`].
///
/// A key that maps to a single value answers with it; a key that maps to an object answers
/// with its field of the same name. Missing is `None` (the manager then reports which names it
/// looked for); store failures are errors (the store's errors name keys, never values).
#[derive(Debug, Clone)]
pub struct StoreCredentialSource(pub Arc<dyn SecretStore>);

#[bulwark_token_client::async_trait]
impl CredentialSource for StoreCredentialSource {
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SourceError> {
        let found = self.0.get_optional(key).await?;
        Ok(found.and_then(|m| {
            let v = m
                .get(key)
                .or_else(|| m.values().next().filter(|_| m.len() == 1))?;
            (!v.is_blank()).then(|| SecretString::new(v.expose()))
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use bulwark_secrets::FileStore;

    #[tokio::test]
    async fn reads_flat_and_nested_keys() {
        let dir = std::env::temp_dir().join(format!("bulwark-temporal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.json");
        std::fs::write(
            &path,
            r#"{"worker_client_id": "w-1", "worker_client_secret": "s3cr3t", "empty": "",
                "nested": {"nested": "n"}}"#,
        )
        .unwrap();
        let src = StoreCredentialSource(Arc::new(FileStore::new("deployment", &path)));
        assert_eq!(
            src.get("worker_client_id")
                .await
                .unwrap()
                .unwrap()
                .expose_secret(),
            "w-1"
        );
        assert_eq!(
            src.get("nested").await.unwrap().unwrap().expose_secret(),
            "n"
        );
        assert!(src.get("missing").await.unwrap().is_none());
        assert!(src.get("empty").await.unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
