#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `TokenManagerBuilder::client_certificate`: the manager presents the holder's certificate
//! to a token endpoint that requires client authentication, and the endpoint sees that
//! certificate; without it the handshake is refused.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use bulwark_tls::{ClientAuth, ClientTrust, PemFiles, Reloading};
use bulwark_token_client::{AuthError, MemorySource, TokenManager};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let pem = p.self_signed(&key).unwrap().pem();
    (Issuer::new(p, key), pem)
}

/// Writes a leaf signed by `issuer` to `<dir>/<name>.crt/.key`; returns its DER.
fn leaf(dir: &Path, name: &str, issuer: &Issuer<'static, KeyPair>, client: bool) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    if client {
        p.subject_alt_names = vec![SanType::URI(
            "spiffe://bulwark.local/client/worker".try_into().unwrap(),
        )];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = p.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    cert.der().to_vec()
}

/// Accepts only clients whose certificate chains to the client CA, and records each
/// connection's leaf.
struct MtlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    refused: Arc<Mutex<usize>>,
}

impl axum::serve::Listener for MtlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            match self.acceptor.accept(tcp).await {
                Ok(tls) => {
                    let leaf = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.to_vec())
                        .unwrap_or_default();
                    self.seen.lock().unwrap().push(leaf);
                    return (tls, addr);
                }
                Err(_) => *self.refused.lock().unwrap() += 1,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    url: String,
    server_ca_pem: String,
    server_ca_path: std::path::PathBuf,
    client_der: Vec<u8>,
    client_cert: Arc<Reloading>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    refused: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, server_ca_pem) = ca("server ca");
    let (client_ca, client_ca_pem) = ca("client ca");
    leaf(dir.path(), "server", &server_ca, false);
    let client_der = leaf(dir.path(), "client", &client_ca, true);
    std::fs::write(dir.path().join("server-ca.crt"), &server_ca_pem).unwrap();
    std::fs::write(dir.path().join("client-trust.pem"), &client_ca_pem).unwrap();

    let server_cert = Reloading::new(PemFiles::new(
        dir.path().join("server.crt"),
        dir.path().join("server.key"),
    ))
    .unwrap();
    let trust =
        ClientTrust::new(dir.path().join("client-trust.pem"), ClientAuth::Required).unwrap();
    let mut config = bulwark_tls::server_config_with_client_trust(server_cert, trust).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(0));
    let listener = MtlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
        seen: seen.clone(),
        refused: refused.clone(),
    };
    let app = Router::new().route(
        "/oauth/token",
        post(|| async {
            axum::Json(serde_json::json!({
                "access_token": "opaque-bound-token",
                "token_type": "Bearer",
                "expires_in": 900,
            }))
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let client_cert = Reloading::new(PemFiles::new(
        dir.path().join("client.crt"),
        dir.path().join("client.key"),
    ))
    .unwrap();
    Setup {
        url: format!("https://localhost:{}/oauth/token", addr.port()),
        server_ca_path: dir.path().join("server-ca.crt"),
        server_ca_pem,
        _dir: dir,
        client_der,
        client_cert,
        seen,
        refused,
        task,
    }
}

fn credentials() -> Arc<MemorySource> {
    Arc::new(
        MemorySource::new()
            .with("BULWARK_WORKER_CLIENT_ID", "worker")
            .with("BULWARK_WORKER_CLIENT_SECRET", "worker-secret"),
    )
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("timed out")
}

#[tokio::test]
async fn the_manager_presents_the_client_certificate() {
    let s = setup().await;
    for manager in [
        TokenManager::builder(&s.url, "worker")
            .ca_bundle_file(&s.server_ca_path)
            .client_certificate(s.client_cert.clone())
            .environment(credentials())
            .build()
            .unwrap(),
        TokenManager::builder(&s.url, "worker")
            .ca_bundle_pem(s.server_ca_pem.clone().into_bytes())
            .client_certificate(s.client_cert.clone())
            .environment(credentials())
            .build()
            .unwrap(),
    ] {
        let token = within(manager.get_access_token(false)).await.unwrap();
        assert_eq!(token.expose_secret(), "opaque-bound-token");
    }
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one connection per manager");
    assert!(seen.iter().all(|leaf| *leaf == s.client_der));
}

#[tokio::test]
async fn without_the_certificate_the_endpoint_refuses_the_handshake() {
    let s = setup().await;
    let manager = TokenManager::builder(&s.url, "worker")
        .ca_bundle_file(&s.server_ca_path)
        .environment(credentials())
        .build()
        .unwrap();
    let err = within(manager.get_access_token(false)).await.unwrap_err();
    assert!(matches!(err, AuthError::Transport { .. }), "{err:?}");
    assert!(s.seen.lock().unwrap().is_empty());
    assert!(*s.refused.lock().unwrap() >= 1);
}

#[test]
fn a_client_certificate_needs_a_ca_bundle_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let (client_ca, _) = ca("client ca");
    leaf(dir.path(), "client", &client_ca, true);
    let cert = Reloading::new(PemFiles::new(
        dir.path().join("client.crt"),
        dir.path().join("client.key"),
    ))
    .unwrap();
    let e = TokenManager::builder("https://control/oauth/token", "worker")
        .client_certificate(cert.clone())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("CA bundle"), "{e}");
    let e = TokenManager::builder("https://control/oauth/token", "worker")
        .client_certificate(cert.clone())
        .ca_bundle_pem(b"not pem".to_vec())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("CA bundle"), "{e}");
    let e = TokenManager::builder("https://control/oauth/token", "worker")
        .client_certificate(cert)
        .ca_bundle_file("/nonexistent/ca.crt")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.crt"), "{e}");
}
