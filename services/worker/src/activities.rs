//! Activities: resolve credential references at run time and use them at the point of use.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bulwark_auth::{MemorySource, TokenManager};
use bulwark_secrets::{Credential, CredentialRef, Resolver, allowed_hosts};
use bulwark_temporal::{
    DatabaseQueryInput, DatabaseQueryOutput, GreetingInput, GreetingOutput, HttpCallInput,
    HttpCallOutput, activity, failure_type,
};
use sha2::{Digest, Sha256};
use sqlx::{ConnectOptions, Connection, Row};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::failures::{self, Failure};
use crate::health::Metrics;

/// Where `DatabaseQuery` connects.
#[derive(Debug, Clone)]
pub struct DatabaseTarget {
    pub host: String,
    pub port: u16,
    /// Databases a workflow may name.
    pub allowed: Vec<String>,
}

/// Limits on what one `HttpCall` may cost the worker and where it may send credentials.
#[derive(Debug, Clone)]
pub struct HttpCallPolicy {
    /// Most response-body bytes read; a longer body fails the call `ResponseTooLarge`
    /// (non-retryable) and the rest is never read.
    pub max_body_bytes: u64,
    /// Whole-call bound: connect, TLS, request, headers and body.
    pub timeout: Duration,
    /// Refuse credentials that carry no `allowed_hosts` (`CredentialInvalid`) instead of
    /// sending them to any https host.
    pub require_allowed_hosts: bool,
}

impl Default for HttpCallPolicy {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            timeout: Duration::from_secs(20),
            require_allowed_hosts: false,
        }
    }
}

/// State shared by all activity executions.
pub struct Activities {
    pub resolver: Resolver,
    pub metrics: Arc<Metrics>,
    pub database: DatabaseTarget,
    /// PEM CA bundle: the only trust for HTTPS calls and token endpoints.
    pub ca_pem: Vec<u8>,
    pub ca_file: std::path::PathBuf,
    pub http: reqwest::Client,
    pub http_policy: HttpCallPolicy,
    /// Token managers per (reference, client id, secret digest, token url).
    oauth: Mutex<HashMap<String, TokenManager>>,
}

impl fmt::Debug for Activities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Activities")
            .field("database", &self.database)
            .field("ca_file", &self.ca_file)
            .field("http_policy", &self.http_policy)
            .finish_non_exhaustive()
    }
}

