//! A real bulwark-control over HTTPS on an ephemeral port, backed by a fresh database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use bulwark_control::{AppState, app, metrics::Metrics};
use bulwark_db::testing::TestDatabase;
use bulwark_pki::{Mode, Settings, generate};
use bulwark_tls::{ClientTrust, PemFiles, Reloading, server_config_with_client_trust};
use bulwark_token_issuer::{
    ClientSecret, ClientStore, IssuerSettings, ScopeSet, TokenIssuer, signer::KeyFile,
};

pub struct Harness {
    pub url: String,
    /// Presents `client_cert` (client-worker), as api and worker do: Temporal tokens need it.
    pub http: reqwest::Client,
    /// Presents no client certificate.
    pub anonymous: reqwest::Client,
    /// The client-worker certificate `http` presents.
    pub client_cert: Arc<Reloading>,
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
    // As the public listener in main.rs: an optional client certificate from client-ca.
    let trust = ClientTrust::optional(certs.join("client-trust.pem")).unwrap();
    let tls = Arc::new(server_config_with_client_trust(cert, trust).unwrap());
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
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .use_rustls_tls()
        .build()
        .unwrap();
    let client_cert = Reloading::new(PemFiles::new(
        certs.join("client-worker.crt"),
        certs.join("client-worker.key"),
    ))
    .unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(with_client_cert(&certs, &client_cert))
        .build()
        .unwrap();
    Some(Harness {
        url,
        http,
        anonymous,
        client_cert,
        store,
        certs,
        secrets,
        _tmp: tmp,
        _server: server,
        _db: db,
    })
}

/// A rustls configuration trusting the test CA and presenting `cert`.
pub fn with_client_cert(certs: &std::path::Path, cert: &Arc<Reloading>) -> rustls::ClientConfig {
    let roots = bulwark_tls::load_roots(&certs.join("ca.crt")).unwrap();
    bulwark_tls::client_config(roots, Some(cert.clone())).unwrap()
}

impl Harness {
    /// The client-worker leaf (DER) `http` presents.
    pub fn client_leaf(&self) -> Vec<u8> {
        self.client_cert.current().cert[0].to_vec()
    }

    pub fn secret(&self, id: &str) -> String {
        self.secrets[id].expose().to_owned()
    }

    /// A token request over `http` (with the client certificate).
    pub async fn token_basic(
        &self,
        id: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        self.token_basic_over(&self.http, id, secret, extra).await
    }

    pub async fn token_basic_over(
        &self,
        http: &reqwest::Client,
        id: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        http.post(format!("{}/oauth/token", self.url))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}
