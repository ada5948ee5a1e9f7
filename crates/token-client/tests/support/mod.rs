//! A test OAuth2 token endpoint over HTTPS, speaking the same contract as
//! bulwark-control's `/oauth/token`, with knobs to make it fail.
//!
//! Shared by the integration tests and the benchmark (`#[path]` include), so
//! not every item is used by every includer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// What the endpoint does with the next requests.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Follow the contract.
    Normal,
    /// Answer with this status and a body that quotes the request.
    Status(u16),
    /// A 200 whose body is this text.
    RawOk(String),
    /// 429 with `Retry-After`.
    RateLimited(u64),
}

/// One request as the server understood it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub method: &'static str,
    pub scope: Option<String>,
}

pub struct ServerState {
    pub mode: Mutex<Mode>,
    /// client_id → (secret, allowed scopes)
    pub clients: Mutex<HashMap<String, (String, HashSet<String>)>>,
    /// `expires_in` to return; `None` omits it and issues an opaque token.
    pub expires_in: Mutex<Option<u64>>,
    /// Text planted into every issued token (for the redaction test).
    pub token_marker: Mutex<String>,
    pub seen: Mutex<Vec<Seen>>,
    pub issued: AtomicU64,
    /// Requests received so far; tests wait on it.
    pub requests: watch::Sender<usize>,
    /// While false, requests are held before being answered.
    pub gate: watch::Sender<bool>,
    /// `kid` put in the header of issued JWTs (none when `None`).
    pub kid: Mutex<Option<String>>,
    /// `/.well-known/jwks.json`: the published kids, or `Err(status)` to fail.
    pub jwks: Mutex<Result<Vec<String>, u16>>,
    /// JWKS requests answered so far; tests wait on it.
    pub jwks_requests: watch::Sender<usize>,
}

pub struct TokenServer {
    pub addr: SocketAddr,
    pub url: String,
    pub ca_pem: String,
    pub ca_path: PathBuf,
    pub state: Arc<ServerState>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const ALLOWED_SCOPES: [&str; 2] = ["temporal-worker", "temporal-client"];

/// A fresh CA and a `localhost` / 127.0.0.1 server certificate it signed.
pub fn test_pki() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "bulwark-token-client test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    leaf.distinguished_name
        .push(DnType::CommonName, "test token endpoint");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    (
        ca_cert.pem(),
        leaf_cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // Failed handshakes (the untrusted-CA tests) are simply dropped.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl TokenServer {
    pub async fn start() -> Self {
        let (ca_pem, cert, key) = test_pki();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.crt");
        std::fs::write(&ca_path, &ca_pem).unwrap();

        let state = Arc::new(ServerState {
            mode: Mutex::new(Mode::Normal),
            clients: Mutex::new(HashMap::new()),
            expires_in: Mutex::new(Some(900)),
            token_marker: Mutex::new(String::new()),
            seen: Mutex::new(Vec::new()),
            issued: AtomicU64::new(0),
            requests: watch::channel(0).0,
            gate: watch::channel(true).0,
            kid: Mutex::new(None),
            jwks: Mutex::new(Ok(Vec::new())),
            jwks_requests: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/.well-known/jwks.json", get(jwks))
            .with_state(Arc::clone(&state));
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        };
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            url: format!("https://localhost:{}/oauth/token", addr.port()),
            ca_pem,
            ca_path,
            state,
            _dir: dir,
            task,
        }
    }

    pub fn add_client(&self, id: &str, secret: &str) {
        self.state.clients.lock().unwrap().insert(
            id.to_owned(),
            (
                secret.to_owned(),
                ALLOWED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            ),
        );
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn set_expires_in(&self, secs: Option<u64>) {
        *self.state.expires_in.lock().unwrap() = secs;
    }

    pub fn requests(&self) -> usize {
        *self.state.requests.borrow()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub async fn wait_for_requests(&self, n: usize) {
        let mut rx = self.state.requests.subscribe();
        rx.wait_for(|c| *c >= n).await.unwrap();
    }

    /// Sign new tokens with `kid` in their header.
    pub fn set_kid(&self, kid: &str) {
        *self.state.kid.lock().unwrap() = Some(kid.to_owned());
    }

    /// Publish these kids (`Err(status)`: answer the JWKS request with that status).
    pub fn set_jwks(&self, kids: Result<&[&str], u16>) {
        *self.state.jwks.lock().unwrap() =
            kids.map(|k| k.iter().map(|s| (*s).to_owned()).collect());
    }

    pub fn jwks_requests(&self) -> usize {
        *self.state.jwks_requests.borrow()
    }

    /// Waits until `n` JWKS requests have been answered.
    pub async fn wait_for_jwks_requests(&self, n: usize) {
        let mut rx = self.state.jwks_requests.subscribe();
        rx.wait_for(|c| *c >= n).await.unwrap();
    }

    pub fn hold(&self) {
        self.state.gate.send_replace(false);
    }

    pub fn release(&self) {
        self.state.gate.send_replace(true);
    }
}

async fn jwks(State(state): State<Arc<ServerState>>) -> Response {
    let published = state.jwks.lock().unwrap().clone();
    let res = match published {
        Ok(kids) => {
            let keys: Vec<_> = kids
                .iter()
                .map(|k| serde_json::json!({"kty": "EC", "crv": "P-256", "kid": k, "x": "x", "y": "y"}))
                .collect();
            axum::Json(serde_json::json!({ "keys": keys })).into_response()
        }
        Err(code) => StatusCode::from_u16(code).unwrap().into_response(),
    };
    // Counted once the answer is ready, so a test that saw request n knows the
    // manager is about to act on it.
    state.jwks_requests.send_modify(|n| *n += 1);
    res
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut res = (
        status,
        axum::Json(serde_json::json!({"error": code, "error_description": description})),
    )
        .into_response();
    if code == "invalid_client" {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"test\""),
        );
    }
    res
}

fn form_decode(s: &str) -> Option<String> {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

async fn token(State(state): State<Arc<ServerState>>, headers: HeaderMap, body: Bytes) -> Response {
    state.requests.send_modify(|n| *n += 1);
    let mut gate = state.gate.subscribe();
    gate.wait_for(|open| *open).await.unwrap();

    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            Some((form_decode(id)?, form_decode(secret)?))
        });
    let (method, id, secret) = match (&basic, form.get("client_id"), form.get("client_secret")) {
        (Some((id, secret)), None, None) => ("basic", Some(id.clone()), Some(secret.clone())),
        (None, id, secret) => ("post", id.cloned(), secret.cloned()),
        _ => ("both", None, None),
    };
    state.seen.lock().unwrap().push(Seen {
        client_id: id.clone(),
        client_secret: secret.clone(),
        method,
        scope: form.get("scope").cloned(),
    });

