//! Component files: loading, routing, and errors that give the file and the key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bulwark_secrets::*;

fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<ComponentSet>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let set = ComponentSet::new().load_dir(dir.path());
    (dir, set)
}

fn component_err(files: &[(&str, &str)]) -> (String, String, String) {
    let (dir, set) = load(files);
    match set.unwrap_err() {
        SecretsError::Component { path, key, reason } => {
            assert!(
                path.starts_with(dir.path()),
                "error names the file: {}",
                path.display()
            );
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                key,
                reason,
            )
        }
        other => panic!("expected a component error, got {other:?}"),
    }
}

const HEAD: &str = "apiVersion: dapr.io/v1alpha1\nkind: Component\n";

#[test]
fn shipped_example_components_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../components");
    let set = ComponentSet::new()
        .with_app_id("worker")
        .load_dir(&dir)
        .unwrap();
    let names: Vec<_> = set.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["default", "env", "local-file", "vault"]);
    // vault.yaml is scoped to the worker.
    let other = ComponentSet::new()
        .with_app_id("api")
        .load_dir(&dir)
        .unwrap();
    assert!(other.get("vault").is_none() && other.get("default").is_some());
    assert_eq!(
        set.get("default").unwrap().component_type,
        ComponentType::Postgres
    );
    assert_eq!(
        set.get("vault").unwrap().component_type,
        ComponentType::Vault
    );
    // No secret values in the shipped files: every secret-bearing key is a reference.
    for c in set.iter() {
        let keys: Vec<_> = c.metadata_keys().collect();
        assert!(
            !keys.contains(&"vaultToken") && !keys.contains(&"masterKey"),
            "{c:?}"
        );
    }
    let text = std::fs::read_to_string(dir.join("default.yaml")).unwrap();
    assert!(text.contains("secretKeyRef"));
}

#[tokio::test]
async fn routing_by_store_name_and_secret_key_refs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secrets.json"),
        r#"{"gh": {"username": "file-bot", "password": "fp"}, "vault": {"token": "from-file"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("stores.yaml"),
        format!(
            "{HEAD}metadata:\n  name: files\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n    - name: secretsFile\n      value: secrets.json\n\
             ---\n{HEAD}metadata:\n  name: default\nspec:\n  type: secretstores.local.env\n  metadata:\n    - name: prefix\n      value: APP_\n\
             ---\n{HEAD}metadata:\n  name: vault\nspec:\n  type: secretstores.hashicorp.vault\n  metadata:\n    - name: vaultAddr\n      value: https://127.0.0.1:1\n    - name: vaultToken\n      secretKeyRef:\n        name: vault\n        key: token\nauth:\n  secretStore: files\n\
             ---\napiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: ignored\nspec: {{}}\n\
             ---\n{HEAD}metadata:\n  name: statestore\nspec:\n  type: state.postgresql\n  metadata: []\n"
        ),
    )
    .unwrap();
    let env: BTreeMap<String, String> =
        [("APP_GH__USERNAME", "env-bot"), ("APP_GH__PASSWORD", "ep")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let set = ComponentSet::new()
        .with_environment(env)
        .load_dir(dir.path())
        .unwrap();
    assert_eq!(
        set.len(),
        3,
        "non-Component documents and non-secret-store components are skipped"
    );
    let r = Resolver::builder()
        .stores(set.build().await.unwrap())
        .build();
    let user = |c: std::sync::Arc<Credential>| c.as_basic().unwrap().username.clone();
    assert_eq!(user(r.resolve(&basic_ref("gh")).await.unwrap()), "env-bot");
    assert_eq!(
        user(
            r.resolve(&basic_ref("gh").with_store("files"))
                .await
                .unwrap()
        ),
        "file-bot"
    );
    assert_eq!(
        r.store("vault").unwrap().kind(),
        "secretstores.hashicorp.vault"
    );
    let e = r
        .resolve(&basic_ref("gh").with_store("vault"))
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "nothing listens on port 1: {e:?}");
    let e = r
        .resolve(&basic_ref("gh").with_store("elsewhere"))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("known: default, files, vault"),
        "{e}"
    );
}

