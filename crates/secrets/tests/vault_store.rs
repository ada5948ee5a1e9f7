//! The Vault KV v2 store.
//!
//! Runs against a real Vault dev server when a `vault` binary is available
//! (`BULWARK_VAULT_BIN`, or `vault` on `PATH`); otherwise against the stand-in in
//! `common/vault_standin.rs`, which implements the same KV v2 endpoints and JSON shapes.
//! `BULWARK_REQUIRE_VAULT=1` makes a missing binary a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bulwark_secrets::*;
use common::{PLANTED, assert_clean};

struct Harness {
    addr: String,
    token: String,
    real: bool,
    _child: Option<ChildGuard>,
    _standin: Option<common::vault_standin::StandIn>,
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vault_binary() -> Option<String> {
    if let Ok(p) = std::env::var("BULWARK_VAULT_BIN") {
        if !p.is_empty() {
            return Some(p);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("vault"))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn harness(test: &str) -> Harness {
    let token = format!("root-{}", uuid::Uuid::new_v4().simple());
    match vault_binary() {
        Some(bin) => {
            let port = free_port();
            let child = Command::new(&bin)
                .args([
                    "server",
                    "-dev",
                    &format!("-dev-root-token-id={token}"),
                    &format!("-dev-listen-address=127.0.0.1:{port}"),
                ])
                .env("VAULT_DISABLE_MLOCK", "true")
                .env("HOME", std::env::temp_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
            let guard = ChildGuard(child);
            let addr = format!("http://127.0.0.1:{port}");
            let client = reqwest::Client::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let ok = client
                    .get(format!("{addr}/v1/sys/health"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                // The KV v2 mount needs a moment after unseal.
                if ok {
                    let mounts = client
                        .get(format!("{addr}/v1/sys/mounts/secret/tune"))
                        .header("X-Vault-Token", &token)
                        .send()
                        .await;
                    if mounts.is_ok_and(|r| r.status().is_success()) {
                        break;
                    }
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "vault dev server did not come up"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let _ = writeln!(
                std::io::stderr(),
                "{test}: using real Vault at {addr} ({bin})"
            );
            Harness {
                addr,
                token,
                real: true,
                _child: Some(guard),
                _standin: None,
            }
        }
        None => {
            if std::env::var("BULWARK_REQUIRE_VAULT").as_deref() == Ok("1") {
                panic!(
                    "{test}: BULWARK_REQUIRE_VAULT=1 but no vault binary (BULWARK_VAULT_BIN / PATH)"
                );
            }
            let s = common::vault_standin::start("secret", &token).await;
            let _ = writeln!(
                std::io::stderr(),
                "{test}: no vault binary; using the KV v2 stand-in"
            );
            Harness {
                addr: s.addr.clone(),
                token,
                real: false,
                _child: None,
                _standin: Some(s),
            }
        }
    }
}

fn store(h: &Harness, name: &str, token: &str, prefix: Option<&str>) -> VaultStore {
    let mut cfg = VaultConfig::new(&h.addr, VaultToken::Value(Secret::new(token)));
    cfg.prefix = prefix.map(str::to_owned);
    // Both the dev server and the stand-in speak plain http.
    cfg.allow_insecure_http = true;
    VaultStore::new(name, cfg).unwrap()
}

fn fields(pairs: &[(&str, &str)]) -> SecretMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Secret::new(*v)))
        .collect()
}

#[tokio::test]
async fn read_write_versions_and_listing() {
    let h = harness("read_write").await;
    let s = store(&h, "vault", &h.token, Some("bulwark"));
    s.put("gh", &fields(&[("username", "bot"), ("password", "v1")]))
        .await
        .unwrap();
    s.put("gh", &fields(&[("username", "bot"), ("password", PLANTED)]))
        .await
        .unwrap();
    s.put("team/db", &fields(&[("password", "dbpw")]))
        .await
        .unwrap();

    let m = s.get("gh").await.unwrap();
    assert_eq!(m["password"].expose(), PLANTED);
    assert_eq!(
        s.get_version("gh", 1).await.unwrap().unwrap()["password"].expose(),
        "v1"
    );
    assert_eq!(s.get("team/db").await.unwrap()["password"].expose(), "dbpw");
    assert!(s.get_optional("absent").await.unwrap().is_none());
    assert!(matches!(
        s.get("absent").await,
        Err(SecretsError::NotFound { .. })
    ));
    assert_eq!(
        s.list_names().await.unwrap(),
        ["gh"],
        "folders (team/) are left out"
    );
    assert!(matches!(
        s.get("../sys/health").await,
        Err(SecretsError::InvalidKey { .. })
    ));
    assert!(matches!(
        s.get("/abs").await,
        Err(SecretsError::InvalidKey { .. })
    ));

    // Written under the prefix: another prefix does not see it.
    let other = store(&h, "vault", &h.token, Some("elsewhere"));
    assert!(other.get_optional("gh").await.unwrap().is_none());
    assert!(other.list_names().await.unwrap().is_empty());

    // Resolution through the resolver.
    let r = Resolver::builder().store(s).build();
    let c = r
        .resolve(&basic_ref("gh").with_store("vault"))
        .await
        .unwrap();
    assert_eq!(c.as_basic().unwrap().password.expose(), PLANTED);
    assert_clean("credential", &format!("{c:?} {c}"));
    let e = r
        .resolve(&basic_ref("team/db").with_store("vault"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SecretsError::MissingField { field, .. } if field == "username"),
        "{e:?}"
    );
    let e = r
        .resolve(&basic_ref("nope").with_store("vault"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, SecretsError::CredentialNotFound { .. }),
        "{e:?}"
    );
    let _ = h.real;
}

#[tokio::test]
async fn raw_kv_v2_shape_written_by_another_client_is_read() {
    // Write with a plain HTTP client, exactly as the Vault CLI/API would, then read
    // through the store: proves the store speaks the documented wire format.
    let h = harness("raw_shape").await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/v1/secret/data/dapr/svc", h.addr))
        .header("X-Vault-Token", &h.token)
        .json(
            &serde_json::json!({"data": {"api_key": "k-123", "port": 8443, "nested": {"a": "b"}}}),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let s = store(&h, "vault", &h.token, Some("dapr"));
    let m = s.get("svc").await.unwrap();
    assert_eq!(m["api_key"].expose(), "k-123");
    assert_eq!(m["port"].expose(), "8443");
    assert_eq!(m["nested:a"].expose(), "b");
}

#[tokio::test]
async fn bad_token_is_permission_denied_and_token_file_is_reread() {
    let h = harness("bad_token").await;
    let s = store(&h, "vault", "not-the-token", None);
    let e = s.get("gh").await.unwrap_err();
    assert!(matches!(e, SecretsError::PermissionDenied { .. }), "{e:?}");
    assert!(!e.is_not_found() && !e.is_unavailable());
    assert_clean("error", &format!("{e} {e:?}"));

    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    std::fs::write(&tf, "wrong\n").unwrap();
    let mut cfg = VaultConfig::new(&h.addr, VaultToken::File(tf.clone()));
    cfg.allow_insecure_http = true;
    let s = VaultStore::new("vault", cfg).unwrap();
    assert!(matches!(
        s.get("x").await,
        Err(SecretsError::PermissionDenied { .. })
    ));
    std::fs::write(&tf, format!("{}\n", h.token)).unwrap();
    assert!(
        s.get_optional("x").await.unwrap().is_none(),
        "rotated token file is picked up"
    );
}

#[tokio::test]
async fn unreachable_vault_is_unavailable() {
    let mut cfg = VaultConfig::new(
        format!("http://127.0.0.1:{}", free_port()),
        VaultToken::Value(Secret::new("t")),
    );
    cfg.allow_insecure_http = true;
    let s = VaultStore::new("vault", cfg).unwrap();
    let e = s.get("gh").await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(
        VaultStore::new(
            "v",
            VaultConfig::new("not a url", VaultToken::Value(Secret::new("t")))
        )
        .is_err()
    );
    let mut cfg = VaultConfig::new("https://127.0.0.1:1", VaultToken::Value(Secret::new("t")));
    cfg.ca_pem = Some(b"not pem".to_vec());
    assert!(VaultStore::new("v", cfg).is_err());
}

#[test]
fn plain_http_address_needs_the_development_switch() {
    let cfg = |addr: &str| VaultConfig::new(addr, VaultToken::Value(Secret::new(PLANTED)));
    let e = VaultStore::new("v", cfg("http://127.0.0.1:8200")).unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(e.to_string().contains("https"), "{e}");
    assert_clean("vault http error", &format!("{e} {e:?}"));
    assert!(VaultStore::new("v", cfg("https://127.0.0.1:8200")).is_ok());
    let mut dev = cfg("http://127.0.0.1:8200");
    dev.allow_insecure_http = true;
    assert!(VaultStore::new("v", dev).is_ok());
}

/// A test CA and a server configuration for 127.0.0.1 signed by it.
fn test_tls() -> (String, std::sync::Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "vault test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca_cert.pem(), std::sync::Arc::new(config))
}

#[tokio::test]
async fn https_vault_with_its_ca_is_read_and_other_roots_are_refused() {
    let token = format!("root-{}", uuid::Uuid::new_v4().simple());
    let (ca_pem, tls) = test_tls();
    let s = common::vault_standin::start_tls("secret", &token, tls).await;
    assert!(s.addr.starts_with("https://"));
    let mut cfg = VaultConfig::new(&s.addr, VaultToken::Value(Secret::new(&token)));
    cfg.ca_pem = Some(ca_pem.into_bytes());
    let store = VaultStore::new("vault", cfg).unwrap();
    store
        .put("gh", &fields(&[("username", "bot"), ("password", PLANTED)]))
        .await
        .unwrap();
    let got = store.get("gh").await.unwrap();
    assert_eq!(got["username"].expose(), "bot");
    // Without the CA (built-in roots only) the server is not trusted: the token is not sent.
    let (other_ca, _) = test_tls();
    let mut cfg = VaultConfig::new(&s.addr, VaultToken::Value(Secret::new(&token)));
    cfg.ca_pem = Some(other_ca.into_bytes());
    let e = VaultStore::new("vault", cfg)
        .unwrap()
        .get("gh")
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert_clean("tls error", &format!("{e} {e:?}"));
}
