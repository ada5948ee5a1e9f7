//! The admin page over real HTTPS against a fresh Postgres database: login, sessions,
//! CSRF, login throttling and backoff, password change, headers, every rotation, failures,
//! the audit log (aggregation, ownership) and secret hygiene.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::HashMap,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use bulwark_control::{
    AppState,
    admin::{self, Admin, AdminConfig, TemporalTarget},
    app,
    metrics::Metrics,
};
use bulwark_pki::{Mode, Settings, generate, manifest::Manifest};
use bulwark_secrets::store::{MasterKey, MasterKeyring, PostgresStore};
use bulwark_tls::{PemFiles, Reloading, server_config};
use bulwark_token_issuer::{ClientStore, IssuerSettings, ScopeSet, TokenIssuer, signer::KeyFile};
use reqwest::{StatusCode, header};
use sqlx::{PgPool, Row};

const PASSWORD: &str = "correct horse battery staple";

// ---- log capture: everything the server logs in this process ----------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let c = Captured::default();
        let w = c.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=warn,hyper=info,rustls=info,h2=info")
            .with_writer(move || w.clone())
            .try_init();
        c
    })
}

fn logged_text() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

// ---- harness ----------------------------------------------------------------------------

struct Harness {
    ca: reqwest::Certificate,
    /// The admin listener.
    url: String,
    /// The public listener (token endpoint, JWKS, metadata).
    public_url: String,
    http: reqwest::Client,
    pool: PgPool,
    certs: PathBuf,
    deployment: PathBuf,
    store: ClientStore,
    admin: admin::AdminState,
    _tmp: tempfile::TempDir,
    /// Last: dropped after everything that holds its pool.
    _db: bulwark_db::testing::TestDatabase,
}

#[derive(Default)]
struct Options {
    backoff_after: Option<u32>,
    address_limit: Option<u32>,
    login_concurrency: Option<usize>,
    login_queue_wait: Option<Duration>,
    /// A bootstrap password file for the admin account (deleted on a password change).
    bootstrap_file: bool,
    audit_refusal_window: Option<Duration>,
    backoff_base: Option<Duration>,
    session_idle: Option<Duration>,
    fake_temporal: bool,
}

/// A TLS server presenting the (reloading) temporal-server certificate, like Temporal does.
async fn fake_temporal(certs: &Path) -> String {
    let cert = Reloading::new(PemFiles::new(
        certs.join("temporal-server.crt"),
        certs.join("temporal-server.key"),
    ))
    .unwrap();
    cert.spawn_watcher(Duration::from_millis(100));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(cert, None).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    addr.to_string()
}

async fn start(opts: Options) -> Option<Harness> {
    logs();
    let db = support::database().await?;
    let pool = db.pool().clone();
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    let settings = Settings::default();
    generate(
        &certs,
        &settings,
        Mode::Missing,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let store = ClientStore::new(pool.clone());
    let scopes: ScopeSet = "temporal:default:write".parse().unwrap();
    let worker_secret = store
        .register("worker", "test worker", &scopes, "temporal")
        .await
        .unwrap()
        .unwrap();
    let deployment = tmp
        .path()
        .join(bulwark_token_issuer::deployment_secrets_file("worker"));
    std::fs::write(
        &deployment,
        serde_json::to_vec(&serde_json::json!({
            "worker_client_id": "worker",
            "worker_client_secret": worker_secret.expose(),
        }))
        .unwrap(),
    )
    .unwrap();

    // The encrypted secret store with one credential.
    let (key, _) = MasterKey::generate().unwrap();
    let secrets =
        PostgresStore::from_pool("default", "default", pool.clone(), MasterKeyring::new(key));
    let mut cred = bulwark_secrets::SecretMap::new();
    cred.insert("username".into(), "reporting".into());
    cred.insert("password".into(), "planted-old-db-password-0001".into());
    secrets.put_version("reporting-db", &cred).await.unwrap();

    let mut cfg = AdminConfig::new(certs.clone(), settings);
    cfg.jwks_propagation = Duration::from_millis(300);
    cfg.poll_interval = Duration::from_millis(100);
    cfg.cert_propagation_timeout = Duration::from_secs(10);
    cfg.renew_interval = None;
    cfg.deployment_secrets_dir = Some(tmp.path().to_owned());
    if let Some(t) = opts.backoff_after {
        cfg.backoff_after = t;
    }
    if let Some(c) = opts.login_concurrency {
        cfg.login_concurrency = c;
    }
    if let Some(w) = opts.login_queue_wait {
        cfg.login_queue_wait = w;
    }
    if let Some(b) = opts.backoff_base {
        cfg.backoff_base = b;
    }
    if let Some(w) = opts.audit_refusal_window {
        cfg.audit_refusal_window = w;
    }
    if opts.bootstrap_file {
        let f = tmp.path().join("admin-password");
        std::fs::write(&f, PASSWORD).unwrap();
        cfg.admin_password_file = Some(f);
    }
    if let Some(l) = opts.address_limit {
        cfg.address_limit = l;
    }
    if let Some(i) = opts.session_idle {
        cfg.session_idle = i;
    }
    if opts.fake_temporal {
        cfg.temporal = Some(TemporalTarget {
            address: fake_temporal(&certs).await,
            server_name: "temporal".into(),
            namespace: "default".into(),
        });
    }
    let admin_state = Admin::new(cfg, pool.clone(), Some((secrets, "default".into()))).unwrap();
    assert!(
        admin::auth::ensure_admin(&pool, "admin", PASSWORD)
            .await
            .unwrap()
    );
    // A second call never overwrites the existing hash.
    assert!(
        !admin::auth::ensure_admin(&pool, "admin", "another long password")
            .await
            .unwrap()
    );

    let key = Arc::new(
        KeyFile::open(
            certs.join("temporal-jwt-private.key"),
            Duration::from_millis(50),
        )
        .unwrap(),
    );
    let issuer = TokenIssuer::new(
        store.clone(),
        key,
        IssuerSettings {
            issuer: "bulwark".into(),
            ttl: time::Duration::minutes(15),
            per_client_per_second: 100.0,
            per_client_burst: 100,
            per_address_per_second: 100.0,
            per_address_burst: 100,
        },
    );
    let cert = Reloading::new(PemFiles::new(
        certs.join("control-server.crt"),
        certs.join("control-server.key"),
    ))
    .unwrap();
    // Two listeners, as bulwark-control runs them: the public one (token endpoint, JWKS)
    // and the admin page's own. `url` is the admin listener's.
    let tls = Arc::new(server_config(cert, None).unwrap());
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("https://localhost:{}", public.local_addr().unwrap().port());
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        issuer: Arc::new(issuer),
        certs_dir: certs.clone(),
        base_url: public_url.clone(),
        metrics: metrics.clone(),
    };
    let router = admin::router(admin_state.clone())
        .route("/healthz", axum::routing::get(|| async { "ok\n" }));
    for (listener, router, name) in [(public, app(state), "public"), (listener, router, "admin")] {
        let tls = tls.clone();
        let stats = Arc::new(bulwark_serve::Stats::new(name));
        metrics.add_listener(stats.clone());
        tokio::spawn(async move {
            bulwark_serve::serve(
                listener,
                tls,
                router,
                bulwark_serve::Limits::default(),
                stats,
                std::future::pending(),
            )
            .await
            .unwrap();
        });
    }
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.crt")).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca.clone())
        .tls_built_in_root_certs(false)
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Some(Harness {
        ca,
        url,
        public_url,
        http,
        pool,
        certs,
        deployment,
        store,
        admin: admin_state,
        _tmp: tmp,
        _db: db,
    })
}