#[tokio::test]
async fn secret_key_ref_from_process_environment_and_missing_refs() {
    // `PATH` is always set; use it as a stand-in "token" to prove env look-up works.
    let yaml = format!(
        "{HEAD}metadata:\n  name: v\nspec:\n  type: secretstores.hashicorp.vault\n  metadata:\n    - name: vaultAddr\n      value: https://127.0.0.1:1\n    - name: vaultToken\n      secretKeyRef:\n        name: PATH\n"
    );
    let (_d, set) = load(&[("v.yaml", &yaml)]);
    set.unwrap().build().await.unwrap();
    let yaml = yaml.replace("name: PATH", "name: BULWARK_TEST_SURELY_UNSET_VAR");
    let (_d, set) = load(&[("v.yaml", &yaml)]);
    let e = set.unwrap().build().await.unwrap_err();
    assert!(
        matches!(&e, SecretsError::Component { key, .. } if key == "spec.metadata[vaultToken]"),
        "{e:?}"
    );
    assert!(e.to_string().contains("BULWARK_TEST_SURELY_UNSET_VAR"));
}

#[test]
fn bad_files_name_path_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "apiVersion: dapr.io/v2\nkind: Component\nmetadata: {name: a}\nspec: {type: secretstores.local.env}\n",
            "apiVersion",
            "dapr.io/v1alpha1",
        ),
        (
            "apiVersion: dapr.io/v1alpha1\nmetadata: {name: a}\nspec: {type: secretstores.local.env}\n",
            "kind",
            "required",
        ),
        (
            &format!("{HEAD}metadata: {{}}\nspec: {{type: secretstores.local.env}}\n"),
            "metadata.name",
            "required",
        ),
        (
            &format!("{HEAD}metadata: {{name: 'a b'}}\nspec: {{type: secretstores.local.env}}\n"),
            "metadata.name",
            "characters",
        ),
        (
            &format!("{HEAD}metadata: {{name: a}}\n"),
            "spec",
            "required",
        ),
        (
            &format!("{HEAD}metadata: {{name: a}}\nspec: {{version: v1}}\n"),
            "spec.type",
            "required",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec: {{type: secretstores.aws.secretmanager}}\n"
            ),
            "spec.type",
            "unsupported",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec: {{type: secretstores.local.env, version: v2}}\n"
            ),
            "spec.version",
            "v1",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec: {{type: secretstores.local.env, ignoreErrors: true}}\n"
            ),
            "spec.ignoreErrors",
            "fail closed",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec: {{type: secretstores.local.env, typo: 1}}\n"
            ),
            "spec.typo",
            "unknown",
        ),
        (
            &format!("{HEAD}metadta: {{name: a}}\nspec: {{type: secretstores.local.env}}\n"),
            "metadta",
            "unknown",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec: {{type: secretstores.local.env, metadata: {{prefix: X}}}}\n"
            ),
            "spec.metadata",
            "list",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.local.env\n  metadata:\n    - value: X\n"
            ),
            "spec.metadata[0].name",
            "required",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.local.env\n  metadata:\n    - name: prefx\n      value: X\n"
            ),
            "spec.metadata[prefx]",
            "unknown key",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.local.env\n  metadata:\n    - name: prefix\n"
            ),
            "spec.metadata[prefix]",
            "needs a `value`",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.local.env\n  metadata:\n    - name: prefix\n      value: [1]\n"
            ),
            "spec.metadata[prefix]",
            "string",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.local.env\n  metadata:\n    - {{name: prefix, value: A}}\n    - {{name: prefix, value: B}}\n"
            ),
            "spec.metadata[prefix]",
            "twice",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.local.file\n  metadata: []\n"
            ),
            "spec.metadata[secretsFile]",
            "required",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.hashicorp.vault\n  metadata:\n    - {{name: vaultAddr, value: 'http://x'}}\n"
            ),
            "spec.metadata[vaultToken]",
            "vaultTokenMountPath",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.hashicorp.vault\n  metadata:\n    - {{name: vaultAddr, value: 'http://x'}}\n    - {{name: vaultToken, value: t}}\n    - {{name: vaultTokenMountPath, value: /t}}\n"
            ),
            "spec.metadata[vaultTokenMountPath]",
            "not both",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: bulwark.secretstores.postgres\n  metadata:\n    - {{name: connectionString, value: 'postgres://x'}}\n"
            ),
            "spec.metadata[masterKeyFile]",
            "required",
        ),
        (
            &format!(
                "{HEAD}metadata: {{name: a}}\nspec:\n  type: secretstores.local.env\n  metadata:\n    - name: prefix\n      secretKeyRef: {{key: x}}\n"
            ),
            "spec.metadata[prefix]",
            "secretKeyRef.name",
        ),
    ];
    for (text, key, reason_part) in cases {
        let (file, k, reason) = component_err(&[("bad.yaml", text)]);
        assert_eq!(file, "bad.yaml");
        assert_eq!(&k, key, "for:\n{text}");
        assert!(
            reason.contains(reason_part),
            "reason {reason:?} should mention {reason_part:?}"
        );
    }
}

