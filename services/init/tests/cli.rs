//! The `bulwark-init` command line: exit codes and messages an operator acts on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::process::{Command, Output};

fn init(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulwark-init"))
        .args(args)
        .env_remove("BULWARK_CERTS_DIR")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn generate_verify_inspect_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let d = dir.to_str().unwrap();
    let out = init(&["generate", "--out", d]);
    assert!(out.status.success(), "{}", text(&out));
    let out = init(&["verify", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));

    let out = init(&["inspect", "--dir", d, "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    let server = items.iter().find(|i| i["id"] == "temporal-server").unwrap();
    assert_eq!(server["status"], "valid");
    assert!(server["days_left"].as_i64().unwrap() >= 29);

    let out = init(&["rotate", "client-token", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("client-token"));

    let out = init(&["rotate", "no-such-item", "--dir", d]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown item \"no-such-item\""),
        "{}",
        text(&out)
    );
}

#[test]
fn revoke_jwt_key_leaves_only_the_new_key_published() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let d = dir.to_str().unwrap();
    assert!(init(&["generate", "--out", d]).status.success());
    let kids = || -> Vec<String> {
        let jwks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let old = kids();
    let token_before = std::fs::read_to_string(dir.join("system-token.jwt")).unwrap();
    let out = init(&["revoke-jwt-key", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    let new = kids();
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(!old.contains(&new[0]), "the key did not change");
    assert!(text(&out).contains(&old[0]), "{}", text(&out));
    assert_ne!(
        std::fs::read_to_string(dir.join("system-token.jwt")).unwrap(),
        token_before,
        "static tokens not re-issued"
    );
    let out = init(&["verify", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn rotate_jwt_key_switches_at_once_and_keeps_the_old_key_published() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let d = dir.to_str().unwrap();
    assert!(init(&["generate", "--out", d]).status.success());
    let kids = || -> Vec<String> {
        let jwks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let old = kids();
    let token_before = std::fs::read_to_string(dir.join("worker-token.jwt")).unwrap();
    let out = init(&[
        "rotate",
        "jwt-key",
        "temporal-server",
        "--dir",
        d,
        "--access-token-ttl",
        "48h",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let new = kids();
    assert_eq!(new.len(), 2, "{new:?}");
    assert_eq!(
        new[1], old[0],
        "the old key stays published after the new one"
    );
    assert!(
        text(&out).contains(&format!("kid {} signs now", new[0])),
        "{}",
        text(&out)
    );
    for id in ["jwt-key", "worker-token", "temporal-server"] {
        assert!(text(&out).contains(id), "{id}: {}", text(&out));
    }
    assert_ne!(
        std::fs::read_to_string(dir.join("worker-token.jwt")).unwrap(),
        token_before,
        "static tokens not re-issued"
    );
    assert!(!dir.join("temporal-jwt-next.key").exists());
    // The longer access token TTL decides the retirement (48 h + 1 min, not the 24 h tokens).
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let retire = m["retired_keys"][0]["retire_after"].as_str().unwrap();
    let retire =
        time::OffsetDateTime::parse(retire, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let left = retire - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::hours(47)
            && left <= time::Duration::hours(48) + time::Duration::minutes(1),
        "{left}"
    );
    let out = init(&["verify", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn bad_input_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let d = dir.to_str().unwrap();
    for (flag, value, needle) in [
        ("--server-san", "bad name!", "bad name!"),
        ("--namespace", "a:b", "a:b"),
        ("--jwt-algorithm", "HS256", "HS256"),
        ("--leaf-lifetime", "soon", "soon"),
    ] {
        let out = init(&["generate", "--out", d, flag, value]);
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(text(&out).contains(needle), "{flag}: {}", text(&out));
    }
    assert!(!dir.exists(), "a rejected run created the directory");

    let file = tmp.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let out = init(&["generate", "--out", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not a directory"), "{}", text(&out));
}

#[test]
fn verify_fails_naming_each_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let d = dir.to_str().unwrap();
    assert!(init(&["generate", "--out", d]).status.success());
    std::fs::write(dir.join("worker-token.jwt"), "not.a.token").unwrap();
    std::fs::copy(dir.join("client-ui.key"), dir.join("client-api.key")).unwrap();
    let out = init(&["verify", "--dir", d]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("worker-token") && t.contains("client-api.key does not match"),
        "{t}"
    );
    assert!(t.contains("FAILED: 2 problems"), "{t}");
}

fn init_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark-init"))
        .args(args)
        .env_remove("BULWARK_DATABASE_URL_FILE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn admin_set_password_takes_the_password_from_stdin_or_a_file_only() {
    // No way to pass it as an argument.
    let out = init(&[
        "admin",
        "set-password",
        "admin",
        "--password",
        "long enough password",
        "--database-url-file",
        "/nonexistent",
    ]);
    assert!(!out.status.success());
    // A short password is refused before the database is touched.
    let out = init_stdin(
        &[
            "admin",
            "set-password",
            "admin",
            "--database-url-file",
            "/nonexistent",
        ],
        "short\n",
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("at least 12 characters"),
        "{}",
        text(&out)
    );
}

/// The whole path against a fresh database, when BULWARK_TEST_DATABASE_URL names a server.
#[test]
fn admin_set_password_and_unlock_against_the_database() {
    let Ok(server_url) = std::env::var("BULWARK_TEST_DATABASE_URL") else {
        eprintln!("skipped: BULWARK_TEST_DATABASE_URL not set");
        return;
    };
    let name = format!("bulwark_init_cli_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = sqlx::PgPool::connect(&server_url).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&server)
            .await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&server)
            .await
            .unwrap();
    });
    let (base, _) = server_url.rsplit_once('/').unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let url_file = tmp.path().join("url");
    std::fs::write(&url_file, format!("{base}/{name}\n")).unwrap();
    let bootstrap = tmp.path().join("admin-password");
    std::fs::write(&bootstrap, "the bootstrap password").unwrap();
    let u = url_file.to_str().unwrap();
    let out = init_stdin(
        &[
            "admin",
            "set-password",
            "admin",
            "--database-url-file",
            u,
            "--bootstrap-file",
            bootstrap.to_str().unwrap(),
        ],
        "a new admin password\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("account created"), "{}", text(&out));
    assert!(!text(&out).contains("a new admin password"));
    assert!(!bootstrap.exists());
    let out = init(&["admin", "unlock", "admin", "--database-url-file", u]);
    assert!(out.status.success(), "{}", text(&out));
    let out = init(&["admin", "unlock", "nobody", "--database-url-file", u]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no admin account"), "{}", text(&out));
    rt.block_on(async {
        let server = sqlx::PgPool::connect(&server_url).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&server)
            .await;
    });
}
