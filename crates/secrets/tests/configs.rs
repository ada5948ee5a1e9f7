//! Credential configs by id, the deployment secret, and the development-only writer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use bulwark_secrets::*;
use common::{PLANTED, assert_clean};
use serde_json::json;

fn setup(configs: &[(&str, serde_json::Value)]) -> (tempfile::TempDir, Resolver) {
    let dir = tempfile::tempdir().unwrap();
    let cfg_dir = dir.path().join("configs");
    std::fs::create_dir(&cfg_dir).unwrap();
    for (id, v) in configs {
        std::fs::write(cfg_dir.join(format!("{id}.json")), v.to_string()).unwrap();
    }
    let file = dir.path().join("secrets.json");
    std::fs::write(
        &file,
        json!({
            "db": {"username": "app", "password": PLANTED},
            "bundle": {"user": "u1", "pass": "p1", "key": "k1", "empty": " "},
            "single": "only-value",
            "bulwark-deployment-secrets": {"worker_client_id": "wid", "worker_client_secret": PLANTED, "blank": ""}
        })
        .to_string(),
    )
    .unwrap();
    let r = Resolver::builder()
        .store(FileStore::new("default", &file))
        .store(EnvStore::with_vars(
            "env",
            "BULWARK_",
            [("BULWARK_API__KEY", "envkey")],
        ))
        .config_dir(&cfg_dir)
        .environment("development")
        .build();
    (dir, r)
}

#[tokio::test]
async fn multi_key_mode_substitutes_explicit_references_only() {
    let (_d, r) = setup(&[(
        "conn-1",
        json!({
            "host": "db.internal",
            "port": 5432,
            "username": "secret://default/db#username",
            "password": "secret://default/db#password",
            "plain_looking_like_a_key": "db",
            "extra": {"api_key": "secret://env/api#key", "list": ["secret://default/single", "x"], "flag": true, "none": null}
        }),
    )]);
    let c = r.get_credentials("conn-1").await.unwrap();
    assert_eq!(c.get("host").unwrap().as_str(), Some("db.internal"));
    assert_eq!(
        c.get("username").unwrap().as_secret().unwrap().expose(),
        "app"
    );
    assert_eq!(
        c.get("password").unwrap().as_secret().unwrap().expose(),
        PLANTED
    );
    assert_eq!(
        c.get("plain_looking_like_a_key").unwrap().as_str(),
        Some("db"),
        "no guessing"
    );
    let extra = c.get("extra").unwrap();
    assert_eq!(
        extra.get("api_key").unwrap().as_secret().unwrap().expose(),
        "envkey"
    );
    let exposed = c.value.expose_json();
    assert_eq!(exposed["extra"]["list"], json!(["only-value", "x"]));
    assert_eq!(exposed["port"], json!(5432));
    assert_eq!(exposed["password"], json!(PLANTED));
    assert_clean("config Debug", &format!("{c:?}"));
    assert_clean("config serde", &serde_json::to_string(&c).unwrap());
}

#[tokio::test]
async fn single_key_mode_uses_the_bundle() {
    let (_d, r) = setup(&[(
        "conn-2",
        json!({"secret_ref": "secret://default/bundle", "user": "secret:#user", "extra": {"k": "secret:#key"}, "literal": "pass"}),
    )]);
    let c = r.get_credentials("conn-2").await.unwrap();
    assert_eq!(c.get("user").unwrap().as_secret().unwrap().expose(), "u1");
    assert_eq!(
        c.get("extra")
            .unwrap()
            .get("k")
            .unwrap()
            .as_secret()
            .unwrap()
            .expose(),
        "k1"
    );
    assert_eq!(
        c.get("literal").unwrap().as_str(),
        Some("pass"),
        "a bundle field name is not substituted unless referenced"
    );
    assert_eq!(
        c.get("secret_ref").unwrap().as_str(),
        Some("secret://default/bundle")
    );
}

#[tokio::test]
async fn bad_references_fail_closed_with_pointer() {
    let cases = [
        (json!({"a": "secret://default/db"}), "/a", "several fields"),
        (
            json!({"a": "secret://default/db#nope"}),
            "/a",
            "no field `nope`",
        ),
        (
            json!({"a": {"b": "secret://default/missing#x"}}),
            "",
            "no secret `missing`",
        ),
        (json!({"a": "secret://default"}), "/a", "store and a key"),
        (json!({"a": "secret://default/../etc#x"}), "/a", "`..`"),
        (json!({"a": "secret:/default/db"}), "/a", "secret://"),
        (json!({"a": "secret:#user"}), "/a", "secret_ref"),
        (
            json!({"secret_ref": "secret://default/bundle", "a": "secret:#empty"}),
            "/a",
            "empty",
        ),
        (
            json!({"secret_ref": "secret://default/bundle#user"}),
            "/secret_ref",
            "without `#field`",
        ),
        (
            json!({"x": ["ok", "secret://default/db#"]}),
            "/x/1",
            "empty `#field`",
        ),
    ];
    for (i, (cfg, pointer, reason_part)) in cases.into_iter().enumerate() {
        let (_d, r) = setup(&[]);
        let e = r.resolve_config(&format!("c{i}"), &cfg).await.unwrap_err();
        match &e {
            SecretsError::SecretReference {
                pointer: p, reason, ..
            } => {
                assert_eq!(p, pointer, "{e}");
                assert!(
                    reason.contains(reason_part),
                    "{reason:?} should mention {reason_part:?}"
                );
            }
            other => panic!("case {i}: {other:?}"),
        }
        assert_clean("config error", &format!("{e} {e:?}"));
    }
    let (_d, r) = setup(&[]);
    let e = r
        .resolve_config("c", &json!({"a": "secret://nostore/db#x"}))
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    let e = r
        .resolve_config("c", &json!(["not", "an", "object"]))
        .await
        .unwrap_err();
    assert!(matches!(e, SecretsError::InvalidConfig { .. }));
}