#[test]
fn syntax_errors_and_duplicates() {
    let (_d, set) = load(&[("broken.yaml", "apiVersion: [unclosed\n")]);
    let e = set.unwrap_err();
    assert!(
        matches!(&e, SecretsError::ComponentSyntax { path, location: Some(_) } if path.ends_with("broken.yaml")),
        "{e:?}"
    );

    let doc = format!("{HEAD}metadata: {{name: same}}\nspec: {{type: secretstores.local.env}}\n");
    let (_d, set) = load(&[("a.yaml", &doc), ("b.yml", &doc), ("c.txt", "ignored")]);
    let e = set.unwrap_err();
    assert!(
        matches!(&e, SecretsError::DuplicateComponent { name, first, second }
        if name == "same" && first.ends_with("a.yaml") && second.ends_with("b.yml")),
        "{e:?}"
    );
}

#[tokio::test]
async fn build_time_errors_name_the_key_and_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mk.key"), common::PLANTED).unwrap();
    let pg = |meta: &str| {
        format!(
            "{HEAD}metadata: {{name: pg}}\nspec:\n  type: bulwark.secretstores.postgres\n  metadata:\n{meta}"
        )
    };
    let cases = [
        (
            pg(&format!(
                "    - {{name: connectionString, value: 'postgres://u:{}@h/db'}}\n    - {{name: masterKeyFile, value: mk.key}}\n",
                common::PLANTED
            )),
            "spec.metadata[masterKeyFile]",
        ),
        (
            pg(&format!(
                "    - {{name: connectionString, value: 'not a url {}'}}\n    - {{name: masterKey, value: '{}'}}\n",
                common::PLANTED,
                "A".repeat(43) + "="
            )),
            "spec.metadata[connectionString]",
        ),
        (
            pg(
                "    - {name: connectionString, value: 'postgres://h/db'}\n    - {name: masterKeyFile, value: missing.key}\n",
            ),
            "spec.metadata[masterKeyFile]",
        ),
        (
            pg(&format!(
                "    - {{name: connectionString, value: 'postgres://h/db'}}\n    - {{name: masterKey, value: '{}'}}\n    - {{name: maxConnections, value: lots}}\n",
                "A".repeat(43) + "="
            )),
            "spec.metadata[maxConnections]",
        ),
        (
            format!(
                "{HEAD}metadata: {{name: v}}\nspec:\n  type: secretstores.hashicorp.vault\n  metadata:\n    - {{name: vaultAddr, value: 'http://x'}}\n    - {{name: vaultToken, value: t}}\n    - {{name: skipVerify, value: 'true'}}\n"
            ),
            "spec.metadata[skipVerify]",
        ),
        (
            format!(
                "{HEAD}metadata: {{name: v}}\nspec:\n  type: secretstores.hashicorp.vault\n  metadata:\n    - {{name: vaultAddr, value: 'not a url'}}\n    - {{name: vaultToken, value: t}}\n"
            ),
            "spec.metadata[vaultAddr]",
        ),
    ];
    for (text, key) in cases {
        std::fs::write(dir.path().join("c.yaml"), &text).unwrap();
        let e = ComponentSet::new()
            .load_dir(dir.path())
            .unwrap()
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(&e, SecretsError::Component { key: k, .. } if k == key),
            "{e:?} for\n{text}"
        );
        common::assert_clean("component error", &format!("{e} {e:?}"));
    }
}

