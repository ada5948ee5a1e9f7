//! `bulwark-init secrets`: the files scripts/up.sh and the compose bootstrap no longer derive
//! in shell. Modes, no-overwrite, shapes, and that no secret value is ever printed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Output},
};

/// A value planted in an input file; it must never appear in any output.
const PLANTED: &str = "planted-Secret-7f3a9c41e2";

fn init(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulwark-init"))
        .arg("secrets")
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    assert!(
        !text.contains(PLANTED),
        "a secret value was printed: {text}"
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn gen_password_is_private_once_and_silent() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("db.password");
    let out = init(&["gen-password", "--out", s(&f)]);
    ok(&out);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let pw = std::fs::read_to_string(&f).unwrap();
    assert_eq!(mode(&f), 0o600);
    // The format openssl rand -hex 24 gave the native stack's existing files.
    assert_eq!(pw.len(), 49, "{}", pw.len());
    assert!(pw.ends_with('\n'));
    assert!(pw.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(pw.trim_end()));

    // Never replaced once non-empty (an operator's own password too).
    ok(&init(&["gen-password", "--out", s(&f)]));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), pw);
    std::fs::write(&f, PLANTED).unwrap();
    ok(&init(&["gen-password", "--out", s(&f)]));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), PLANTED);

    // An empty file is filled; two generations differ.
    let g = tmp.path().join("empty.password");
    std::fs::write(&g, "").unwrap();
    ok(&init(&["gen-password", "--out", s(&g)]));
    let pw2 = std::fs::read_to_string(&g).unwrap();
    assert_eq!(pw2.len(), 49);
    assert_ne!(pw2, pw);
    // No temporary is left behind.
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // A missing directory is an error naming the path.
    let out = init(&["gen-password", "--out", s(&tmp.path().join("nope/x"))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn database_url_is_written_in_place_without_printing_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("bulwark-db.password");
    std::fs::write(&pw, format!("{PLANTED}\n")).unwrap();
    let url = tmp.path().join("bulwark-db.url");
    let args = |port: &'static str| {
        vec![
            "database-url".to_owned(),
            "--out".into(),
            s(&url).into(),
            "--password-file".into(),
            s(&pw).into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.into(),
        ]
    };
    let run = |port| {
        let a = args(port);
        init(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    ok(&run("15432"));
    assert_eq!(
        std::fs::read_to_string(&url).unwrap(),
        format!("postgres://bulwark:{PLANTED}@127.0.0.1:15432/bulwark\n")
    );
    assert_eq!(mode(&url), 0o600);
    // In place: an existing file keeps its mode (the compose bootstrap sets it).
    std::fs::set_permissions(&url, std::fs::Permissions::from_mode(0o640)).unwrap();
    ok(&run("5432"));
    assert_eq!(mode(&url), 0o640);
    assert!(
        std::fs::read_to_string(&url)
            .unwrap()
            .contains("@127.0.0.1:5432/")
    );

    // Two lines: refused, naming the file and not its content.
    std::fs::write(&pw, format!("{PLANTED}\nsecond\n")).unwrap();
    let out = run("5432");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must hold one line"), "{err}");
    assert!(!err.contains(PLANTED) && !err.contains("second"), "{err}");
}

#[test]
fn app_secrets_has_the_native_shape_and_keeps_other_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("demo-reader.password");
    std::fs::write(&pw, format!("{PLANTED}\n")).unwrap();
    let app = tmp.path().join("app-secrets.json");
    // What bulwark-init database wrote before (up.sh runs it first).
    std::fs::write(
        &app,
        r#"{"demo-oauth": {"client_id": "http-demo", "client_secret": "x", "token_url": "u", "scopes": "workflows:read"}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = init(&[
        "app-secrets",
        "--out",
        s(&app),
        "--demo-password-file",
        s(&pw),
        "--demo-db-host",
        "127.0.0.1:15432",
        "--demo-oauth-host",
        "127.0.0.1:8444",
    ]);
    ok(&out);
    assert_eq!(mode(&app), 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&app).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "demo-db": {"username": "bulwark_reader", "password": PLANTED, "allowed_hosts": ["127.0.0.1:15432"]},
            "demo-oauth": {"client_id": "http-demo", "client_secret": "x", "token_url": "u",
                           "scopes": "workflows:read", "allowed_hosts": ["127.0.0.1:8444"]},
        })
    );

    // The compose shape: a new file, no host restriction.
    let fresh = tmp.path().join("compose-app-secrets.json");
    ok(&init(&[
        "app-secrets",
        "--out",
        s(&fresh),
        "--demo-password-file",
        s(&pw),
    ]));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&fresh).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"demo-db": {"username": "bulwark_reader", "password": PLANTED}})
    );
    assert_eq!(mode(&fresh), 0o600);

    // Not a JSON object: refused, the file left alone, nothing printed from it.
    std::fs::write(&fresh, format!("[\"{PLANTED}\"]")).unwrap();
    let out = init(&[
        "app-secrets",
        "--out",
        s(&fresh),
        "--demo-password-file",
        s(&pw),
    ]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains(PLANTED));
    assert_eq!(
        std::fs::read_to_string(&fresh).unwrap(),
        format!("[\"{PLANTED}\"]")
    );
}

