//! The operator's admin web page: login, inventory, rotations, audit log, and the gate's
//! record of Temporal calls.
//!
//! Server-rendered (askama) and usable without JavaScript. Every state-changing request is a
//! POST carrying a CSRF token; every page is sent with a strict CSP and `no-store`.
//! Rotations ([`rotate`]) call `bulwark_pki::rotate` for every change to the certs directory
//! and add what the page needs on top: jobs with visible progress, propagation checks, the
//! audit log.

pub mod action;
pub mod audit;
pub mod auth;
pub mod config;
pub mod gate_audit;
pub mod inventory;
pub mod jobs;
pub mod probe;
pub mod renew;
pub mod rotate;
pub mod throttle;

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use bulwark_pki::rotate::{Clock, SystemClock};
use bulwark_secrets::store::PostgresStore;
use bulwark_serve::headers::{self, Policy};
use bulwark_token_issuer::ClientStore;
use sqlx::PgPool;

/// Where the Temporal frontend is, for propagation checks.
#[derive(Debug, Clone)]
pub struct TemporalTarget {
    /// `host:port` of the frontend.
    pub address: String,
    /// Name the frontend certificate is verified against (SNI).
    pub server_name: String,
    /// Namespace a probe token asks to describe.
    pub namespace: String,
}

/// Everything the admin page is told at start-up.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub certs_dir: PathBuf,
    /// The same settings `bulwark-init generate` was run with. Its `access_token_ttl` is the
    /// token endpoint's (a retired key must outlive the tokens it signed).
    pub pki: bulwark_pki::Settings,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// Failures of one (user, address) pair after which it backs off (1 s, 2 s, 4 s ...).
    pub backoff_after: u32,
    /// The first backoff wait (doubling with each further failure) and the longest one.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Failed logins one address may make per `address_window`.
    pub address_limit: u32,
    pub address_window: Duration,
    /// Argon2 computations at once, and how long a login waits for a turn (then 429).
    pub login_concurrency: usize,
    pub login_queue_wait: Duration,
    /// Entries of each login-throttle LRU (addresses; (user, address) pairs; audit windows).
    pub login_tracked: usize,
    /// Lifetime of a login form's CSRF token.
    pub login_form_ttl: Duration,
    /// Refused logins per address within this window are one audit row with a count.
    pub audit_refusal_window: Duration,
    /// The bootstrapped account and its initial password file (deleted once the password of
    /// that account has been changed).
    pub admin_user: String,
    pub admin_password_file: Option<PathBuf>,
    /// How long Temporal takes to pick up a new JWKS (its refresh interval plus margin).
    pub jwks_propagation: Duration,
    /// How long to wait for a rotated server certificate to show on a fresh handshake.
    pub cert_propagation_timeout: Duration,
    /// How often the propagation check retries.
    pub poll_interval: Duration,
    /// Grace window for a rotated OAuth client secret.
    pub oauth_grace: time::Duration,
    pub temporal: Option<TemporalTarget>,
    /// Automatic renewal check interval; `None` disables it.
    pub renew_interval: Option<Duration>,
    /// The directory of the per-client deployment secret stores
    /// (`secretstores.local.file` documents holding `<client>_client_secret`). When set, a
    /// rotated OAuth secret is also written to its client's file so the service reading it
    /// picks it up within the grace window.
    pub deployment_secrets_dir: Option<PathBuf>,
}

impl AdminConfig {
    /// Defaults suitable for production, for `certs_dir` and `pki`.
    pub fn new(certs_dir: PathBuf, pki: bulwark_pki::Settings) -> Self {
        AdminConfig {
            certs_dir,
            pki,
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            backoff_after: 3,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(15 * 60),
            address_limit: 20,
            address_window: Duration::from_secs(15 * 60),
            login_concurrency: default_login_concurrency(),
            login_queue_wait: Duration::from_millis(1500),
            login_tracked: 10_000,
            login_form_ttl: Duration::from_secs(10 * 60),
            audit_refusal_window: Duration::from_secs(5 * 60),
            admin_user: "admin".into(),
            admin_password_file: None,
            jwks_propagation: Duration::from_secs(35),
            cert_propagation_timeout: Duration::from_secs(150),
            poll_interval: Duration::from_secs(2),
            oauth_grace: time::Duration::hours(24),
            temporal: None,
            renew_interval: Some(Duration::from_secs(3600)),
            deployment_secrets_dir: None,
        }
    }
}

/// Shared state of the admin handlers.
#[derive(Debug)]
pub struct Admin {
    pub cfg: AdminConfig,
    pub pool: PgPool,
    pub clients: ClientStore,
    /// The encrypted Postgres secret store, when one is configured.
    pub secrets: Option<PostgresStore>,
    /// The partition (`store` column) of the secret table that `secrets` uses.
    pub secrets_namespace: String,
    pub(crate) throttle: throttle::Throttle,
    /// Bounds concurrent argon2 work (login, password change).
    pub(crate) hash_gate: throttle::HashGate,
    /// Refused logins, aggregated per address and window.
    pub(crate) refusals: audit::RefusalLog,
    pub(crate) login_key: ring::hmac::Key,
    /// Serialises every change to the certs directory.
    pub(crate) pki_lock: tokio::sync::Mutex<()>,
    /// The time the pki verbs see (what is due, retirement horizons): the system clock, a
    /// manual one in tests.
    pub clock: Arc<dyn Clock>,
    /// The token endpoint's signing key, when both run in one process: re-read as soon as a
    /// rotation or revoke here switched the key.
    pub signer: std::sync::OnceLock<Arc<bulwark_token_issuer::signer::KeyFile>>,
}