#[tokio::test]
async fn postgres_component_builds_lazily_with_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = MasterKey::generate().unwrap();
    std::fs::write(dir.path().join("mk.key"), text.expose()).unwrap();
    std::fs::write(
        dir.path().join("pg.yaml"),
        format!("{HEAD}metadata: {{name: default}}\nspec:\n  type: bulwark.secretstores.postgres\n  metadata:\n    - {{name: connectionString, value: 'postgres://postgres@127.0.0.1:1/db'}}\n    - {{name: masterKeyFile, value: mk.key}}\n    - {{name: schema, value: bulwark}}\n    - {{name: acquireTimeoutSeconds, value: 1}}\n"),
    )
    .unwrap();
    let set = ComponentSet::new().load_dir(dir.path()).unwrap();
    let stores = set.build().await.unwrap();
    let s = stores.get("default").unwrap();
    assert_eq!(s.kind(), "bulwark.secretstores.postgres");
    assert!(s.get("x").await.unwrap_err().is_unavailable());
}

fn vault_yaml(addr: &str, extra: &str) -> String {
    format!(
        "{HEAD}metadata: {{name: v}}\nspec:\n  type: secretstores.hashicorp.vault\n  metadata:\n    - {{name: vaultAddr, value: '{addr}'}}\n    - {{name: vaultToken, value: '{}'}}\n{extra}",
        common::PLANTED
    )
}

async fn build_err(set: ComponentSet) -> SecretsError {
    set.build().await.unwrap_err()
}

#[tokio::test]
async fn vault_address_must_be_https_unless_the_dev_switch_is_set() {
    let switch = "    - {name: vaultAllowInsecureHttp, value: 'true'}\n";
    // Plain http: refused, naming the file and the key, and the switch, never the token.
    for addr in ["http://127.0.0.1:8200", "HTTP://vault.internal:8200"] {
        let (_d, set) = load(&[("vault.yaml", &vault_yaml(addr, ""))]);
        let e = build_err(set.unwrap()).await;
        match &e {
            SecretsError::Component { path, key, reason } => {
                assert!(path.ends_with("vault.yaml"), "{e}");
                assert_eq!(key, "spec.metadata[vaultAddr]");
                assert!(reason.contains("https") && reason.contains("vaultAllowInsecureHttp"));
            }
            other => panic!("expected a component error, got {other:?}"),
        }
        common::assert_clean("vault http error", &format!("{e} {e:?}"));
    }
    // https: accepted.
    let (_d, set) = load(&[("vault.yaml", &vault_yaml("https://127.0.0.1:8200", ""))]);
    let stores = set.unwrap().build().await.unwrap();
    assert_eq!(
        stores.get("v").unwrap().kind(),
        "secretstores.hashicorp.vault"
    );
    // The development switch lets http through (with a warning in the log)...
    let (_d, set) = load(&[("vault.yaml", &vault_yaml("http://127.0.0.1:8200", switch))]);
    set.unwrap().build().await.unwrap();
    // ...but not in production, and not with a value that is not a boolean.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vault.yaml"),
        vault_yaml("http://127.0.0.1:8200", switch),
    )
    .unwrap();
    let prod: BTreeMap<String, String> = [("BULWARK_ENV".to_string(), "production".to_string())]
        .into_iter()
        .collect();
    let set = ComponentSet::new()
        .with_environment(prod)
        .load_dir(dir.path())
        .unwrap();
    let e = build_err(set).await;
    assert!(
        matches!(&e, SecretsError::Component { key, .. } if key == "spec.metadata[vaultAllowInsecureHttp]"),
        "{e:?}"
    );
    let (_d, set) = load(&[(
        "vault.yaml",
        &vault_yaml(
            "http://127.0.0.1:8200",
            "    - {name: vaultAllowInsecureHttp, value: 'sure'}\n",
        ),
    )]);
    let e = build_err(set.unwrap()).await;
    assert!(
        matches!(&e, SecretsError::Component { key, .. } if key == "spec.metadata[vaultAllowInsecureHttp]"),
        "{e:?}"
    );
}

fn env_component(name: &str, scopes: &str) -> String {
    format!(
        "{HEAD}metadata:\n  name: {name}\nspec:\n  type: secretstores.local.env\n  metadata:\n    - {{name: prefix, value: {}_}}\n{scopes}",
        name.to_uppercase().replace('-', "_")
    )
}