impl Activities {
    pub fn new(
        resolver: Resolver,
        metrics: Arc<Metrics>,
        database: DatabaseTarget,
        ca_file: std::path::PathBuf,
        http_policy: HttpCallPolicy,
    ) -> anyhow::Result<Self> {
        let ca_pem = std::fs::read(&ca_file)
            .map_err(|e| anyhow::anyhow!("CA bundle {}: {e}", ca_file.display()))?;
        let roots = bulwark_tls::load_roots(&ca_file)?;
        let tls = bulwark_tls::client_config(roots, None)?;
        // Redirects are never followed: the credential was checked against the URL asked
        // for, and a 3xx is reported as the call's status instead.
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5).min(http_policy.timeout))
            .timeout(http_policy.timeout)
            .build()?;
        Ok(Self {
            resolver,
            metrics,
            database,
            ca_pem,
            ca_file,
            http,
            http_policy,
            oauth: Mutex::new(HashMap::new()),
        })
    }

    fn record(&self, name: &str, result: &Result<(), &Failure>) {
        self.metrics
            .inc("bulwark_worker_activities_total", &[("activity", name)]);
        if let Err(f) = result {
            self.metrics.inc(
                "bulwark_worker_activity_failures_total",
                &[("activity", name), ("type", f.kind)],
            );
            tracing::warn!(activity = name, failure_type = f.kind, error = %f, "activity failed");
        }
    }

    async fn resolve(&self, reference: &CredentialRef) -> Result<Arc<Credential>, Failure> {
        match self.resolver.resolve(reference).await {
            Ok(c) => {
                self.metrics.inc(
                    "bulwark_worker_credential_resolutions_total",
                    &[("result", "ok")],
                );
                Ok(c)
            }
            Err(e) => {
                self.metrics.inc(
                    "bulwark_worker_credential_resolutions_total",
                    &[("result", "failed")],
                );
                Err(failures::from_secrets(&e))
            }
        }
    }

    async fn database_query(
        &self,
        input: DatabaseQueryInput,
    ) -> Result<DatabaseQueryOutput, Failure> {
        input
            .validate()
            .map_err(|e| Failure::new(failure_type::INVALID_INPUT, e.to_string()))?;
        if !self.database.allowed.contains(&input.database) {
            return Err(Failure::new(
                failure_type::INVALID_INPUT,
                format!(
                    "database `{}` is not allowed on this worker",
                    input.database
                ),
            ));
        }
        let reference = input.credential.to_string();
        let cred = self.resolve(&input.credential).await?;
        let basic = cred.as_basic().ok_or_else(|| {
            Failure::new(
                failure_type::CREDENTIAL_INVALID,
                format!("{reference}: not a basic credential"),
            )
        })?;
        // The target is this worker's setting, not workflow input; a credential that lists
        // allowed_hosts is still held to them (`host:5432` entries).
        if let Some(list) = cred.allowed_hosts() {
            let target = self.database_url();
            if !target.as_ref().is_some_and(|u| list.permits(u)) {
                return Err(Failure::new(
                    failure_type::DESTINATION_NOT_ALLOWED,
                    format!(
                        "{reference} is not allowed for host `{}:{}` (allowed_hosts)",
                        self.database.host, self.database.port
                    ),
                ));
            }
        }
        let opts = sqlx::postgres::PgConnectOptions::new()
            .host(&self.database.host)
            .port(self.database.port)
            .database(&input.database)
            .username(&basic.username)
            .password(basic.password.expose())
            .application_name("bulwark-worker")
            .options([
                ("default_transaction_read_only", "on"),
                ("statement_timeout", "5000"),
            ])
            .disable_statement_logging();
        let mut conn = tokio::time::timeout(Duration::from_secs(10), opts.connect())
            .await
            .map_err(|_| {
                Failure::new(
                    failure_type::TRANSIENT,
                    format!("database `{}`: connect timed out", input.database),
                )
            })?
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let row = sqlx::query(input.query.sql())
            .fetch_one(&mut conn)
            .await
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let _ = conn.close().await;
        let row_count: i64 = row
            .try_get(0)
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let total_quantity: i64 = row
            .try_get(1)
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        Ok(DatabaseQueryOutput {
            query: input.query,
            database: input.database,
            row_count,
            total_quantity,
        })
    }

    /// The database target as a URL, for [`bulwark_secrets::AllowedHosts::permits`].
    fn database_url(&self) -> Option<reqwest::Url> {
        let host = &self.database.host;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        reqwest::Url::parse(&format!("https://{host}:{}/", self.database.port)).ok()
    }

    async fn oauth_token(
        &self,
        reference: &str,
        cred: &bulwark_secrets::OAuthClientCredential,
    ) -> Result<String, Failure> {
        let digest = hex::encode(Sha256::digest(cred.client_secret.expose().as_bytes()));
        let key = format!(
            "{reference}\n{}\n{digest}\n{}",
            cred.client_id, cred.token_url
        );
        let manager = {
            let mut map = self.oauth.lock().unwrap_or_else(PoisonError::into_inner);
            match map.get(&key) {
                Some(m) => m.clone(),
                None => {
                    let source = MemorySource::new()
                        .with("httpcall_client_id", cred.client_id.clone())
                        .with(
                            "httpcall_client_secret",
                            cred.client_secret.expose().to_owned(),
                        );
                    let m = TokenManager::builder(cred.token_url.clone(), "httpcall")
                        .ca_bundle_pem(self.ca_pem.clone())
                        .environment(Arc::new(MemorySource::new()))
                        .secret_store(Arc::new(source))
                        .scopes(cred.scopes.clone())
                        .build()
                        .map_err(|e| failures::from_auth(reference, &e))?;
                    // Drop managers of rotated secrets of the same reference.
                    map.retain(|k, _| !k.starts_with(&format!("{reference}\n")));
                    map.insert(key, m.clone());
                    m
                }
            }
        };
        let token = manager
            .get_access_token(false)
            .await
            .map_err(|e| failures::from_auth(reference, &e))?;
        Ok(token.expose_secret().to_owned())
    }

    async fn http_call(&self, input: HttpCallInput) -> Result<HttpCallOutput, Failure> {
        input
            .validate()
            .map_err(|e| Failure::new(failure_type::INVALID_INPUT, e.to_string()))?;
        let url = reqwest::Url::parse(&input.url).map_err(|e| {
            Failure::new(
                failure_type::INVALID_INPUT,
                format!("`url` is invalid: {e}"),
            )
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let reference = input.credential.to_string();
        let cred = self.resolve(&input.credential).await?;
        // Before any token is fetched or header built: a credential goes only where its
        // store entry allows.
        self.check_destination(&reference, &cred, &url)?;
        let (header_name, header_value) = match cred.as_ref() {
            Credential::OAuthClient(c) => {
                let token = self.oauth_token(&reference, c).await?;
                ("authorization".to_owned(), format!("Bearer {token}"))
            }
            Credential::ApiKey(k) => (k.header_name.clone(), k.header_value().expose().to_owned()),
            _ => {
                return Err(Failure::new(
                    failure_type::CREDENTIAL_INVALID,
                    format!("{reference}: expected an oauth_client or api_key credential"),
                ));
            }
        };
        let mut value = reqwest::header::HeaderValue::from_str(&header_value).map_err(|_| {
            Failure::new(
                failure_type::CREDENTIAL_INVALID,
                format!("{reference}: value is not a valid HTTP header value"),
            )
        })?;
        value.set_sensitive(true);
        let resp = self
            .http
            .get(url)
            .header(header_name.as_str(), value)
            .send()
            .await
            .map_err(|e| {
                // reqwest errors name the URL (no credentials: user info is refused) and cause.
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                Failure::new(failure_type::TRANSIENT, format!("GET {host}: {what}"))
            })?;
        let status = resp.status().as_u16();
        if let Some(f) = failures::from_http_status(&reference, &host, status) {
            return Err(f);
        }
        let (body_sha256, body_len) = self.hash_body(resp, &host).await?;
        Ok(HttpCallOutput {
            status,
            body_sha256,
            body_len,
        })
    }

    /// Refuses to send `cred` to `url` unless its `allowed_hosts` lists the URL's host and
    /// port (or it has none and this worker does not require one).
    fn check_destination(
        &self,
        reference: &str,
        cred: &Credential,
        url: &reqwest::Url,
    ) -> Result<(), Failure> {
        // Input validation refuses `@` already; this holds whoever builds the URL.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Failure::new(
                failure_type::INVALID_INPUT,
                "`url` must not contain user information",
            ));
        }
        let destination = allowed_hosts::destination(url);
        match cred.allowed_hosts() {
            Some(list) if list.permits(url) => Ok(()),
            Some(_) => Err(Failure::new(
                failure_type::DESTINATION_NOT_ALLOWED,
                format!("{reference} is not allowed for host `{destination}` (allowed_hosts)"),
            )),
            None if self.http_policy.require_allowed_hosts => Err(Failure::new(
                failure_type::CREDENTIAL_INVALID,
                format!(
                    "{reference} has no allowed_hosts, which this worker requires; not sent to `{destination}`"
                ),
            )),
            None => Ok(()),
        }
    }

    /// Streams the body into SHA-256, stopping at `max_body_bytes`: a hostile server cannot
    /// make the worker buffer more than one chunk.
    async fn hash_body(
        &self,
        mut resp: reqwest::Response,
        host: &str,
    ) -> Result<(String, u64), Failure> {
        let max = self.http_policy.max_body_bytes;
        let too_large = || {
            Failure::new(
                failure_type::RESPONSE_TOO_LARGE,
                format!("GET {host}: response body exceeds {max} bytes"),
            )
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut hasher = Sha256::new();
        let mut len: u64 = 0;
        loop {
            let chunk = resp.chunk().await.map_err(|e| {
                let what = if e.is_timeout() {
                    "timed out reading the body"
                } else {
                    "reading the body failed"
                };
                Failure::new(failure_type::TRANSIENT, format!("GET {host}: {what}"))
            })?;
            let Some(chunk) = chunk else { break };
            len = len.saturating_add(chunk.len() as u64);
            if len > max {
                return Err(too_large());
            }
            hasher.update(&chunk);
        }
        Ok((hex::encode(hasher.finalize()), len))
    }
}