/// A browser-like user agent: a cookie jar and the last page's CSRF token.
struct Agent<'a> {
    h: &'a Harness,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: header::HeaderMap,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("page has a CSRF field") + marker.len();
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_owned()
    }
    fn location(&self) -> String {
        self.headers[header::LOCATION].to_str().unwrap().to_owned()
    }
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

impl<'a> Agent<'a> {
    fn new(h: &'a Harness) -> Self {
        Agent {
            h,
            http: h.http.clone(),
            cookies: HashMap::new(),
        }
    }

    /// An agent whose connections come from `source` (another loopback address).
    fn from_address(h: &'a Harness, source: [u8; 4]) -> Self {
        let port = h.url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(h.ca.clone())
            .tls_built_in_root_certs(false)
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from(source))
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
            .build()
            .unwrap();
        Agent {
            h,
            http,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn absorb(&mut self, res: reqwest::Response) -> Page {
        let status = res.status();
        let headers = res.headers().clone();
        for c in headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let body = res.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.h.url))
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.absorb(res).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.h.url))
            .header(header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.absorb(res).await
    }

    async fn login_with(&mut self, user: &str, password: &str) -> Page {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/admin/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
        .await
    }

    async fn login(&mut self) -> String {
        let res = self.login_with("admin", PASSWORD).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert_eq!(res.location(), "/admin/");
        let page = self.get("/admin/").await;
        assert_eq!(page.status, StatusCode::OK);
        page.csrf()
    }

    /// Post an action form and follow its job to the end; returns the job page.
    async fn action(&mut self, path: &str, csrf: &str, extra: &[(&str, &str)]) -> Page {
        let mut form = vec![("csrf", csrf), ("confirm", "yes")];
        form.extend_from_slice(extra);
        let res = self.post(path, &form).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let job = res.location();
        assert!(job.starts_with("/admin/jobs/"));
        for _ in 0..200 {
            let page = self.get(&job).await;
            if !page.body.contains("id=\"job-state\">running<") {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("job {job} did not finish");
    }
}

fn manifest(dir: &Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

async fn audit_rows(pool: &PgPool) -> Vec<(String, String, String, String, String)> {
    sqlx::query("SELECT actor, action, target, outcome, detail FROM admin_audit ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("actor"),
                r.get("action"),
                r.get("target"),
                r.get("outcome"),
                r.get("detail"),
            )
        })
        .collect()
}

async fn audit_dump(pool: &PgPool) -> String {
    sqlx::query("SELECT string_agg(concat_ws('|', actor, action, target, outcome, detail, address), E'\\n') AS t FROM admin_audit")
        .fetch_one(pool)
        .await
        .unwrap()
        .get::<Option<String>, _>("t")
        .unwrap_or_default()
}

// ---- tests ------------------------------------------------------------------------------

#[tokio::test]
async fn login_sets_a_strict_host_cookie_and_new_session_id() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let res = a.get("/admin").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/");
    let res = a.get("/admin/").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/login");

    // A planted session id (fixation attempt) is not adopted.
    a.cookies
        .insert("__Host-bulwark_session".into(), "attacker-chosen-id".into());
    let res = a.login_with("admin", PASSWORD).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let cookie = res
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-bulwark_session="))
        .unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain="));
    let id = a.cookies["__Host-bulwark_session"].clone();
    assert_ne!(id, "attacker-chosen-id");
    assert!(id.len() >= 43, "256-bit id");
    // Only the hash is stored.
    let stored: Vec<u8> = sqlx::query("SELECT id_hash FROM admin_sessions")
        .fetch_one(&h.pool)
        .await
        .unwrap()
        .get("id_hash");
    assert_ne!(stored, id.as_bytes());
    assert_eq!(stored.len(), 32);

    let page = a.get("/admin/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"item-temporal-server\""));
    assert!(page.body.contains("id=\"client-worker\""));
    assert!(page.body.contains("id=\"cred-reporting-db\""));
    let rows = audit_rows(&h.pool).await;
    assert!(
        rows.iter()
            .any(|r| r.0 == "admin" && r.1 == "login" && r.3 == "success")
    );
}

#[tokio::test]
async fn admin_pages_send_security_headers() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let login = a.get("/admin/login").await;
    a.login().await;
    let dash = a.get("/admin/").await;
    let audit = a.get("/admin/audit").await;
    for page in [&login, &dash, &audit] {
        let hd = &page.headers;
        let csp = hd[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for d in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(d), "CSP {csp} lacks {d}");
        }
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(hd[header::X_FRAME_OPTIONS], "DENY");
        assert!(
            hd[header::STRICT_TRANSPORT_SECURITY]
                .to_str()
                .unwrap()
                .starts_with("max-age=")
        );
        assert_eq!(hd[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(hd[header::CACHE_CONTROL], "no-store");
        assert!(!page.body.contains("<script>"), "no inline scripts");
        assert!(!page.body.contains(" style="), "no inline styles");
    }
}