fn names(set: &ComponentSet) -> Vec<&str> {
    set.iter().map(|c| c.name.as_str()).collect()
}

#[tokio::test]
async fn scopes_limit_components_to_listed_apps() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("a.yaml", env_component("for-worker", "scopes: [worker]\n")),
        (
            "b.yaml",
            env_component("for-api", "scopes:\n  - api\n  - control\n"),
        ),
        ("c.yaml", env_component("everyone", "")),
        // One store name, defined per app: each app sees only its own.
        (
            "d1.yaml",
            env_component("shared", "scopes: [worker]\n").replace("SHARED_", "W_"),
        ),
        (
            "d2.yaml",
            env_component("shared", "scopes: [api]\n").replace("SHARED_", "A_"),
        ),
    ];
    for (f, text) in &files {
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    let worker = ComponentSet::new()
        .with_app_id("worker")
        .load_dir(dir.path())
        .unwrap();
    assert_eq!(worker.app_id(), Some("worker"));
    assert_eq!(names(&worker), ["everyone", "for-worker", "shared"]);
    assert!(worker.get("shared").unwrap().path.ends_with("d1.yaml"));
    assert_eq!(
        worker.get("for-worker").unwrap().scopes(),
        Some(&["worker".to_string()][..])
    );
    let api = ComponentSet::new()
        .with_app_id("api")
        .load_dir(dir.path())
        .unwrap();
    assert_eq!(names(&api), ["everyone", "for-api", "shared"]);
    assert!(api.get("shared").unwrap().path.ends_with("d2.yaml"));
    let other = ComponentSet::new()
        .with_app_id("Worker")
        .load_dir(dir.path())
        .unwrap();
    assert_eq!(names(&other), ["everyone"], "app ids match exactly");
    let anonymous = ComponentSet::new().load_dir(dir.path()).unwrap();
    assert_eq!(names(&anonymous), ["everyone"], "no app id: unscoped only");

    // The resolver built for an app routes to that app's stores only.
    let env: BTreeMap<String, String> = [
        ("W_GH__USERNAME", "worker-bot"),
        ("W_GH__PASSWORD", "wp"),
        ("FOR_API_GH__USERNAME", "api-bot"),
        ("FOR_API_GH__PASSWORD", "ap"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let stores = ComponentSet::new()
        .with_environment(env)
        .with_app_id("worker")
        .load_dir(dir.path())
        .unwrap()
        .build()
        .await
        .unwrap();
    let r = Resolver::builder().stores(stores).build();
    let cred = r
        .resolve(&basic_ref("gh").with_store("shared"))
        .await
        .unwrap();
    assert_eq!(cred.as_basic().unwrap().username, "worker-bot");
    let e = r
        .resolve(&basic_ref("gh").with_store("for-api"))
        .await
        .unwrap_err();
    assert!(matches!(e, SecretsError::UnknownStore { .. }), "{e:?}");
    let r = Resolver::from_components_dir_for_app(dir.path(), "api")
        .await
        .unwrap()
        .build();
    assert!(r.store("for-api").is_some() && r.store("for-worker").is_none());
}

#[test]
fn malformed_scopes_are_errors_even_for_other_apps() {
    for (scopes, key) in [
        ("scopes: []\n", "scopes"),
        ("scopes: worker\n", "scopes"),
        ("scopes: {worker: true}\n", "scopes"),
        ("scopes: ['']\n", "scopes[0]"),
        ("scopes: [worker, 'bad id']\n", "scopes[1]"),
        ("scopes: [worker, [api]]\n", "scopes[1]"),
    ] {
        let (file, k, _) = component_err(&[("s.yaml", &env_component("s", scopes))]);
        assert_eq!((file.as_str(), k.as_str()), ("s.yaml", key), "{scopes}");
    }
    // A scoped-out component is still checked: a typo is an error for every app.
    let bad = env_component("s", "scopes: [api]\n").replace("name: prefix", "name: prefx");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.yaml"), bad).unwrap();
    let e = ComponentSet::new()
        .with_app_id("worker")
        .load_dir(dir.path())
        .unwrap_err();
    assert!(
        matches!(&e, SecretsError::Component { key, .. } if key == "spec.metadata[prefx]"),
        "{e:?}"
    );
}