#[activities]
impl Activities {
    #[activity(name = activity::GREET)]
    pub async fn greet(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: GreetingInput,
    ) -> Result<GreetingOutput, ActivityError> {
        let r = input
            .validate()
            .map_err(|e| Failure::new(failure_type::INVALID_INPUT, e.to_string()));
        self.record("greet", &r.as_ref().map(|_| ()));
        r.map_err(Failure::into_activity_error)?;
        Ok(GreetingOutput {
            greeting: format!("Hello, {}!", input.name),
        })
    }

    #[activity(name = activity::DATABASE_QUERY)]
    pub async fn run_database_query(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: DatabaseQueryInput,
    ) -> Result<DatabaseQueryOutput, ActivityError> {
        let r = self.database_query(input).await;
        self.record("database_query", &r.as_ref().map(|_| ()));
        r.map_err(Failure::into_activity_error)
    }

    #[activity(name = activity::HTTP_CALL)]
    pub async fn run_http_call(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: HttpCallInput,
    ) -> Result<HttpCallOutput, ActivityError> {
        let r = self.http_call(input).await;
        self.record("http_call", &r.as_ref().map(|_| ()));
        r.map_err(Failure::into_activity_error)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
    use super::*;
    use std::io::Write as _;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use bulwark_secrets::{FileStore, api_key_ref, oauth_client_ref};

    const PLANTED: &str = "PLANTED-httpcall-7d1e-do-not-print";
    const CAP: u64 = 64 * 1024;
    const CHUNK: usize = 16 * 1024;
    const STREAM_CHUNKS: usize = 2_000;

    struct Pki {
        dir: tempfile::TempDir,
    }

    /// A CA and a server certificate for `localhost` and 127.0.0.1, as PEM files.
    fn pki() -> Pki {
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
    struct Seen {
        keys: Mutex<Vec<String>>,
        chunks: AtomicUsize,
    }

    impl Seen {
        fn hits(&self) -> usize {
            self.keys.lock().unwrap().len()
        }
    }

    async fn serve(pki: &Pki, redirect_to: Option<String>) -> (SocketAddr, Arc<Seen>) {
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

    use futures::StreamExt as _;

    fn activities(pki: &Pki, secrets: serde_json::Value, policy: HttpCallPolicy) -> Activities {
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

    fn policy() -> HttpCallPolicy {
        HttpCallPolicy {
            max_body_bytes: CAP,
            timeout: Duration::from_secs(10),
            require_allowed_hosts: false,
        }
    }

    fn call(name: &str, url: String) -> HttpCallInput {
        HttpCallInput {
            credential: api_key_ref(name),
            url,
        }
    }

    #[derive(Clone, Default)]
    struct LogBuf(Arc<Mutex<Vec<u8>>>);

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
    fn assert_clean(acts: &Activities, r: &Result<HttpCallOutput, Failure>) {
        acts.record("http_call", &r.as_ref().map(|_| ()));
        if let Err(f) = r {
            let shown = format!("{f} {f:?}");
            assert!(
                !shown.contains(PLANTED),
                "failure leaked the value: {shown}"
            );
        }
    }

    #[tokio::test]
    async fn credentials_go_only_to_allowed_hosts() {
        let logs = LogBuf::default();
        let sink = logs.clone();
        // Global, not `set_default`: tracing caches per-callsite interest, and a callsite
        // first hit by a parallel test on a thread without a subscriber can be skipped here.
        // Only this test installs a subscriber.
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || sink.clone())
                .finish(),
        )
        .unwrap();
        let pki = pki();
        let (b, seen_b) = serve(&pki, None).await;
        let (a, seen_a) = serve(&pki, Some(format!("https://127.0.0.1:{}/ok", b.port()))).await;
        let (pa, pb) = (a.port(), b.port());
        let acts = activities(
            &pki,
            serde_json::json!({
                "good": {"api_key": PLANTED, "allowed_hosts": [format!("localhost:{pa}")]},
                "by-ip": {"api_key": PLANTED, "allowed_hosts": format!("127.0.0.1:{pa}")},
                "idp": {"client_id": "c", "client_secret": PLANTED,
                        "token_url": format!("https://127.0.0.1:{pb}/token"),
                        "allowed_hosts": [format!("localhost:{pa}")]},
            }),
            policy(),
        );

        // Allowed: sent, with the key.
        let ok = acts
            .http_call(call("good", format!("https://localhost:{pa}/ok")))
            .await
            .unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body_len, 6);
        assert_eq!(seen_a.keys.lock().unwrap().as_slice(), [PLANTED.to_owned()]);
        let ok = acts
            .http_call(call("by-ip", format!("https://127.0.0.1:{pa}/ok")))
            .await
            .unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(seen_a.hits(), 2);

        // Refused before anything is sent: another host (the address is not the name, nor
        // the reverse), another port, user information.
        for (name, url, kind) in [
            (
                "good",
                format!("https://127.0.0.1:{pa}/ok"),
                failure_type::DESTINATION_NOT_ALLOWED,
            ),
            (
                "by-ip",
                format!("https://localhost:{pa}/ok"),
                failure_type::DESTINATION_NOT_ALLOWED,
            ),
            (
                "good",
                format!("https://localhost:{pb}/ok"),
                failure_type::DESTINATION_NOT_ALLOWED,
            ),
            (
                "good",
                format!("https://localhost:{pa}@127.0.0.1:{pa}/ok"),
                failure_type::INVALID_INPUT,
            ),
        ] {
            let r = acts.http_call(call(name, url.clone())).await;
            assert_clean(&acts, &r);
            let f = r.unwrap_err();
            assert_eq!(f.kind, kind, "{url}: {f}");
            assert!(f.non_retryable(), "{f}");
            if kind == failure_type::DESTINATION_NOT_ALLOWED {
                let host = url.trim_start_matches("https://").trim_end_matches("/ok");
                assert!(
                    f.message.contains(&format!("`{name}`")) && f.message.contains(host),
                    "names the reference and the host: {f}"
                );
            }
        }
        assert_eq!(seen_a.hits(), 2, "nothing more reached the allowed server");
        assert_eq!(seen_b.hits(), 0, "nothing reached the other port");
        // User information is refused whoever builds the URL, list or not.
        let cred = acts.resolve(&api_key_ref("good")).await.unwrap();
        let tricked =
            reqwest::Url::parse(&format!("https://localhost:{pa}@evil.example/")).unwrap();
        assert_eq!(tricked.host_str(), Some("evil.example"));
        let f = acts.check_destination("good", &cred, &tricked).unwrap_err();
        assert_eq!(f.kind, failure_type::INVALID_INPUT);

        // A redirect to another host is reported, never followed with the credential.
        let r = acts
            .http_call(call("good", format!("https://localhost:{pa}/redirect")))
            .await;
        assert_clean(&acts, &r);
        assert_eq!(r.unwrap().status, 302);
        assert_eq!(seen_b.hits(), 0, "the redirect target was never contacted");

        // oauth_client: a refused destination fetches no token (the secret stays home).
        let r = acts
            .http_call(HttpCallInput {
                credential: oauth_client_ref("idp"),
                url: format!("https://127.0.0.1:{pa}/ok"),
            })
            .await;
        assert_clean(&acts, &r);
        assert_eq!(r.unwrap_err().kind, failure_type::DESTINATION_NOT_ALLOWED);
        assert_eq!(seen_b.hits(), 0, "no token request");
        assert_eq!(seen_a.hits(), 3, "only the redirect request since");

        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("DestinationNotAllowed"),
            "failures are logged: {text}"
        );
        assert!(
            !text.contains(PLANTED),
            "a log line carries the value: {text}"
        );
    }