#[tokio::test]
async fn wrong_passwords_back_off_that_address_only_and_never_lock_the_account() {
    let Some(h) = start(Options {
        backoff_after: Some(3),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let mut attacker = Agent::from_address(&h, [127, 0, 0, 2]);
    for _ in 0..3 {
        let res = attacker.login_with("admin", "wrong password!!").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.body.contains("id=\"login-error\""));
        assert!(!attacker.cookies.contains_key("__Host-bulwark_session"));
    }
    // That pair now backs off: even the right password waits, told when to retry.
    let res = attacker.login_with("admin", PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers.contains_key(header::RETRY_AFTER));
    assert!(!attacker.cookies.contains_key("__Host-bulwark_session"));
    // Nothing is locked for everyone: the admin from another address logs in at once.
    let mut admin = Agent::from_address(&h, [127, 0, 0, 3]);
    admin.login().await;
    let locked: bool = sqlx::query("SELECT locked_until IS NOT NULL AS l FROM admin_users")
        .fetch_one(&h.pool)
        .await
        .unwrap()
        .get("l");
    assert!(!locked);
    // Unknown users get the same answer; their typed names are never kept raw.
    let typed = "nobody-typed-this-name";
    let mut other = Agent::from_address(&h, [127, 0, 0, 4]);
    let res = other.login_with(typed, PASSWORD).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(!audit_dump(&h.pool).await.contains(typed));
    assert!(!logged_text().contains(typed));
    // The password never reaches the audit log or the logs.
    assert!(!audit_dump(&h.pool).await.contains(PASSWORD));
    assert!(!logged_text().contains(PASSWORD));
    assert!(!logged_text().contains("wrong password!!"));
}

#[tokio::test]
async fn refused_logins_add_only_a_handful_of_audit_rows() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let before = audit_rows(&h.pool).await.len();
    let mut total = 0;
    for source in [[127, 0, 0, 5], [127, 0, 0, 6]] {
        let mut a = Agent::from_address(&h, source);
        let mut csrf = a.get("/admin/login").await.csrf();
        for i in 0..100 {
            let user = format!("user{i}");
            let res = a
                .post(
                    "/admin/login",
                    &[
                        ("csrf", &csrf),
                        ("username", &user),
                        ("password", "wrong password!!"),
                    ],
                )
                .await;
            assert!(
                [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&res.status),
                "{}",
                res.status
            );
            csrf = res.csrf();
            total += 1;
        }
    }
    assert_eq!(total, 200);
    let rows = audit_rows(&h.pool).await;
    let added = rows.len() - before;
    assert!(added <= 4, "{added} rows for 200 refused logins: {rows:?}");
    assert!(rows.iter().all(|r| !r.0.starts_with("user")), "{rows:?}");
}

