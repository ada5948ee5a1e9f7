//! A planted secret never appears in Debug, Display, serde output, errors or logs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use bulwark_secrets::*;
use common::{PLANTED, assert_clean};

fn all_credentials() -> Vec<Credential> {
    let pem = |kind: &str| format!("-----BEGIN {kind}-----\n{PLANTED}\n-----END {kind}-----\n");
    let vars = vec![
        ("BULWARK_B__USERNAME".to_string(), "bot".to_string()),
        ("BULWARK_B__PASSWORD".into(), PLANTED.into()),
        ("BULWARK_K__API_KEY".into(), PLANTED.into()),
        ("BULWARK_K__PREFIX".into(), "Token".into()),
        ("BULWARK_T__TOKEN".into(), PLANTED.into()),
        (
            "BULWARK_T__EXPIRES_AT".into(),
            "2999-01-01T00:00:00Z".into(),
        ),
        ("BULWARK_O__CLIENT_ID".into(), "cid".into()),
        ("BULWARK_O__CLIENT_SECRET".into(), PLANTED.into()),
        ("BULWARK_O__TOKEN_URL".into(), "https://idp/token".into()),
        ("BULWARK_O__ACCESS_TOKEN".into(), PLANTED.into()),
        ("BULWARK_O__REFRESH_TOKEN".into(), PLANTED.into()),
        (
            "BULWARK_C__CERT_PEM".into(),
            pem("CERTIFICATE").replace(PLANTED, "AAAA"),
        ),
        ("BULWARK_C__KEY_PEM".into(), pem("PRIVATE KEY")),
        ("BULWARK_C__PASSPHRASE".into(), PLANTED.into()),
    ];
    let store = EnvStore::with_vars("default", "BULWARK_", vars);
    let map = |k: &str| futures_lite_block(store.get(k)).unwrap();
    let reg = CredentialRegistry::new();
    vec![
        reg.parse(&basic_ref("b"), &map("b")).unwrap(),
        reg.parse(&api_key_ref("k"), &map("k")).unwrap(),
        reg.parse(&bearer_token_ref("t"), &map("t")).unwrap(),
        reg.parse(&oauth_client_ref("o"), &map("o")).unwrap(),
        reg.parse(&certificate_ref("c"), &map("c")).unwrap(),
    ]
}

fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn every_credential_type_redacts_in_debug_display_and_serde() {
    let creds = all_credentials();
    assert_eq!(creds.len(), 5);
    for c in &creds {
        for (what, text) in [
            ("Debug", format!("{c:?}")),
            ("pretty Debug", format!("{c:#?}")),
            ("Display", c.to_string()),
            ("serde_json", serde_json::to_string(c).unwrap()),
            ("serde_norway", serde_norway::to_string(c).unwrap()),
        ] {
            assert_clean(&format!("{} {what}", c.credential_type()), &text);
            assert!(
                text.contains(REDACTED),
                "{what} shows the redaction marker: {text}"
            );
        }
    }
    // The inner typed structs too.
    let b = creds[0].as_basic().unwrap();
    assert_clean("BasicCredential Debug", &format!("{b:?}"));
    assert_clean("BasicCredential Display", &b.to_string());
    let k = creds[1].as_api_key().unwrap();
    assert_clean(
        "ApiKey header_value Debug",
        &format!("{:?}", k.header_value()),
    );
    let t = creds[2].as_bearer_token().unwrap();
    assert_clean(
        "Bearer header Display",
        &t.authorization_header().to_string(),
    );
    let o = creds[3].as_oauth_client().unwrap();
    assert_clean("OAuth Debug", &format!("{o:?}"));
    assert_clean("OAuth serde", &serde_json::to_string(o).unwrap());
    let c = creds[4].as_certificate().unwrap();
    assert_clean("Certificate Display", &c.to_string());
    // ... while the values are still there for the point of use.
    assert_eq!(b.password.expose(), PLANTED);
    assert_eq!(c.passphrase.as_ref().unwrap().expose(), PLANTED);
}

#[test]
fn secret_and_secret_maps_redact() {
    let s = Secret::new(PLANTED);
    assert_eq!(format!("{s:?}"), REDACTED);
    assert_eq!(s.to_string(), REDACTED);
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        format!("\"{REDACTED}\"")
    );
    let mut m = SecretMap::new();
    m.insert("password".into(), s);
    assert_clean("SecretMap Debug", &format!("{m:?}"));
    assert_clean("SecretMap serde", &serde_json::to_string(&m).unwrap());
}

#[tokio::test]
async fn errors_and_logs_never_carry_the_value() {
    let logs = common::LogCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"gh": {{"username": "bot", "password": "{PLANTED}"}},
                "half": {{"username": "{PLANTED}"}},
                "tok": {{"token": "{PLANTED}", "expires_at": "{PLANTED}"}},
                "o": {{"client_id": "c", "client_secret": "{PLANTED}", "token_url": "{PLANTED}"}},
                "k": {{"api_key": "{PLANTED}", "header_name": "{PLANTED} x"}},
                "idp": {{"client_id": "c", "client_secret": "s", "token_url": "https://x/t", "scopes": "[{PLANTED}"}}}}"#
        ),
    )
    .unwrap();
    let r = Resolver::builder()
        .store(FileStore::new("default", &path))
        .build();
    let ok = r.resolve(&basic_ref("gh")).await.unwrap();
    tracing::info!(credential = ?ok, display = %ok, "resolved");
    let failing = [
        basic_ref("half"),
        bearer_token_ref("tok"),
        oauth_client_ref("o"),
        api_key_ref("k"),
        oauth_client_ref("idp"),
        basic_ref("gh").with_store("nope"),
        basic_ref("nope"),
        certificate_ref("gh"),
    ];
    for reference in failing {
        let e = r.resolve(&reference).await.unwrap_err();
        tracing::error!(error = %e, debug = ?e, "resolution failed");
        assert_clean("error Display", &e.to_string());
        assert_clean("error Debug", &format!("{e:?}"));
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            assert_clean("error source", &s.to_string());
            src = s.source();
        }
    }
    // A store that cannot parse its file reports a position, never content.
    std::fs::write(&path, format!(r#"{{"gh": "{PLANTED}" "#)).unwrap();
    let e = r.resolve_uncached(&basic_ref("gh")).await.unwrap_err();
    assert_clean("file format error", &format!("{e} {e:?}"));
    assert!(e.to_string().contains("invalid JSON at line 1"), "{e}");

    assert_clean("Resolver Debug", &format!("{r:?}"));
    let text = logs.text();
    assert!(text.contains("resolved"), "log capture works: {text}");
    assert_clean("logs", &text);
}