    #[tokio::test]
    async fn database_query_holds_basic_credentials_to_their_allowed_hosts() {
        let pki = pki();
        let mut acts = activities(
            &pki,
            serde_json::json!({
                "pinned": {"username": "u", "password": PLANTED, "allowed_hosts": ["db.example:5432"]},
                "here": {"username": "u", "password": PLANTED, "allowed_hosts": ["127.0.0.1:1"]},
            }),
            policy(),
        );
        acts.database.allowed = vec!["demo".into()];
        let query = |name: &str| DatabaseQueryInput {
            credential: bulwark_secrets::basic_ref(name),
            database: "demo".into(),
            query: bulwark_temporal::NamedQuery::InventorySummary,
        };
        let f = acts.database_query(query("pinned")).await.unwrap_err();
        assert_eq!(f.kind, failure_type::DESTINATION_NOT_ALLOWED, "{f}");
        assert!(
            f.message.contains("127.0.0.1:1") && !f.message.contains(PLANTED),
            "{f}"
        );
        // Listed: it gets as far as connecting (nothing listens on port 1).
        let f = acts.database_query(query("here")).await.unwrap_err();
        assert_eq!(f.kind, failure_type::TRANSIENT, "{f}");
    }

    #[tokio::test]
    async fn a_worker_may_require_allowed_hosts() {
        let pki = pki();
        let (a, seen) = serve(&pki, None).await;
        let secrets = serde_json::json!({"open": {"api_key": PLANTED}});
        let url = format!("https://localhost:{}/ok", a.port());
        let lax = activities(&pki, secrets.clone(), policy());
        assert_eq!(
            lax.http_call(call("open", url.clone()))
                .await
                .unwrap()
                .status,
            200
        );
        let strict = activities(
            &pki,
            secrets,
            HttpCallPolicy {
                require_allowed_hosts: true,
                ..policy()
            },
        );
        let r = strict.http_call(call("open", url)).await;
        assert_clean(&strict, &r);
        let f = r.unwrap_err();
        assert_eq!(f.kind, failure_type::CREDENTIAL_INVALID);
        assert!(f.message.contains("allowed_hosts"), "{f}");
        assert_eq!(seen.hits(), 1, "the strict worker sent nothing");
    }

