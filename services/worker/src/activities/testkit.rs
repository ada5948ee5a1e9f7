//! Fixtures for the activity tests: a throwaway CA, local TLS servers that record what
//! they were sent, and `Activities` over a file secret store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use bulwark_secrets::{FileStore, Resolver, api_key_ref};
use bulwark_workflows::{HttpCallInput, HttpCallOutput};
use futures::StreamExt as _;

use super::{Activities, DatabaseTarget, HttpCallPolicy};
use crate::failures::Failure;
use crate::health::Metrics;

pub(super) const PLANTED: &str = "PLANTED-httpcall-7d1e-do-not-print";
pub(super) const CAP: u64 = 64 * 1024;
pub(super) const CHUNK: usize = 16 * 1024;
pub(super) const STREAM_CHUNKS: usize = 2_000;

pub(super) struct Pki {
    pub(super) dir: tempfile::TempDir,
}

/// A CA and a server certificate for `localhost` and 127.0.0.1, as PEM files.
pub(super) fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "httpcall test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
    Pki { dir }
}

/// What a test server saw: the `X-API-Key` of every request, and how many body chunks
/// its endless stream produced.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) keys: Mutex<Vec<String>>,
    pub(super) chunks: AtomicUsize,
}

impl Seen {
    pub(super) fn hits(&self) -> usize {
        self.keys.lock().unwrap().len()
    }
}

pub(super) async fn serve(pki: &Pki, redirect_to: Option<String>) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let record = move |h: &HeaderMap| {
        let key = h
            .get("x-api-key")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        s.keys.lock().unwrap().push(key);
    };
    let r1 = record.clone();
    let r2 = record.clone();
    let r3 = record.clone();
    let r4 = record.clone();
    let stream_seen = seen.clone();
    let app = axum::Router::new()
        .route(
            "/ok",
            axum::routing::get(move |h: HeaderMap| async move {
                r1(&h);
                "hello\n"
            }),
        )
        .route(
            "/redirect",
            axum::routing::get(move |h: HeaderMap| async move {
                r2(&h);
                let to = redirect_to.clone().unwrap_or_default();
                (StatusCode::FOUND, [(header::LOCATION, to)], "moved\n").into_response()
            }),
        )
        .route(
            "/exact",
            axum::routing::get(move |h: HeaderMap| async move {
                r3(&h);
                vec![b'x'; usize::try_from(CAP).unwrap()]
            }),
        )
        .route(
            "/big",
            axum::routing::get(|| async { vec![b'x'; usize::try_from(CAP).unwrap() + 1] }),
        )
        .route(
            "/stream",
            axum::routing::get(move |h: HeaderMap| async move {
                r4(&h);
                let seen = stream_seen.clone();
                let chunks = futures::stream::iter(0..STREAM_CHUNKS).map(move |_| {
                    seen.chunks.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, std::io::Error>(vec![b'y'; CHUNK])
                });
                axum::body::Body::from_stream(chunks)
            }),
        );
    let cert = bulwark_tls::Reloading::new(bulwark_tls::PemFiles::new(
        pki.dir.path().join("server.crt"),
        pki.dir.path().join("server.key"),
    ))
    .unwrap();
    let config = bulwark_tls::server_config(cert, None).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, rustls)
            .serve(app.into_make_service())
            .await
            .unwrap();
    });
    (addr, seen)
}

pub(super) fn activities(
    pki: &Pki,
    secrets: serde_json::Value,
    policy: HttpCallPolicy,
) -> Activities {
    let file = pki.dir.path().join("secrets.json");
    std::fs::write(&file, secrets.to_string()).unwrap();
    let resolver = Resolver::builder()
        .store(FileStore::new("default", &file))
        .build();
    Activities::new(
        resolver,
        Arc::new(Metrics::default()),
        DatabaseTarget {
            host: "127.0.0.1".into(),
            port: 1,
            allowed: vec![],
        },
        pki.dir.path().join("ca.crt"),
        policy,
    )
    .unwrap()
}

pub(super) fn policy() -> HttpCallPolicy {
    HttpCallPolicy {
        max_body_bytes: CAP,
        timeout: Duration::from_secs(10),
        require_allowed_hosts: false,
    }
}

pub(super) fn call(name: &str, url: String) -> HttpCallInput {
    HttpCallInput {
        credential: api_key_ref(name),
        url,
    }
}

#[derive(Clone, Default)]
pub(super) struct LogBuf(pub(super) Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every failure is recorded (logged) as the activity wrapper does, and neither the log
/// nor the failure's Display/Debug carries the planted value.
pub(super) fn assert_clean(acts: &Activities, r: &Result<HttpCallOutput, Failure>) {
    acts.record("http_call", &r.as_ref().map(|_| ()));
    if let Err(f) = r {
        let shown = format!("{f} {f:?}");
        assert!(
            !shown.contains(PLANTED),
            "failure leaked the value: {shown}"
        );
    }
}