    let echo = format!(
        "client {id:?} presented secret {secret:?}; last token marker {}",
        state.token_marker.lock().unwrap()
    );
    match state.mode.lock().unwrap().clone() {
        Mode::Normal => {}
        Mode::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            if status.is_client_error() {
                return oauth_error(status, "invalid_client", &echo);
            }
            return (status, format!("internal error: {echo}")).into_response();
        }
        Mode::RawOk(body) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
        Mode::RateLimited(secs) => {
            let mut res = oauth_error(StatusCode::TOO_MANY_REQUESTS, "slow_down", &echo);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return res;
        }
    }

    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/x-www-form-urlencoded" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad content type",
        );
    }
    if method == "both" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "two auth methods",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant");
    }
    let clients = state.clients.lock().unwrap().clone();
    let Some((expected, allowed)) = id.as_ref().and_then(|id| clients.get(id)) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &echo);
    };
    if secret.as_deref() != Some(expected.as_str()) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &echo);
    }
    let scope = match form.get("scope") {
        Some(requested) => {
            if !requested.split(' ').all(|s| allowed.contains(s)) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &echo);
            }
            requested.clone()
        }
        None => {
            let mut all: Vec<&str> = allowed.iter().map(String::as_str).collect();
            all.sort_unstable();
            all.join(" ")
        }
    };

    let n = state.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let marker = state.token_marker.lock().unwrap().clone();
    let expires_in = *state.expires_in.lock().unwrap();
    let access_token = match expires_in {
        Some(ttl) => {
            let iat = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let claims = serde_json::json!({
                "sub": id, "scope": scope, "iat": iat, "exp": iat + ttl, "jti": n,
            });
            let header = match &*state.kid.lock().unwrap() {
                Some(kid) => serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid}),
                None => serde_json::json!({"alg": "ES256", "typ": "JWT"}),
            };
            format!(
                "{}.{}.sig{n}{marker}",
                b64.encode(header.to_string()),
                b64.encode(claims.to_string())
            )
        }
        None => format!("opaque-{n}{marker}"),
    };
    let mut body = serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "scope": scope,
    });
    if let Some(ttl) = expires_in {
        body["expires_in"] = ttl.into();
    }
    let mut res = axum::Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
