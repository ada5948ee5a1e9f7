//! The local JSON file store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bulwark_secrets::*;

#[tokio::test]
async fn nested_keys_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(
        &path,
        r#"{"db": {"primary": {"password": "p1", "port": 5432}, "user": "app"},
            "token": "t0", "list": {"scopes": ["a", "b"], "on": true, "nothing": null}}"#,
    )
    .unwrap();
    let s = FileStore::new("files", &path);
    let m = s.get("db").await.unwrap();
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        ["primary:password", "primary:port", "user"]
    );
    assert_eq!(m["primary:port"].expose(), "5432");
    let m = s.get("db:primary").await.unwrap();
    assert_eq!(m["password"].expose(), "p1");
    let m = s.get("db:primary:password").await.unwrap();
    assert_eq!(m["db:primary:password"].expose(), "p1");
    let m = s.get("token").await.unwrap();
    assert_eq!(m["token"].expose(), "t0");
    let m = s.get("list").await.unwrap();
    assert_eq!(m["scopes"].expose(), r#"["a","b"]"#);
    assert_eq!(m["on"].expose(), "true");
    assert_eq!(m["nothing"].expose(), "");
    assert!(s.get_optional("db:nope").await.unwrap().is_none());
    assert!(s.get_optional("token:deeper").await.unwrap().is_none());
    assert_eq!(s.list_names().await.unwrap(), ["db", "list", "token"]);

    let s2 = FileStore::new("files", &path).with_separator("/");
    assert_eq!(
        s2.get("db/primary").await.unwrap()["password"].expose(),
        "p1"
    );
}

#[tokio::test]
async fn reread_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, r#"{"k": "v1"}"#).unwrap();
    let s = FileStore::new("files", &path);
    assert_eq!(s.get("k").await.unwrap()["k"].expose(), "v1");
    // Same length, rewritten in place.
    std::fs::write(&path, r#"{"k": "v2"}"#).unwrap();
    assert_eq!(s.get("k").await.unwrap()["k"].expose(), "v2");
    // Atomically replaced (new inode).
    let tmp = dir.path().join("new.json");
    std::fs::write(&tmp, r#"{"k": "v3", "other": "x"}"#).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_eq!(s.get("k").await.unwrap()["k"].expose(), "v3");
    assert_eq!(s.list_names().await.unwrap(), ["k", "other"]);
}

#[tokio::test]
async fn missing_or_broken_file_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.json");
    let s = FileStore::new("files", &path);
    let e = s.get("k").await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    std::fs::write(&path, "[1, 2]").unwrap();
    assert!(s.get("k").await.is_err());
    std::fs::write(&path, "{\"k\": ").unwrap();
    let e = s.get("k").await.unwrap_err();
    assert!(
        matches!(e, SecretsError::FileFormat { line: 1, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains(&path.display().to_string()));
}

#[tokio::test]
async fn put_writes_atomically_with_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let s = FileStore::new("files", &path);
    let mut m = SecretMap::new();
    m.insert("username".into(), Secret::new("bot"));
    m.insert("password".into(), Secret::new("p\"w\n"));
    s.put("gh", &m).await.unwrap();
    let back = s.get("gh").await.unwrap();
    assert_eq!(back["password"].expose(), "p\"w\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let only: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(only.len(), 1, "no temp files left behind");
}