#[test]
fn components_name_the_stores_and_match_the_compose_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("components");
    ok(&init(&[
        "components",
        "--out",
        s(&dir),
        "--credentials-dir",
        "/srv/creds",
    ]));
    assert_eq!(mode(&dir), 0o700);
    let default = std::fs::read_to_string(dir.join("default.yaml")).unwrap();
    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap();
    assert_eq!(mode(&dir.join("default.yaml")), 0o600);
    assert!(default.contains("name: default\n"));
    assert!(default.contains("value: \"/srv/creds/app-secrets.json\"\n"));
    assert!(deployment.contains("name: deployment\n"));
    assert!(deployment.contains("value: \"/srv/creds/deployment-secrets-worker.json\"\n"));
    for text in [&default, &deployment] {
        assert!(text.contains("type: secretstores.local.file\n"));
        assert!(text.ends_with("scopes:\n  - worker\n"));
    }

    // The compose stack mounts checked-in copies: they are this command's output for
    // /credentials, so the two stacks cannot drift apart.
    ok(&init(&[
        "components",
        "--out",
        s(&dir),
        "--credentials-dir",
        "/credentials",
    ]));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker/compose/components");
    for name in ["default.yaml", "deployment.yaml"] {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            std::fs::read_to_string(repo.join(name)).unwrap(),
            "docker/compose/components/{name} differs from `bulwark-init secrets components --credentials-dir /credentials`"
        );
    }
}

/// config/access.table names files by the names bulwark-init gives them: every `certs/` row
/// is a private file `generate` writes (a renamed key would otherwise lose its grant
/// silently in compose).
#[test]
fn access_table_names_the_generated_private_files() {
    let table = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/access.table"),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bulwark-init"))
        .args(["generate", "--out", s(tmp.path())])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut listed = std::collections::BTreeSet::new();
    for line in table.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let ["file", path, _, _, _] = w[..] {
            if let Some(name) = path.strip_prefix("certs/") {
                let f = tmp.path().join(name);
                assert!(
                    f.exists(),
                    "access.table lists {path}, generate does not write it"
                );
                assert_eq!(mode(&f), 0o600, "{path} is not a private file");
                listed.insert(name.to_owned());
            }
        }
    }
    // And the other way round: no private file of generate is missing from the table.
    for e in std::fs::read_dir(tmp.path()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if !name.starts_with('.') && mode(&e.path()) & 0o077 == 0 {
            assert!(
                listed.contains(&name),
                "{name} is private but not in access.table"
            );
        }
    }
}
