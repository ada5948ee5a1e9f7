//! A listener asking for an optional client certificate (bulwark-tls `ClientTrust`): the
//! verified leaf reaches handlers as a `PeerCertificate` extension, a client without one is
//! served without it, and a certificate from another CA is refused at the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, sync::Arc};

use axum::{Extension, Router, routing::get};
use bulwark_serve::{Limits, PeerCertificate, Stats, serve};
use bulwark_tls::{ClientTrust, PemFiles, Reloading, server_config_with_client_trust};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, pem::PemObject as _,
};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    Ca {
        issuer: Issuer::new(p, key),
        pem: cert.pem(),
    }
}

/// A client leaf (clientAuth, URI SAN) signed by `ca`: (DER, key).
fn client_leaf(ca: &Ca, uri: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "test client");
    p.subject_alt_names
        .push(SanType::URI(uri.try_into().unwrap()));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

struct Server {
    addr: SocketAddr,
    server_ca: String,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

/// `GET /cert` answers the presented leaf (DER) or `none`.
async fn start(client_ca: &Ca) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server ca");
    let key = KeyPair::generate().unwrap();
    let p = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = p.signed_by(&key, &server_ca.issuer).unwrap();
    std::fs::write(dir.path().join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("trust.pem"), &client_ca.pem).unwrap();
    let cert = Reloading::new(PemFiles::new(
        dir.path().join("server.crt"),
        dir.path().join("server.key"),
    ))
    .unwrap();
    let trust = ClientTrust::optional(dir.path().join("trust.pem")).unwrap();
    let tls = server_config_with_client_trust(cert, trust).unwrap();

    let app = Router::new().route(
        "/cert",
        get(|cert: Option<Extension<PeerCertificate>>| async move {
            match cert {
                Some(Extension(c)) => c.der().to_vec(),
                None => b"none".to_vec(),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        serve(
            listener,
            Arc::new(tls),
            app,
            Limits::default(),
            Arc::new(Stats::new("test")),
            async {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    Server {
        addr,
        server_ca: server_ca.pem,
        _dir: dir,
        stop: Some(stop),
        done,
    }
}

impl Server {
    fn client(
        &self,
        cert: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.server_ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let b = rustls::ClientConfig::builder_with_provider(bulwark_tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match cert {
            Some((c, k)) => b.with_client_auth_cert(vec![c], k).unwrap(),
            None => b.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        cfg
    }

    /// Two GETs of `/cert` on one connection (every request of a connection sees the
    /// certificate); `Err` when the handshake or the first request fails.
    async fn certs_seen(&self, cfg: rustls::ClientConfig) -> Result<[Vec<u8>; 2], String> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let tls = TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut seen = [Vec::new(), Vec::new()];
        for slot in &mut seen {
            let req = hyper::Request::get("/cert")
                .header("host", "localhost")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let res = send.send_request(req).await.map_err(|e| e.to_string())?;
            assert_eq!(res.status(), 200);
            *slot = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        }
        Ok(seen)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap();
    }
}

#[tokio::test]
async fn the_verified_client_leaf_reaches_the_handler() {
    let client_ca = ca("client ca");
    let srv = start(&client_ca).await;
    let (leaf, key) = client_leaf(&client_ca, "spiffe://bulwark.local/client/api");
    let seen = srv
        .certs_seen(srv.client(Some((leaf.clone(), key))))
        .await
        .unwrap();
    assert_eq!(seen[0], leaf.as_ref());
    assert_eq!(seen[1], leaf.as_ref());
    srv.stop().await;
}

#[tokio::test]
async fn a_client_without_a_certificate_is_served_without_one() {
    let client_ca = ca("client ca");
    let srv = start(&client_ca).await;
    let seen = srv.certs_seen(srv.client(None)).await.unwrap();
    assert_eq!(seen[0], b"none");
    assert_eq!(seen[1], b"none");
    srv.stop().await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let client_ca = ca("client ca");
    let srv = start(&client_ca).await;
    let other = ca("other ca");
    let (leaf, key) = client_leaf(&other, "spiffe://bulwark.local/client/api");
    // TLS 1.3: the client finishes its side first, so the refusal may surface on the request.
    let r = srv.certs_seen(srv.client(Some((leaf, key)))).await;
    assert!(r.is_err(), "{r:?}");
    // The listener goes on serving.
    let (leaf, key) = client_leaf(&client_ca, "spiffe://bulwark.local/client/worker");
    let seen = srv
        .certs_seen(srv.client(Some((leaf.clone(), key))))
        .await
        .unwrap();
    assert_eq!(seen[0], leaf.as_ref());
    srv.stop().await;
}