#[tokio::test]
async fn config_ids_are_validated() {
    let (d, r) = setup(&[("ok_id-1", json!({}))]);
    std::fs::write(d.path().join("secrets.json.json"), "{}").unwrap();
    assert!(r.get_credentials("ok_id-1").await.is_ok());
    for bad in [
        "",
        "../secrets",
        "..",
        "a/b",
        "a.json",
        "x\0",
        &"a".repeat(129),
        "secrets.json",
    ] {
        let e = r.get_credentials(bad).await.unwrap_err();
        assert!(
            matches!(e, SecretsError::InvalidConfigId { .. }),
            "{bad:?}: {e:?}"
        );
    }
    assert!(matches!(
        r.get_credentials("absent").await,
        Err(SecretsError::ConfigNotFound { .. })
    ));
    std::fs::write(
        d.path().join("configs/broken.json"),
        format!("{{\"password\": \"{PLANTED}\" "),
    )
    .unwrap();
    let e = r.get_credentials("broken").await.unwrap_err();
    assert!(matches!(e, SecretsError::InvalidConfig { .. }), "{e:?}");
    assert_clean("invalid config error", &e.to_string());
}

#[tokio::test]
async fn deployment_secret_not_found_empty_and_found() {
    let (_d, r) = setup(&[]);
    assert_eq!(
        r.get_deployment_secret("worker_client_id")
            .await
            .unwrap()
            .expose(),
        "wid"
    );
    assert_eq!(
        r.get_deployment_secret("worker_client_secret")
            .await
            .unwrap()
            .expose(),
        PLANTED
    );
    let e = r.get_deployment_secret("missing_field").await.unwrap_err();
    assert!(
        matches!(&e, SecretsError::NotFound { key, .. } if key == "bulwark-deployment-secrets#missing_field"),
        "{e:?}"
    );
    assert!(matches!(
        r.get_deployment_secret("blank").await,
        Err(SecretsError::EmptyField { .. })
    ));

    // Whole secret absent: NotFound. Store not configured: Unavailable.
    let r2 = Resolver::builder()
        .store(EnvStore::with_vars(
            "default",
            "BULWARK_",
            Vec::<(String, String)>::new(),
        ))
        .build();
    let e = r2.get_deployment_secret("x").await.unwrap_err();
    assert!(e.is_not_found() && !e.is_unavailable(), "{e:?}");
    let r3 = Resolver::builder()
        .deployment_secret("other", "deploy")
        .build();
    let e = r3.get_deployment_secret("x").await.unwrap_err();
    assert!(e.is_unavailable() && !e.is_not_found(), "{e:?}");
}

/// A store that is always down.
#[derive(Debug)]
struct Down;

#[async_trait]
impl SecretStore for Down {
    fn name(&self) -> &str {
        "default"
    }
    fn kind(&self) -> &'static str {
        "test.down"
    }
    async fn get_optional(&self, _key: &str) -> Result<Option<SecretMap>> {
        Err(SecretsError::Unavailable {
            store: "default".into(),
            reason: "test outage".into(),
        })
    }
    async fn list_names(&self) -> Result<Vec<String>> {
        Ok(vec![])
    }
}

#[tokio::test]
async fn unavailable_is_never_swallowed() {
    let r = Resolver::builder().store_arc(Arc::new(Down)).build();
    let e = r.get_deployment_secret("x").await.unwrap_err();
    assert!(matches!(e, SecretsError::Unavailable { .. }), "{e:?}");
    let e = r.resolve(&basic_ref("gh")).await.unwrap_err();
    assert!(
        e.is_unavailable() && e.to_string().contains("credential `gh`"),
        "{e}"
    );
}

#[tokio::test]
async fn save_secret_is_refused_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.json");
    let mut value = SecretMap::new();
    value.insert("username".into(), Secret::new("bot"));
    value.insert("password".into(), Secret::new("pw"));
    for env in ["production", "PRODUCTION", " prod "] {
        let r = Resolver::builder()
            .store(FileStore::new("default", &file))
            .environment(env)
            .build();
        let e = r.save_secret("default", "gh", &value).await.unwrap_err();
        assert!(
            matches!(e, SecretsError::ProductionRefused { .. }),
            "{env}: {e:?}"
        );
        assert!(!file.exists());
    }
    let r = Resolver::builder()
        .store(FileStore::new("default", &file))
        .store(EnvStore::with_vars(
            "env",
            "X_",
            Vec::<(String, String)>::new(),
        ))
        .environment("development")
        .build();
    // Cached "not found" is not a thing, but a cached value must be dropped on save.
    r.save_secret("default", "gh", &value).await.unwrap();
    assert_eq!(
        r.resolve(&basic_ref("gh"))
            .await
            .unwrap()
            .as_basic()
            .unwrap()
            .password
            .expose(),
        "pw"
    );
    value.insert("password".into(), Secret::new("pw2"));
    r.save_secret("default", "gh", &value).await.unwrap();
    assert_eq!(
        r.resolve(&basic_ref("gh"))
            .await
            .unwrap()
            .as_basic()
            .unwrap()
            .password
            .expose(),
        "pw2"
    );
    assert!(matches!(
        r.save_secret("env", "gh", &value).await,
        Err(SecretsError::ReadOnly { .. })
    ));
}
