#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

//! Shared helpers for the integration tests.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use bulwark_pki::{Mode, Settings, generate};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection,
    server::WebPkiClientVerifier,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use time::OffsetDateTime;

pub fn fresh() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    generate(
        &dir,
        &Settings::default(),
        Mode::Missing,
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    (tmp, dir)
}

/// Every file's bytes, to prove a run changed nothing.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

pub fn certs(dir: &Path, file: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(dir.join(file))
        .unwrap()
        .map(|c| c.unwrap())
        .collect()
}

pub fn key(dir: &Path, file: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(dir.join(file)).unwrap()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(certs: Vec<CertificateDer<'static>>) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    for c in certs {
        store.add(c).unwrap();
    }
    Arc::new(store)
}

/// A real TLS 1.3 handshake between rustls peers over an in-memory transport.
/// `server`: (cert file, key file, client trust file); `client`: (cert file, key file) or
/// none, trusting `server_trust` for the server. Returns the first error either side raises.
pub fn handshake(
    dir: &Path,
    server: (&str, &str, &str),
    client: Option<(&str, &str)>,
    server_trust: &str,
    server_name: &str,
) -> Result<(), rustls::Error> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(certs(dir, server.2)), provider())
            .build()
            .unwrap();
    let server_cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(dir, server.0), key(dir, server.1))
        .unwrap();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(certs(dir, server_trust)));
    let client_cfg = match client {
        Some((c, k)) => builder
            .with_client_auth_cert(certs(dir, c), key(dir, k))
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let mut c = ClientConnection::new(
        Arc::new(client_cfg),
        ServerName::try_from(server_name.to_owned()).unwrap(),
    )?;
    let mut s = ServerConnection::new(Arc::new(server_cfg))?;
    for _ in 0..10 {
        let mut to_server = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut to_server).unwrap();
        }
        if !to_server.is_empty() {
            s.read_tls(&mut &to_server[..]).unwrap();
            s.process_new_packets()?;
        }
        let mut to_client = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut to_client).unwrap();
        }
        if !to_client.is_empty() {
            c.read_tls(&mut &to_client[..]).unwrap();
            c.process_new_packets()?;
        }
        if !c.is_handshaking()
            && !s.is_handshaking()
            && to_server.is_empty()
            && to_client.is_empty()
        {
            return Ok(());
        }
    }
    Err(rustls::Error::General("handshake did not finish".into()))
}