#[tokio::test]
async fn closed_refusal_windows_are_written_as_one_count_and_unlocks_are_noticed() {
    let Some(h) = start(Options {
        audit_refusal_window: Some(Duration::from_secs(1)),
        backoff_after: Some(2),
        // Far longer than the test: only the unlock can end it.
        backoff_base: Some(Duration::from_secs(600)),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    admin::auth::spawn_refusal_flush(h.admin.clone());
    let mut a = Agent::from_address(&h, [127, 0, 0, 9]);
    for _ in 0..2 {
        let res = a.login_with("admin", "wrong password!!").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let res = a.login_with("admin", PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    // `bulwark-init admin unlock` from another process: only the database changes.
    sqlx::query("UPDATE admin_users SET unlocked_at = now() WHERE username = 'admin'")
        .execute(&h.pool)
        .await
        .unwrap();
    let unlocked_within = admin::auth::UPKEEP_INTERVAL + Duration::from_secs(3);
    let deadline = tokio::time::Instant::now() + unlocked_within;
    loop {
        let counted: Vec<String> = sqlx::query_scalar(
            "SELECT detail FROM admin_audit WHERE address = '127.0.0.9' AND detail LIKE '% more refused logins%'",
        )
        .fetch_all(&h.pool)
        .await
        .unwrap();
        if !counted.is_empty() {
            assert_eq!(counted.len(), 1, "{counted:?}");
            assert!(
                counted[0].starts_with("2 more refused logins"),
                "{counted:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed window was not written"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The unlock is applied in the same pass (right after the count): the right password
    // from the backed-off address works, 10 minutes before the backoff would have ended.
    // (A refused try is not counted, so retrying until the pass has run adds no failure.)
    loop {
        let res = a.login_with("admin", PASSWORD).await;
        if res.status == StatusCode::SEE_OTHER {
            break;
        }
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unlock was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn logins_beyond_the_hash_permits_get_429_with_retry_after() {
    let Some(h) = start(Options {
        login_concurrency: Some(1),
        login_queue_wait: Some(Duration::from_millis(1)),
        address_limit: Some(1000),
        backoff_after: Some(1000),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.get("/admin/login").await.csrf();
    let cookie = a.cookie_header();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let http = h.http.clone();
        let url = format!("{}/admin/login", h.url);
        let (csrf, cookie) = (csrf.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .header(header::COOKIE, cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", &format!("u{i}")),
                    ("password", "wrong password!!"),
                ])
                .send()
                .await
                .unwrap();
            let retry = res.headers().get(header::RETRY_AFTER).cloned();
            (res.status(), retry, res.text().await.unwrap())
        }));
    }
    let mut busy = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            busy += 1;
            assert!(retry.is_some());
            assert!(body.contains("busy"), "{body}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    assert!(
        busy > 0,
        "16 concurrent logins with one permit and no wait all ran"
    );
    // The real admin is not stuck behind them once they are done.
    a.login().await;
}

#[tokio::test]
async fn password_change_ends_other_sessions_and_deletes_the_bootstrap_file() {
    let Some(h) = start(Options {
        bootstrap_file: true,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let bootstrap = h._tmp.path().join("admin-password");
    assert!(bootstrap.exists());
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let mut b = Agent::from_address(&h, [127, 0, 0, 7]);
    b.login().await;
    let page = a.get("/admin/password").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"password-form\""));
    const NEW: &str = "a brand new admin password";
    // Without CSRF, with a wrong current password, too short, mismatched: refused.
    let res = a
        .post(
            "/admin/password",
            &[("current", PASSWORD), ("new", NEW), ("repeat", NEW)],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = a
        .post(
            "/admin/password",
            &[
                ("csrf", &csrf),
                ("current", "not it at all"),
                ("new", NEW),
                ("repeat", NEW),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    for (new, repeat) in [("short", "short"), (NEW, "something else entirely")] {
        let res = a
            .post(
                "/admin/password",
                &[
                    ("csrf", &csrf),
                    ("current", PASSWORD),
                    ("new", new),
                    ("repeat", repeat),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
    }
    assert!(bootstrap.exists());
    let res = a
        .post(
            "/admin/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", NEW),
                ("repeat", NEW),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(res.body.contains("id=\"password-done\""));
    assert!(!bootstrap.exists(), "the bootstrap file is deleted");
    // This session lives on; the other one is gone.
    assert_eq!(a.get("/admin/").await.status, StatusCode::OK);
    let res = b.get("/admin/").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/login");
    // The old password no longer works, the new one does.
    let mut c = Agent::from_address(&h, [127, 0, 0, 8]);
    assert_eq!(
        c.login_with("admin", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.login_with("admin", NEW).await.status,
        StatusCode::SEE_OTHER
    );
    let rows = audit_rows(&h.pool).await;
    assert!(rows.iter().any(|r| r.1 == "change-password"
        && r.3 == "success"
        && r.4.contains("1 other sessions ended")));
    assert!(!audit_dump(&h.pool).await.contains(NEW));
    assert!(!logged_text().contains(NEW));
}

#[tokio::test]
async fn the_application_role_cannot_disable_truncate_or_drop_the_audit_log() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&h.pool)
        .await
        .unwrap();
    // The app's login role owns the database and (as after its migrations) every table.
    let role = format!("bulwark_app_{}", uuid::Uuid::new_v4().simple());
    let pw = uuid::Uuid::new_v4().simple().to_string();
    for sql in [
        format!("CREATE ROLE {role} LOGIN PASSWORD '{pw}'"),
        format!("ALTER DATABASE {db} OWNER TO {role}"),
        format!("ALTER SCHEMA public OWNER TO {role}"),
        format!(
            "DO $$ DECLARE r record; BEGIN
               FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
                 EXECUTE format('ALTER TABLE public.%I OWNER TO {role}', r.tablename);
               END LOOP;
               FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
                          JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' LOOP
                 EXECUTE format('ALTER FUNCTION %s OWNER TO {role}', r.f);
               END LOOP;
             END $$"
        ),
    ] {
        sqlx::query(&sql).execute(&h.pool).await.unwrap();
    }
    // The superuser step scripts/up.sh runs after `bulwark-init database` (twice: idempotent).
    let step = include_str!("../../../migrations/superuser/audit-owner.sql");
    for _ in 0..2 {
        sqlx::raw_sql(step).execute(&h.pool).await.unwrap();
    }
    let admin_url = std::env::var("BULWARK_TEST_DATABASE_URL").unwrap();
    let (server, _) = admin_url.rsplit_once('@').unwrap();
    let (scheme, _) = server.split_once("://").unwrap();
    let (_, hostpart) = admin_url.rsplit_once('@').unwrap();
    let (hostport, _) = hostpart.split_once('/').unwrap();
    let app = sqlx::PgPool::connect(&format!("{scheme}://{role}:{pw}@{hostport}/{db}"))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO admin_audit (actor, action, outcome) VALUES ('app', 'probe', 'success')",
    )
    .execute(&app)
    .await
    .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_audit WHERE action = 'probe'")
        .fetch_one(&app)
        .await
        .unwrap();
    assert_eq!(n, 1);
    for sql in [
        "ALTER TABLE admin_audit DISABLE TRIGGER ALL",
        "DELETE FROM admin_audit",
        "UPDATE admin_audit SET outcome = 'failure'",
        "TRUNCATE admin_audit",
        "DROP TABLE admin_audit",
        "DROP TABLE admin_audit CASCADE",
        "ALTER TABLE admin_audit OWNER TO CURRENT_USER",
        "DROP FUNCTION bulwark_audit.admin_audit_append_only() CASCADE",
        "CREATE OR REPLACE FUNCTION bulwark_audit.admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "DROP SCHEMA public CASCADE",
        "ALTER EVENT TRIGGER bulwark_refuse_audit_drop DISABLE",
        "SET session_replication_role = replica",
    ] {
        assert!(
            sqlx::query(sql).execute(&app).await.is_err(),
            "the app role could: {sql}"
        );
    }
    // A decoy of the catalog function in the app's own schema, first in its search path,
    // must not blind the drop guard (the guard pins its search_path).
    {
        let mut c = app.acquire().await.unwrap();
        sqlx::query(
            "CREATE FUNCTION public.pg_event_trigger_dropped_objects()
               RETURNS TABLE(object_type text, object_identity text, schema_name text)
               LANGUAGE sql AS $$ SELECT NULL::text, NULL::text, NULL::text WHERE false $$",
        )
        .execute(&mut *c)
        .await
        .unwrap();
        sqlx::query("SET search_path = public, pg_catalog")
            .execute(&mut *c)
            .await
            .unwrap();
        assert!(
            sqlx::query("DROP TABLE admin_audit")
                .execute(&mut *c)
                .await
                .is_err(),
            "a search-path decoy let the app drop the audit table"
        );
        sqlx::query("DROP FUNCTION public.pg_event_trigger_dropped_objects()")
            .execute(&mut *c)
            .await
            .unwrap();
    }
    // The rest of the schema still works for the app (it owns it).
    sqlx::query("UPDATE admin_users SET updated_at = now()")
        .execute(&app)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_audit WHERE action = 'probe'")
        .fetch_one(&app)
        .await
        .unwrap();
    assert_eq!(n, 1);
    app.close().await;
    // Give the database back so the role can be dropped (test hygiene).
    for sql in [
        format!("REASSIGN OWNED BY {role} TO CURRENT_USER"),
        format!("DROP OWNED BY {role}"),
        format!("DROP ROLE {role}"),
    ] {
        let _ = sqlx::query(&sql).execute(&h.pool).await;
    }
}

#[tokio::test]
async fn failures_per_address_are_rate_limited() {
    let Some(h) = start(Options {
        address_limit: Some(4),
        backoff_after: Some(100),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let mut a = Agent::new(&h);
    for i in 0..4 {
        let res = a.login_with(&format!("user{i}"), "wrong password!!").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let res = a.login_with("admin", PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn csrf_is_required_on_login_and_on_every_action() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    // Login without the token, with a wrong token, and with a token but no nonce cookie.
    a.get("/admin/login").await;
    let res = a
        .post(
            "/admin/login",
            &[("username", "admin"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = a
        .post(
            "/admin/login",
            &[
                ("csrf", "AAAA"),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let page = a.get("/admin/login").await;
    let token = page.csrf();
    let mut stranger = Agent::new(&h);
    let res = stranger
        .post(
            "/admin/login",
            &[
                ("csrf", &token),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    let csrf = a.login().await;
    let before = manifest(&h.certs)
        .get("temporal-server")
        .unwrap()
        .fingerprint
        .clone();
    for path in [
        "/admin/rotate/cert",
        "/admin/rotate/jwt",
        "/admin/rotate/oauth",
        "/admin/rotate/tokens",
        "/admin/logout",
    ] {
        let res = a
            .post(path, &[("target", "temporal-server"), ("confirm", "yes")])
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path} without CSRF");
        let res = a
            .post(
                path,
                &[
                    ("csrf", "not-the-token"),
                    ("target", "temporal-server"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "{path} with a wrong CSRF token"
        );
    }
    assert_eq!(
        manifest(&h.certs)
            .get("temporal-server")
            .unwrap()
            .fingerprint,
        before
    );
    // Still logged in (logout was refused), and a missing confirmation is refused too.
    let res = a
        .post(
            "/admin/rotate/cert",
            &[("csrf", &csrf), ("target", "temporal-server")],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logout_and_idle_expiry_end_the_session() {
    let Some(h) = start(Options {
        session_idle: Some(Duration::from_secs(2)),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let stolen = a.cookies["__Host-bulwark_session"].clone();
    let res = a.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(!a.cookies.contains_key("__Host-bulwark_session"));
    // The old id is dead server-side too.
    a.cookies.insert("__Host-bulwark_session".into(), stolen);
    let res = a.get("/admin/").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/login");

    let mut b = Agent::new(&h);
    b.login().await;
    assert_eq!(b.get("/admin/").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let res = b.get("/admin/").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "idle session expired");
    let rows = audit_rows(&h.pool).await;
    assert!(rows.iter().any(|r| r.1 == "logout"));
}

#[tokio::test]
async fn rotating_the_temporal_server_cert_verifies_a_fresh_handshake() {
    let Some(h) = start(Options {
        fake_temporal: true,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let confirm = a
        .get("/admin/confirm?action=cert&target=temporal-server")
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("action=\"/admin/rotate/cert\""));
    let before = manifest(&h.certs).get("temporal-server").unwrap().clone();
    let job = a
        .action(
            "/admin/rotate/cert",
            &csrf,
            &[("target", "temporal-server")],
        )
        .await;
    assert!(
        job.body.contains("id=\"job-state\">succeeded<"),
        "{}",
        job.body
    );
    let after = manifest(&h.certs).get("temporal-server").unwrap().clone();
    assert_ne!(before.fingerprint, after.fingerprint);
    assert_eq!(after.generation, before.generation + 1);
    assert!(job.body.contains("a fresh handshake"), "{}", job.body);
    assert!(job.body.contains(&after.fingerprint));
    let dash = a.get("/admin/").await;
    assert!(dash.body.contains(&after.fingerprint));
    let rows = audit_rows(&h.pool).await;
    assert!(rows.iter().any(|r| r.1 == "rotate-cert"
        && r.2 == "temporal-server"
        && r.3 == "success"
        && r.4.contains(&after.fingerprint)));

    // A client identity certificate.
    let before = manifest(&h.certs).get("client-worker").unwrap().clone();
    let job = a
        .action("/admin/rotate/cert", &csrf, &[("target", "client-worker")])
        .await;
    assert!(
        job.body.contains("id=\"job-state\">succeeded<"),
        "{}",
        job.body
    );
    let after = manifest(&h.certs).get("client-worker").unwrap().clone();
    assert_ne!(before.fingerprint, after.fingerprint);
    // Unknown targets are refused.
    let res = a
        .post(
            "/admin/rotate/cert",
            &[
                ("csrf", &csrf),
                ("confirm", "yes"),
                ("target", "../etc/passwd"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_failed_rotation_keeps_the_old_material_shows_why_and_can_be_retried() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let cert_before = std::fs::read(h.certs.join("temporal-server.crt")).unwrap();
    let key_path = h.certs.join("server-ca.key");
    let good_key = std::fs::read(&key_path).unwrap();
    std::fs::write(
        &key_path,
        b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let job = a
        .action(
            "/admin/rotate/cert",
            &csrf,
            &[("target", "temporal-server")],
        )
        .await;
    assert!(
        job.body.contains("id=\"job-state\">failed<"),
        "{}",
        job.body
    );
    assert!(job.body.contains("id=\"job-error\""));
    assert!(
        job.body.contains("server-ca.key"),
        "the reason names the file: {}",
        job.body
    );
    assert_eq!(
        std::fs::read(h.certs.join("temporal-server.crt")).unwrap(),
        cert_before
    );
    let rows = audit_rows(&h.pool).await;
    assert!(
        rows.iter()
            .any(|r| r.1 == "rotate-cert" && r.3 == "failure")
    );

    std::fs::write(&key_path, good_key).unwrap();
    let job = a
        .action(
            "/admin/rotate/cert",
            &csrf,
            &[("target", "temporal-server")],
        )
        .await;
    assert!(
        job.body.contains("id=\"job-state\">succeeded<"),
        "{}",
        job.body
    );
    assert_ne!(
        std::fs::read(h.certs.join("temporal-server.crt")).unwrap(),
        cert_before
    );
}

#[tokio::test]
async fn oauth_secret_is_shown_once_written_to_the_store_and_never_logged() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let old = {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&h.deployment).unwrap()).unwrap();
        doc["worker_client_secret"].as_str().unwrap().to_owned()
    };
    let res = a
        .post(
            "/admin/rotate/oauth",
            &[
                ("csrf", &csrf),
                ("confirm", "yes"),
                ("target", "worker"),
                ("grace_hours", "2"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.headers[header::CACHE_CONTROL], "no-store");
    let marker = "id=\"one-time-secret\">";
    let start = res.body.find(marker).unwrap() + marker.len();
    let secret = res.body[start..start + res.body[start..].find('<').unwrap()].to_owned();
    assert!(secret.len() >= 32);
    assert_ne!(secret, old);
    // Version 2, old secret still accepted during the grace window.
    let rec = h.store.lookup("worker").await.unwrap().unwrap();
    assert_eq!(rec.secrets.len(), 2);
    let list = h.store.list().await.unwrap();
    assert_eq!(list[0].current_version, 2);
    assert!(list[0].grace_until.is_some());
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&h.deployment).unwrap()).unwrap();
    assert_eq!(doc["worker_client_secret"], secret.as_str());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&h.deployment)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Never shown again, never in the audit log, the job table or the logs.
    let dash = a.get("/admin/").await;
    assert!(!dash.body.contains(&secret));
    assert!(dash.body.contains("id=\"client-worker\""));
    let audit = a.get("/admin/audit").await;
    assert!(!audit.body.contains(&secret));
    assert!(audit.body.contains("rotate-oauth-secret"));
    assert!(!audit_dump(&h.pool).await.contains(&secret));
    assert!(!audit_dump(&h.pool).await.contains(&old));
    let logs = logged_text();
    assert!(!logs.contains(&secret), "the new secret was logged");
    assert!(!logs.contains(&old), "the old secret was logged");
    let rows = audit_rows(&h.pool).await;
    assert!(
        rows.iter()
            .any(|r| r.1 == "rotate-oauth-secret" && r.2 == "worker" && r.4.contains("version 2"))
    );
}

#[tokio::test]
async fn stored_credential_rotation_writes_a_new_version() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let res = a
        .post(
            "/admin/rotate/credential",
            &[
                ("csrf", &csrf),
                ("confirm", "yes"),
                ("target", "reporting-db"),
                ("field", "password"),
                ("value", ""),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(res.body.contains("version 2"));
    let marker = "id=\"one-time-secret\">";
    let start = res.body.find(marker).unwrap() + marker.len();
    let value = res.body[start..start + res.body[start..].find('<').unwrap()].to_owned();
    let versions: i64 = sqlx::query(
        "SELECT count(*) AS n FROM bulwark_secret_versions WHERE name = 'reporting-db'",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap()
    .get("n");
    assert_eq!(versions, 2);
    // Ciphertext only, and nothing secret in the audit log or logs.
    let dump = audit_dump(&h.pool).await;
    assert!(!dump.contains(&value));
    assert!(!dump.contains("planted-old-db-password-0001"));
    assert!(!logged_text().contains(&value));
    assert!(!logged_text().contains("planted-old-db-password-0001"));
    // An unknown field is refused and audited.
    let res = a
        .post(
            "/admin/rotate/credential",
            &[
                ("csrf", &csrf),
                ("confirm", "yes"),
                ("target", "reporting-db"),
                ("field", "nope"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn static_tokens_are_reissued() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let before = manifest(&h.certs).get("worker-token").unwrap().clone();
    let job = a.action("/admin/rotate/tokens", &csrf, &[]).await;
    assert!(
        job.body.contains("id=\"job-state\">succeeded<"),
        "{}",
        job.body
    );
    let after = manifest(&h.certs).get("worker-token").unwrap().clone();
    assert_ne!(before.fingerprint, after.fingerprint);
    assert_eq!(after.generation, before.generation + 1);
    let rows = audit_rows(&h.pool).await;
    assert!(
        rows.iter()
            .any(|r| r.1 == "reissue-tokens" && r.3 == "success")
    );
}

fn private_kid(dir: &Path) -> String {
    bulwark_pki::jwt::SigningKey::from_pem(
        &std::fs::read_to_string(dir.join("temporal-jwt-private.key")).unwrap(),
    )
    .unwrap()
    .kid()
    .to_owned()
}

fn jwks_kids(dir: &Path) -> Vec<String> {
    let jwks: bulwark_pki::jwt::Jwks =
        serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
    jwks.keys.into_iter().map(|k| k.kid).collect()
}

#[tokio::test]
async fn jwt_key_is_published_before_it_signs_and_the_old_key_is_retired_later() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let old_kid = private_kid(&h.certs);
    assert_eq!(jwks_kids(&h.certs), vec![old_kid.clone()]);
    let res = a
        .post("/admin/rotate/jwt", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    // During propagation: two keys published, the old one still signs.
    let mut saw_staged = false;
    for _ in 0..50 {
        let kids = jwks_kids(&h.certs);
        if kids.len() == 2 && private_kid(&h.certs) == old_kid {
            saw_staged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_staged, "the new key was not published ahead of signing");
    let job_url = res.location();
    let mut page = a.get(&job_url).await;
    for _ in 0..100 {
        if !page.body.contains(">running<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = a.get(&job_url).await;
    }
    assert!(
        page.body.contains("id=\"job-state\">succeeded<"),
        "{}",
        page.body
    );
    let new_kid = private_kid(&h.certs);
    assert_ne!(new_kid, old_kid);
    let kids = jwks_kids(&h.certs);
    assert_eq!(kids[0], new_kid);
    assert!(kids.contains(&old_kid), "old key stays published");
    let m = manifest(&h.certs);
    assert_eq!(
        m.get("jwt-key").unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    let retired = m
        .retired_keys
        .iter()
        .find(|k| k.jwk.kid == old_kid)
        .unwrap();
    let horizon = retired.retire_after - time::OffsetDateTime::now_utc();
    assert!(
        horizon > time::Duration::hours(23),
        "kept for the longest token TTL"
    );
    assert!(!h.certs.join(bulwark_pki::layout::JWT_NEXT).exists());
    // Static tokens are signed by the new key.
    let token = std::fs::read_to_string(h.certs.join("worker-token.jwt")).unwrap();
    assert_eq!(
        admin::probe::token_kid(&token).as_deref(),
        Some(new_kid.as_str())
    );
    // And a later generate keeps the retired key published until its horizon.
    generate(
        &h.certs,
        &Settings::default(),
        Mode::Missing,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert!(jwks_kids(&h.certs).contains(&old_kid));
    generate(
        &h.certs,
        &Settings::default(),
        Mode::Missing,
        time::OffsetDateTime::now_utc() + time::Duration::hours(25),
    )
    .unwrap();
    assert!(
        !jwks_kids(&h.certs).contains(&old_kid),
        "retired after the TTL"
    );
    let rows = audit_rows(&h.pool).await;
    assert!(
        rows.iter()
            .any(|r| r.1 == "rotate-jwt-key" && r.3 == "success" && r.4.contains(&new_kid))
    );
}

#[tokio::test]
async fn ca_rotation_overlaps_bundles_until_the_operator_ends_it() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let before = manifest(&h.certs)
        .get("client-ca")
        .unwrap()
        .fingerprint
        .clone();
    let job = a
        .action("/admin/rotate/ca", &csrf, &[("target", "client-ca")])
        .await;
    assert!(
        job.body.contains("id=\"job-state\">waiting<"),
        "{}",
        job.body
    );
    let bundle = std::fs::read_to_string(h.certs.join("client-trust.pem")).unwrap();
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "old + new trusted"
    );
    let m = manifest(&h.certs);
    assert_ne!(m.get("client-ca").unwrap().fingerprint, before);
    let job_id = job
        .body
        .split("name=\"job\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let res = a
        .post(
            "/admin/rotate/ca/finish",
            &[("csrf", &csrf), ("confirm", "yes"), ("job", &job_id)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let page = a.get(&res.location()).await;
    assert!(
        page.body.contains("id=\"job-state\">succeeded<"),
        "{}",
        page.body
    );
    let bundle = std::fs::read_to_string(h.certs.join("client-trust.pem")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1, "new only");
    let errors: Vec<String> =
        bulwark_pki::verify::verify_dir(&h.certs, time::OffsetDateTime::now_utc(), 2.0 / 3.0)
            .iter()
            .filter(|p| p.severity == bulwark_pki::verify::Severity::Error)
            .map(|p| p.to_string())
            .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The root CA is not rotated from the page.
    let res = a
        .post(
            "/admin/rotate/ca",
            &[("csrf", &csrf), ("confirm", "yes"), ("target", "ca")],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

/// A control killed mid overlap leaves its job `running`; the next start marks it
/// interrupted. Resume continues that job: after the new CA was issued it only waits for the
/// operator again (no third CA); before, it begins the overlap. A second Resume is refused.
#[tokio::test]
async fn an_interrupted_ca_overlap_resumes_on_its_own_job() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let fp = |h: &Harness| {
        manifest(&h.certs)
            .get("client-ca")
            .unwrap()
            .fingerprint
            .clone()
    };
    let job_id = |body: &str| {
        body.split("name=\"job\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let before = fp(&h);
    let job = a
        .action("/admin/rotate/ca", &csrf, &[("target", "client-ca")])
        .await;
    let id = job_id(&job.body);
    let issued = fp(&h);
    assert_ne!(issued, before);
    // What a kill -9 during the propagation wait leaves, once the restart has marked it.
    sqlx::query("UPDATE admin_jobs SET state = 'running' WHERE id = $1")
        .bind(&id)
        .execute(&h.pool)
        .await
        .unwrap();
    admin::jobs::mark_interrupted(&h.pool).await.unwrap();
    let page = a.get(&format!("/admin/jobs/{id}")).await;
    assert!(
        page.body.contains("id=\"job-state\">interrupted<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"resume-ca\""),
        "no Resume form: {}",
        page.body
    );
    let resume = [
        ("csrf", csrf.as_str()),
        ("confirm", "yes"),
        ("job", id.as_str()),
    ];
    let res = a.post("/admin/rotate/ca/resume", &resume).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let mut page = a.get(&res.location()).await;
    for _ in 0..100 {
        if !page.body.contains("id=\"job-state\">running<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = a.get(&format!("/admin/jobs/{id}")).await;
    }
    assert!(
        page.body.contains("id=\"job-state\">waiting<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("had begun the overlap"), "{}", page.body);
    assert_eq!(fp(&h), issued, "the resume issued another CA");
    let bundle = std::fs::read_to_string(h.certs.join("client-trust.pem")).unwrap();
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "old + new still trusted"
    );
    let again = a.post("/admin/rotate/ca/resume", &resume).await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "a waiting job was resumed"
    );
    let res = a
        .post(
            "/admin/rotate/ca/finish",
            &[("csrf", &csrf), ("confirm", "yes"), ("job", &id)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);

    // Interrupted before the overlap began (its first line names the CA still in service):
    // Resume begins it.
    let current = fp(&h);
    let early = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO admin_jobs (id, kind, target, state, stage, started_by, log) \
         VALUES ($1, 'rotate-ca', 'client-ca', 'interrupted', 'issue', 'admin', ARRAY[$2])",
    )
    .bind(&early)
    .bind(format!(
        "2026-12-03 00:00:00  current CA fingerprint {current}"
    ))
    .execute(&h.pool)
    .await
    .unwrap();
    let resume = [
        ("csrf", csrf.as_str()),
        ("confirm", "yes"),
        ("job", early.as_str()),
    ];
    let res = a.post("/admin/rotate/ca/resume", &resume).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let mut page = a.get(&format!("/admin/jobs/{early}")).await;
    for _ in 0..100 {
        if !page.body.contains("id=\"job-state\">running<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = a.get(&format!("/admin/jobs/{early}")).await;
    }
    assert!(
        page.body.contains("id=\"job-state\">waiting<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("had not begun the overlap"),
        "{}",
        page.body
    );
    assert_ne!(fp(&h), current, "the resume did not begin the overlap");
}

#[tokio::test]
async fn the_audit_log_is_append_only() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    a.login().await;
    assert!(
        sqlx::query("UPDATE admin_audit SET outcome = 'failure'")
            .execute(&h.pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("DELETE FROM admin_audit")
            .execute(&h.pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("TRUNCATE admin_audit")
            .execute(&h.pool)
            .await
            .is_err()
    );
    assert!(!audit_rows(&h.pool).await.is_empty());
}

#[tokio::test]
async fn automatic_renewal_renews_due_items_and_audits_them() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    // A control whose renewal point is almost at issuance: everything is due.
    let mut settings = Settings::default();
    settings.set_renew_fraction(1e-9).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut cfg = AdminConfig::new(h.certs.clone(), settings);
    cfg.jwks_propagation = Duration::from_millis(100);
    cfg.renew_interval = None;
    let state = Admin::new(cfg, h.pool.clone(), None).unwrap();
    let before = manifest(&h.certs);
    let old_kid = private_kid(&h.certs);
    let renewed = admin::renew::run_once(&state).await;
    assert!(
        renewed.contains(&"temporal-server".to_owned()),
        "{renewed:?}"
    );
    let after = manifest(&h.certs);
    assert_ne!(
        before.get("temporal-server").unwrap().fingerprint,
        after.get("temporal-server").unwrap().fingerprint
    );
    // The JWT key went through the staged rotation (old key still published).
    assert_ne!(private_kid(&h.certs), old_kid);
    assert!(jwks_kids(&h.certs).contains(&old_kid));
    let rows = audit_rows(&h.pool).await;
    assert!(
        rows.iter()
            .any(|r| r.0 == "auto-renew" && r.1 == "renew" && r.2 == "temporal-server")
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "auto-renew" && r.1 == "rotate-jwt-key" && r.3 == "success")
    );
}

// ---- emergency revoke of the JWT key ----------------------------------------------------

fn read_jwks(dir: &Path) -> bulwark_pki::jwt::Jwks {
    serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap()
}

fn static_token_opts() -> bulwark_pki::jwt::VerifyOptions<'static> {
    bulwark_pki::jwt::VerifyOptions::new(Settings::default().token_ttl).audience("temporal")
}

#[tokio::test]
async fn revoking_the_jwt_key_unpublishes_it_at_once_and_reissues_the_static_tokens() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    // The page offers the action behind a confirmation that says what it does.
    let dash = a.get("/admin/").await;
    assert!(dash.body.contains("id=\"revoke-jwt\""), "{}", dash.body);
    let confirm = a
        .get("/admin/confirm?action=revoke-jwt&target=jwt-key")
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("action=\"/admin/revoke/jwt\""));
    assert!(confirm.body.contains("every retired key"));
    assert!(confirm.body.contains("Revoke now"));

    // A retired key from an earlier rotation is still published: the revoke drops it too.
    generate(
        &h.certs,
        &Settings::default(),
        Mode::Rotate(&["jwt-key".into()]),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let old_kid = private_kid(&h.certs);
    assert_eq!(jwks_kids(&h.certs).len(), 2);
    let old_key = bulwark_pki::jwt::SigningKey::from_pem(
        &std::fs::read_to_string(h.certs.join("temporal-jwt-private.key")).unwrap(),
    )
    .unwrap();
    let old_token = old_key
        .sign(&bulwark_pki::jwt::Claims::new(
            "someone",
            "bulwark",
            "temporal",
            "temporal-client",
            vec!["default:write".into()],
            time::OffsetDateTime::now_utc(),
            time::Duration::minutes(10),
        ))
        .unwrap();
    let old_static = std::fs::read_to_string(h.certs.join("system-token.jwt")).unwrap();
    // Valid before the revoke.
    bulwark_pki::jwt::verify(
        &old_token,
        &read_jwks(&h.certs),
        time::OffsetDateTime::now_utc(),
        &static_token_opts(),
    )
    .unwrap();

    let job = a.action("/admin/revoke/jwt", &csrf, &[]).await;
    assert!(
        job.body.contains("id=\"job-state\">succeeded<"),
        "{}",
        job.body
    );

    let new_kid = private_kid(&h.certs);
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        jwks_kids(&h.certs),
        vec![new_kid.clone()],
        "only the new key is published"
    );
    let m = manifest(&h.certs);
    assert!(m.retired_keys.is_empty());
    assert_eq!(
        m.get("jwt-key").unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    let jwks = read_jwks(&h.certs);
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        bulwark_pki::jwt::verify(&old_token, &jwks, now, &static_token_opts()),
        Err(bulwark_pki::TokenError::UnknownKey)
    );
    assert!(bulwark_pki::jwt::verify(old_static.trim(), &jwks, now, &static_token_opts()).is_err());
    for file in ["system-token.jwt", "worker-token.jwt", "client-token.jwt"] {
        let t = std::fs::read_to_string(h.certs.join(file)).unwrap();
        bulwark_pki::jwt::verify(t.trim(), &jwks, now, &static_token_opts())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            admin::probe::token_kid(&t).as_deref(),
            Some(new_kid.as_str())
        );
    }
    let rows = audit_rows(&h.pool).await;
    assert!(
        rows.iter().any(|r| r.0 == "admin"
            && r.1 == "revoke-jwt-key"
            && r.3 == "success"
            && r.4.contains(&old_kid)
            && r.4.contains(&new_kid)),
        "{rows:?}"
    );
}

#[tokio::test]
async fn revoking_needs_csrf_and_confirmation() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let before = private_kid(&h.certs);
    let res = a.post("/admin/revoke/jwt", &[("confirm", "yes")]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = a
        .post(
            "/admin/revoke/jwt",
            &[("csrf", "not-the-token"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = a.post("/admin/revoke/jwt", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(private_kid(&h.certs), before);
    assert_eq!(jwks_kids(&h.certs), vec![before]);
}

#[tokio::test]
async fn a_rotation_waiting_for_propagation_does_not_republish_a_revoked_key() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    let mut a = Agent::new(&h);
    let csrf = a.login().await;
    let first = private_kid(&h.certs);
    // Start a normal rotation; while it waits for propagation, revoke.
    let res = a
        .post("/admin/rotate/jwt", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let rotation = res.location();
    for _ in 0..50 {
        if jwks_kids(&h.certs).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pending = jwks_kids(&h.certs)[1].clone();
    let job = a.action("/admin/revoke/jwt", &csrf, &[]).await;
    assert!(
        job.body.contains("id=\"job-state\">succeeded<"),
        "{}",
        job.body
    );
    let revoked_to = private_kid(&h.certs);
    let mut page = a.get(&rotation).await;
    for _ in 0..100 {
        if !page.body.contains(">running<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = a.get(&rotation).await;
    }
    assert!(
        page.body.contains("id=\"job-state\">failed<"),
        "{}",
        page.body
    );
    assert_eq!(private_kid(&h.certs), revoked_to);
    let kids = jwks_kids(&h.certs);
    assert_eq!(kids, vec![revoked_to]);
    assert!(!kids.contains(&first) && !kids.contains(&pending));
    assert!(!h.certs.join(bulwark_pki::layout::JWT_NEXT).exists());
}

/// The admin page has a listener of its own: the public one (token endpoint) does not
/// route /admin at all, and the admin one does not route the token endpoint.
#[tokio::test]
async fn the_admin_page_is_only_on_the_admin_listener() {
    let Some(h) = start(Options::default()).await else {
        return;
    };
    for path in [
        "/admin",
        "/admin/",
        "/admin/login",
        "/admin/static/admin.css",
    ] {
        let res = h
            .http
            .get(format!("{}{path}", h.public_url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "public listener answered {path}"
        );
    }
    let res = h
        .http
        .post(format!("{}/admin/login", h.public_url))
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = h
        .http
        .get(format!("{}/admin/login", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = h
        .http
        .get(format!("{}/healthz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status(), res.text().await.unwrap()),
        (StatusCode::OK, "ok\n".into())
    );
    let res = h
        .http
        .post(format!("{}/oauth/token", h.url))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "admin listener routes the token endpoint"
    );
    let res = h
        .http
        .get(format!("{}/healthz", h.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Both listeners' connection counters are in the public /metrics.
    let text = h
        .http
        .get(format!("{}/metrics", h.public_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for listener in ["public", "admin"] {
        let line = format!("bulwark_http_connections_accepted_total{{listener=\"{listener}\"}} ");
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in {text}"))
            .parse()
            .unwrap();
        assert!(n >= 1, "{line}{n}");
    }
    assert!(text.contains(
        "bulwark_http_connections_closed_total{listener=\"admin\",reason=\"header_timeout\"} 0"
    ));
}
