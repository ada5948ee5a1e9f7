//! A real bulwark-control over HTTPS on an ephemeral port, backed by a fresh database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use bulwark_control::{AppState, app, metrics::Metrics};
use bulwark_db::testing::TestDatabase;
use bulwark_pki::{Mode, Settings, generate};
use bulwark_tls::{PemFiles, Reloading, server_config};
use bulwark_token_issuer::{
    ClientSecret, ClientStore, IssuerSettings, ScopeSet, TokenIssuer, signer::KeyFile,
};

pub struct Harness {
    pub url: String,
    pub http: reqwest::Client,
    pub store: ClientStore,
    pub certs: PathBuf,
    pub secrets: std::collections::HashMap<&'static str, ClientSecret>,
    _tmp: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
    /// Last: dropped after everything that holds its pool.
    _db: TestDatabase,
}

/// A fresh, migrated database on the test server, or `None` (with a message) when none is
/// configured. Hold it for the test's duration: dropping it drops the database.
pub async fn database() -> Option<TestDatabase> {
    TestDatabase::migrated("control").await
}

pub async fn start(settings: IssuerSettings) -> Option<Harness> {
    let db = database().await?;
    let pool = db.pool().clone();
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    generate(
        &certs,
        &Settings::default(),
        Mode::Missing,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let store = ClientStore::new(pool);
    let mut secrets = std::collections::HashMap::new();
    for (id, scopes, aud) in [
        ("worker", "temporal:default:write", "temporal"),
        (
            "api",
            "temporal:default:read temporal:default:write",
            "temporal",
        ),
        ("operator", "workflows:start workflows:read", "bulwark-api"),
    ] {
        let s: ScopeSet = scopes.parse().unwrap();
        secrets.insert(
            id,
            store.register(id, "test", &s, aud).await.unwrap().unwrap(),
        );
    }
    let key = Arc::new(
        KeyFile::open(
            certs.join("temporal-jwt-private.key"),
            Duration::from_millis(50),
        )
        .unwrap(),
    );
    let issuer = TokenIssuer::new(store.clone(), key, settings);
    let cert = Reloading::new(PemFiles::new(
        certs.join("control-server.crt"),
        certs.join("control-server.key"),
    ))
    .unwrap();
    let tls = Arc::new(server_config(cert, None).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("https://localhost:{}", addr.port());
    let state = AppState {
        issuer: Arc::new(issuer),
        certs_dir: certs.clone(),
        base_url: url.clone(),
        metrics: Arc::new(Metrics::default()),
    };
    // The production serve loop (timeouts, connection limit, ConnectInfo), default limits.
    let server = tokio::spawn(async move {
        bulwark_serve::serve(
            listener,
            tls,
            app(state),
            bulwark_serve::Limits::default(),
            Arc::new(bulwark_serve::Stats::new("public")),
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.crt")).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .use_rustls_tls()
        .build()
        .unwrap();
    Some(Harness {
        url,
        http,
        store,
        certs,
        secrets,
        _tmp: tmp,
        _server: server,
        _db: db,
    })
}

impl Harness {
    pub fn secret(&self, id: &str) -> String {
        self.secrets[id].expose().to_owned()
    }

    pub async fn token_basic(
        &self,
        id: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        self.http
            .post(format!("{}/oauth/token", self.url))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}