impl Admin {
    pub fn new(
        cfg: AdminConfig,
        pool: PgPool,
        secrets: Option<(PostgresStore, String)>,
    ) -> Result<Arc<Self>, AdminError> {
        Self::with_clock(cfg, pool, secrets, Arc::new(SystemClock))
    }

    /// [`Admin::new`] with the clock the pki verbs see.
    pub fn with_clock(
        cfg: AdminConfig,
        pool: PgPool,
        secrets: Option<(PostgresStore, String)>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, AdminError> {
        let rng = ring::rand::SystemRandom::new();
        let login_key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| AdminError::Internal("random source failed".into()))?;
        let throttle = throttle::Throttle::new(auth::throttle_settings(&cfg));
        let hash_gate = throttle::HashGate::new(cfg.login_concurrency, cfg.login_queue_wait);
        let refusals = audit::RefusalLog::new(cfg.audit_refusal_window, auth::tracked(&cfg));
        Ok(Arc::new(Admin {
            clients: ClientStore::new(pool.clone()),
            cfg,
            pool,
            secrets_namespace: secrets.as_ref().map(|s| s.1.clone()).unwrap_or_default(),
            secrets: secrets.map(|s| s.0),
            throttle,
            hash_gate,
            refusals,
            login_key,
            pki_lock: tokio::sync::Mutex::new(()),
            clock,
            signer: std::sync::OnceLock::new(),
        }))
    }
}

pub type AdminState = Arc<Admin>;

impl Admin {
    /// The signing key changed on disk: make the token endpoint sign with it now.
    pub(crate) fn reload_signer(&self) {
        if let Some(k) = self.signer.get() {
            k.reload_now();
        }
    }
}

/// Half the CPUs, at least one and at most four: argon2 saturates a core per hash, and the
/// token endpoint (which every service depends on) must keep the rest during a login storm.
/// Each turn holds a 19 MiB work area from start-up, so the count is also a memory bound.
pub fn default_login_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4))
}

/// The most argon2 turns a setting may ask for (64 x 19 MiB = 1.2 GiB held from start-up).
pub const MAX_LOGIN_CONCURRENCY: usize = 64;

/// Errors of admin handlers. The page shows only the public message; details go to the log.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the form has expired or did not come from this page; reload and try again")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("too many failed logins; try again later")]
    Throttled,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<askama::Error> for AdminError {
    fn from(e: askama::Error) -> Self {
        AdminError::Internal(format!("template: {e}"))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            AdminError::Csrf => (StatusCode::FORBIDDEN, self.to_string()),
            AdminError::NotFound => (StatusCode::NOT_FOUND, self.to_string()),
            AdminError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            AdminError::Throttled => (StatusCode::TOO_MANY_REQUESTS, self.to_string()),
            AdminError::Database(e) => {
                tracing::error!(error = %e, "admin: database error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the control log".to_owned(),
                )
            }
            AdminError::Internal(e) => {
                tracing::error!(error = %e, "admin: internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the control log".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            message,
        };
        let body = askama::Template::render(&page).unwrap_or_else(|_| "error\n".to_owned());
        (status, Html(body)).into_response()
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    message: String,
}

/// Render a template into an HTML response.
pub(crate) fn render<T: askama::Template>(t: &T) -> Result<Response, AdminError> {
    Ok(Html(t.render()?).into_response())
}

static STYLE: &str = include_str!("../../static/admin.css");
static SCRIPT: &str = include_str!("../../static/admin.js");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLE,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The admin routes, with their own headers and body limit. Needs `ConnectInfo<SocketAddr>`.
pub fn router(state: AdminState) -> Router {
    let routes = Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/", get(inventory::dashboard))
        .route("/admin/login", get(auth::login_form).post(auth::login))
        .route("/admin/logout", post(auth::logout))
        .route(
            "/admin/password",
            get(auth::password_form).post(auth::change_password),
        )
        .route("/admin/audit", get(audit::page))
        .route("/admin/temporal-calls", get(gate_audit::page))
        .route("/admin/jobs/{id}", get(jobs::page))
        .route("/admin/confirm", get(rotate::confirm::confirm))
        .route("/admin/rotate/cert", post(rotate::cert::rotate))
        .route("/admin/rotate/tokens", post(rotate::tokens::rotate))
        .route("/admin/rotate/jwt", post(rotate::jwt::rotate))
        .route("/admin/revoke/jwt", post(rotate::revoke::revoke))
        .route("/admin/rotate/oauth", post(rotate::oauth::rotate))
        .route("/admin/rotate/credential", post(rotate::credential::rotate))
        .route("/admin/rotate/ca", post(rotate::ca::rotate))
        .route("/admin/rotate/ca/finish", post(rotate::ca::finish))
        .route("/admin/rotate/ca/resume", post(rotate::ca::resume))
        .route("/admin/static/admin.css", get(style))
        .route("/admin/static/admin.js", get(script))
        .layer(DefaultBodyLimit::max(16 * 1024));
    headers::apply(routes, Policy::Page).with_state(state)
}

/// Start the automatic renewal task (if configured). Call once per process.
pub fn spawn_background(state: &AdminState) {
    renew::spawn(state.clone());
    auth::spawn_refusal_flush(state.clone());
}