    #[tokio::test]
    async fn response_bodies_are_capped() {
        let pki = pki();
        let (a, seen) = serve(&pki, None).await;
        let acts = activities(
            &pki,
            serde_json::json!({"open": {"api_key": PLANTED}}),
            policy(),
        );
        let url = |p: &str| format!("https://localhost:{}{p}", a.port());
        let exact = acts.http_call(call("open", url("/exact"))).await.unwrap();
        assert_eq!(exact.body_len, CAP, "a body of exactly the cap is read");
        // Declared too long: refused before reading.
        let r = acts.http_call(call("open", url("/big"))).await;
        assert_clean(&acts, &r);
        let f = r.unwrap_err();
        assert_eq!(f.kind, failure_type::RESPONSE_TOO_LARGE);
        assert!(f.non_retryable());
        assert!(f.message.contains(&CAP.to_string()), "{f}");
        // Chunked, with no length, and endless as far as the worker can tell: reading stops
        // at the cap.
        let r = acts.http_call(call("open", url("/stream"))).await;
        assert_clean(&acts, &r);
        assert_eq!(r.unwrap_err().kind, failure_type::RESPONSE_TOO_LARGE);
        let produced = seen.chunks.load(Ordering::Relaxed);
        assert!(
            produced < STREAM_CHUNKS / 4,
            "the worker kept reading: {produced} of {STREAM_CHUNKS} chunks produced"
        );
        let _ = writeln!(
            std::io::stderr(),
            "stream: {produced} chunks produced before the worker stopped"
        );
    }
}
