//! The API router with `tower::ServiceExt::oneshot`, against an in-memory backend: the HTTP
//! contract (auth, scopes, validation, status codes). End to end against Temporal lives in
//! tests/e2e.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use bulwark_api::{
    AppState, Metrics, app,
    auth::Verifier,
    backend::{BackendError, Description, Outcome, StartRequest, Started, Status, WorkflowBackend},
};
use bulwark_pki::{
    Mode, Settings, generate,
    jwt::{Claims, SigningKey},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

#[derive(Debug, Default)]
struct Fake {
    started: Mutex<HashMap<String, StartRequest>>,
    /// Temporal unreachable: every call fails as the real backend's would.
    down: AtomicBool,
    /// Temporal rate limiting the namespace.
    busy: AtomicBool,
}

impl Fake {
    fn check(&self) -> Result<(), BackendError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BackendError::Unavailable("connection refused".into()));
        }
        if self.busy.load(Ordering::SeqCst) {
            return Err(BackendError::RateLimited);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl WorkflowBackend for Fake {
    async fn start(&self, req: StartRequest) -> Result<Started, BackendError> {
        self.check()?;
        if req.workflow_id == "temporal-refuses" {
            return Err(BackendError::Invalid(
                "WorkflowId is not valid UTF-8".into(),
            ));
        }
        let mut s = self.started.lock().unwrap();
        if s.contains_key(&req.workflow_id) {
            return Err(BackendError::AlreadyStarted {
                run_id: "run-1".into(),
            });
        }
        let id = req.workflow_id.clone();
        s.insert(id.clone(), req);
        Ok(Started {
            workflow_id: id,
            run_id: "run-1".into(),
        })
    }
    async fn describe(&self, id: &str) -> Result<Description, BackendError> {
        self.check()?;
        if id == "temporal-down" {
            return Err(BackendError::Unavailable("connection refused".into()));
        }
        let s = self.started.lock().unwrap();
        let r = s.get(id).ok_or(BackendError::NotFound)?;
        Ok(Description {
            workflow_id: id.into(),
            run_id: "run-1".into(),
            workflow_type: r.workflow_type.clone(),
            status: Status::Running,
            start_time: None,
            close_time: None,
        })
    }
    async fn result(&self, id: &str, _wait: Duration) -> Result<Outcome, BackendError> {
        self.describe(id).await?;
        if id.starts_with("running") {
            return Ok(Outcome::StillRunning);
        }
        Ok(Outcome::Completed(json!({"greeting": "Hello"})))
    }
    async fn cancel(&self, id: &str) -> Result<(), BackendError> {
        self.describe(id).await.map(|_| ())
    }
    async fn list(
        &self,
        _status: Option<Status>,
        _limit: usize,
    ) -> Result<Vec<Description>, BackendError> {
        self.check()?;
        Ok(vec![])
    }
    async fn ready(&self) -> Result<(), String> {
        self.check().map_err(|e| e.to_string())
    }
}

struct Env {
    _tmp: tempfile::TempDir,
    router: axum::Router,
    key: SigningKey,
    fake: Arc<Fake>,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    generate(
        &dir,
        &Settings::default(),
        Mode::Missing,
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    let key = SigningKey::from_pem(
        &std::fs::read_to_string(dir.join("temporal-jwt-private.key")).unwrap(),
    )
    .unwrap();
    let fake = Arc::new(Fake::default());
    let state = AppState {
        backend: fake.clone(),
        verifier: Arc::new(Verifier::new(dir.join("jwks.json"), "bulwark-api")),
        metrics: Arc::new(Metrics::default()),
        max_wait: Duration::from_secs(5),
    };
    Env {
        _tmp: tmp,
        router: app(state),
        key,
        fake,
    }
}

impl Env {
    fn token(&self, scope: &str, aud: &str, ttl: i64) -> String {
        self.token_at(scope, aud, ttl, OffsetDateTime::now_utc())
    }

    fn token_at(&self, scope: &str, aud: &str, ttl: i64, iat: OffsetDateTime) -> String {
        let c = Claims::new(
            "operator",
            "bulwark",
            aud,
            scope,
            vec![],
            iat,
            time::Duration::seconds(ttl),
        );
        self.key.sign(&c).unwrap()
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        self.call_as(method, uri, token, body, "application/json")
            .await
    }

    async fn call_as(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
        content_type: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(body) => b
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

const START: &str = "workflows:start workflows:read workflows:cancel";

#[tokio::test]
async fn no_anonymous_access_and_bad_tokens_are_401() {
    let e = env();
    let (s, h, body) = e.call("GET", "/api/v1/workflows", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(h["www-authenticate"], "Bearer realm=\"bulwark-api\"");
    assert_eq!(body["error"], "unauthorized");

    let expired = e.token(START, "bulwark-api", -3600);
    let wrong_aud = e.token(START, "temporal", 600);
    let good = e.token(START, "bulwark-api", 600);
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_payload = {
        use base64::Engine;
        let c = Claims::new(
            "admin",
            "bulwark",
            "bulwark-api",
            START,
            vec![],
            OffsetDateTime::now_utc(),
            time::Duration::seconds(600),
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
    };
    parts[1] = &forged_payload;
    let tampered = parts.join(".");
    for t in [expired, wrong_aud, tampered, "not-a-jwt".to_owned()] {
        let (s, h, body) = e.call("GET", "/api/v1/workflows", Some(&t), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{t}");
        assert!(
            h["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        assert_eq!(body["error"], "invalid_token");
    }
    let (s, _, _) = e.call("GET", "/api/v1/workflows", Some(&good), None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn wrong_scope_is_403() {
    let e = env();
    let read_only = e.token("workflows:read", "bulwark-api", 600);
    let (s, h, body) = e
        .call(
            "POST",
            "/api/v1/workflows",
            Some(&read_only),
            Some(json!({"workflow_type": "Greeting"}).to_string()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("workflows:start")
    );
    let (s, _, _) = e
        .call("POST", "/api/v1/workflows/x/cancel", Some(&read_only), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn start_describe_result_conflict() {
    let e = env();
    let t = e.token(START, "bulwark-api", 600);
    let body =
        json!({"workflow_type": "Greeting", "workflow_id": "greet-1", "input": {"name": "Ada"}})
            .to_string();
    let (s, _, v) = e
        .call("POST", "/api/v1/workflows", Some(&t), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v, json!({"workflow_id": "greet-1", "run_id": "run-1"}));
    let (s, _, v) = e
        .call("POST", "/api/v1/workflows", Some(&t), Some(body))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["run_id"], "run-1");
    let (s, _, v) = e
        .call("GET", "/api/v1/workflows/greet-1", Some(&t), None)
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("running")));
    let (s, _, v) = e
        .call(
            "GET",
            "/api/v1/workflows/greet-1/result?timeout=1s",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("completed"))
    );
    let (s, _, _) = e
        .call("GET", "/api/v1/workflows/nope", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = e
        .call("GET", "/api/v1/workflows?status=bogus", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_input_gets_actionable_4xx() {
    let e = env();
    let t = e.token(START, "bulwark-api", 600);
    let (s, _, v) = e
        .call(
            "POST",
            "/api/v1/workflows",
            Some(&t),
            Some("{not json".into()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "invalid_json");
    let big =
        json!({"workflow_type": "Greeting", "input": {"name": "x".repeat(100_000)}}).to_string();
    let (s, _, _) = e
        .call("POST", "/api/v1/workflows", Some(&t), Some(big))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _, v) = e
        .call(
            "POST",
            "/api/v1/workflows",
            Some(&t),
            Some(json!({"workflow_type": "Mine"}).to_string()),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("Greeting, DatabaseQuery, HttpCall")
    );
    let planted = "planted-secret-value-8d1f";
    let (s, _, v) = e
        .call(
            "POST",
            "/api/v1/workflows",
            Some(&t),
            Some(
                json!({"workflow_type": "DatabaseQuery", "input": {"password": planted}})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("input.password") && msg.contains("credentials"),
        "{msg}"
    );
    assert!(!v.to_string().contains(planted));
}

#[tokio::test]
async fn openapi_health_and_metrics() {
    let e = env();
    let (s, _, v) = e.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["openapi"], "3.1.0");
    assert!(v["paths"]["/api/v1/workflows"]["post"].is_object());
    let (s, _, _) = e.call("GET", "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let res = e
        .router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        text.contains("bulwark_api_requests_total{route=\"/readyz\",status=\"200\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_token_living_longer_than_the_maximum_is_401() {
    // env() uses the default maximum of one hour.
    let e = env();
    let at_max = e.token(START, "bulwark-api", 3600);
    let (s, _, _) = e
        .call("GET", "/api/v1/workflows", Some(&at_max), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Validly signed by the published key, audience and scope right: refused for its lifetime.
    let too_long = e.token(START, "bulwark-api", 3601);
    let (s, _, body) = e
        .call("GET", "/api/v1/workflows", Some(&too_long), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn a_token_from_the_future_is_401_naming_the_clocks() {
    let e = env();
    let now = OffsetDateTime::now_utc();
    // Within the 60 s leeway: accepted.
    let near = e.token_at(START, "bulwark-api", 600, now + time::Duration::seconds(30));
    let (s, _, _) = e.call("GET", "/api/v1/workflows", Some(&near), None).await;
    assert_eq!(s, StatusCode::OK);
    // Beyond it: refused, saying why.
    let far = e.token_at(
        START,
        "bulwark-api",
        600,
        now + time::Duration::seconds(120),
    );
    let (s, _, body) = e.call("GET", "/api/v1/workflows", Some(&far), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("not valid yet") && msg.contains("clock"),
        "{msg}"
    );
    // An expired token still gets the generic message.
    let old = e.token_at(START, "bulwark-api", 60, now - time::Duration::seconds(600));
    let (_, _, body) = e.call("GET", "/api/v1/workflows", Some(&old), None).await;
    assert!(!body["message"].as_str().unwrap().contains("not valid yet"));
}

#[tokio::test]
async fn temporal_unavailable_is_503_with_retry_after() {
    let e = env();
    let t = e.token(START, "bulwark-api", 600);
    let (s, h, body) = e
        .call("GET", "/api/v1/workflows/temporal-down", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h["retry-after"], "5");
    assert_eq!(body["error"], "unavailable");
    assert!(
        !body.to_string().contains("connection refused"),
        "internal detail leaked: {body}"
    );
    // Other errors carry no Retry-After.
    let (s, h, _) = e
        .call("GET", "/api/v1/workflows/nope", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(h.get("retry-after").is_none());
}

/// The OpenAPI document and the router agree, both ways: every status the router gives for
/// the requests below is documented for that route, with the content type, error body and
/// headers the document promises; every documented route and every documented status is
/// produced by at least one request. A route or a status added on one side only fails here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Temporal {
    Up,
    Down,
    Busy,
}
use Temporal::{Busy, Down, Up};

#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let e = env();
    let doc = bulwark_api::openapi_document();
    let all = e.token(START, "bulwark-api", 600);
    let read = e.token("workflows:read", "bulwark-api", 600);
    let start_only = e.token("workflows:start", "bulwark-api", 600);
    let greet = |id: &str| json!({"workflow_type": "Greeting", "workflow_id": id}).to_string();
    for id in ["greet-1", "running-1"] {
        let (s, _, _) = e
            .call("POST", "/api/v1/workflows", Some(&all), Some(greet(id)))
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let big = json!({"workflow_type": "Greeting", "input": {"n": "x".repeat(100_000)}}).to_string();
    let secret =
        json!({"workflow_type": "Greeting", "input": {"a": [{"X-Api-Key": "k"}]}}).to_string();
    let json = "application/json";
    let wf = "/api/v1/workflows";
    let one = "/api/v1/workflows/{id}";
    let res = "/api/v1/workflows/{id}/result";
    let cancel = "/api/v1/workflows/{id}/cancel";
    // (route as documented, method, uri, token, body, content type, Temporal down)
    type Case<'a> = (
        &'a str,
        &'a str,
        String,
        Option<&'a str>,
        Option<String>,
        &'a str,
        Temporal,
    );
    let cases: Vec<Case> = vec![
        (
            wf,
            "POST",
            wf.into(),
            Some(&all),
            Some(greet("new-1")),
            json,
            Up,
        ),
        (
            wf,
            "POST",
            wf.into(),
            Some(&all),
            Some("{\"workflow_type\": 1}".into()),
            json,
            Up,
        ),
        (wf, "POST", wf.into(), None, Some(greet("x")), json, Up),
        (
            wf,
            "POST",
            wf.into(),
            Some(&read),
            Some(greet("x")),
            json,
            Up,
        ),
        (
            wf,
            "POST",
            wf.into(),
            Some(&all),
            Some(greet("greet-1")),
            json,
            Up,
        ),
        (wf, "POST", wf.into(), Some(&all), Some(big), json, Up),
        (
            wf,
            "POST",
            wf.into(),
            Some(&all),
            Some(greet("x")),
            "text/plain",
            Up,
        ),
        (wf, "POST", wf.into(), Some(&all), Some(secret), json, Up),
        (
            wf,
            "POST",
            wf.into(),
            Some(&all),
            Some(greet("temporal-refuses")),
            json,
            Up,
        ),
        (
            wf,
            "POST",
            wf.into(),
            Some(&all),
            Some(greet("x")),
            json,
            Down,
        ),
        (
            wf,
            "GET",
            format!("{wf}?status=running&limit=1000"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            wf,
            "GET",
            format!("{wf}?limit=0"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            wf,
            "GET",
            format!("{wf}?limit=ten"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            wf,
            "GET",
            format!("{wf}?status="),
            Some(&read),
            None,
            json,
            Up,
        ),
        (wf, "GET", wf.into(), None, None, json, Up),
        (wf, "GET", wf.into(), Some(&start_only), None, json, Up),
        (wf, "GET", wf.into(), Some(&read), None, json, Down),
        (
            one,
            "GET",
            format!("{wf}/greet-1"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            one,
            "GET",
            format!("{wf}/a%20b"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (one, "GET", format!("{wf}/greet-1"), None, None, json, Up),
        (
            one,
            "GET",
            format!("{wf}/greet-1"),
            Some(&start_only),
            None,
            json,
            Up,
        ),
        (
            one,
            "GET",
            format!("{wf}/nope"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            one,
            "GET",
            format!("{wf}/greet-1"),
            Some(&read),
            None,
            json,
            Down,
        ),
        (
            res,
            "GET",
            format!("{wf}/greet-1/result?timeout=500ms"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            res,
            "GET",
            format!("{wf}/running-1/result?timeout=0s"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            res,
            "GET",
            format!("{wf}/greet-1/result?timeout=1h30m"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            res,
            "GET",
            format!("{wf}/greet-1/result"),
            None,
            None,
            json,
            Up,
        ),
        (
            res,
            "GET",
            format!("{wf}/greet-1/result"),
            Some(&start_only),
            None,
            json,
            Up,
        ),
        (
            res,
            "GET",
            format!("{wf}/nope/result"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            res,
            "GET",
            format!("{wf}/greet-1/result"),
            Some(&read),
            None,
            json,
            Down,
        ),
        (
            cancel,
            "POST",
            format!("{wf}/greet-1/cancel"),
            Some(&all),
            None,
            json,
            Up,
        ),
        (
            cancel,
            "POST",
            format!("{wf}/%C3%A9/cancel"),
            Some(&all),
            None,
            json,
            Up,
        ),
        (
            cancel,
            "POST",
            format!("{wf}/greet-1/cancel"),
            None,
            None,
            json,
            Up,
        ),
        (
            cancel,
            "POST",
            format!("{wf}/greet-1/cancel"),
            Some(&read),
            None,
            json,
            Up,
        ),
        (
            cancel,
            "POST",
            format!("{wf}/nope/cancel"),
            Some(&all),
            None,
            json,
            Up,
        ),
        (
            cancel,
            "POST",
            format!("{wf}/greet-1/cancel"),
            Some(&all),
            None,
            json,
            Down,
        ),
        (
            "/api/v1/openapi.json",
            "GET",
            "/api/v1/openapi.json".into(),
            None,
            None,
            json,
            Up,
        ),
        ("/healthz", "GET", "/healthz".into(), None, None, json, Up),
        ("/readyz", "GET", "/readyz".into(), None, None, json, Up),
        ("/readyz", "GET", "/readyz".into(), None, None, json, Down),
        ("/metrics", "GET", "/metrics".into(), None, None, json, Up),
        (
            wf,
            "POST",
            wf.into(),
            Some(&all),
            Some(greet("x")),
            json,
            Busy,
        ),
        (wf, "GET", wf.into(), Some(&read), None, json, Busy),
        (
            one,
            "GET",
            format!("{wf}/greet-1"),
            Some(&read),
            None,
            json,
            Busy,
        ),
        (
            res,
            "GET",
            format!("{wf}/greet-1/result"),
            Some(&read),
            None,
            json,
            Busy,
        ),
        (
            cancel,
            "POST",
            format!("{wf}/greet-1/cancel"),
            Some(&all),
            None,
            json,
            Busy,
        ),
        (
            wf,
            "POST",
            wf.into(),
            Some(&all),
            Some(json!({"workflow_type": "Greeting", "task_queue": "other-queue"}).to_string()),
            json,
            Up,
        ),
    ];
    let mut produced = BTreeSet::new();
    for (route, method, uri, token, body, ctype, mode) in cases {
        e.fake.down.store(mode == Down, Ordering::SeqCst);
        e.fake.busy.store(mode == Busy, Ordering::SeqCst);
        let mut b = Request::builder().method(method).uri(&uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(body) => b.header("content-type", ctype).body(Body::from(body)),
            None => b.body(Body::empty()),
        }
        .unwrap();
        let r = e.router.clone().oneshot(req).await.unwrap();
        let status = r.status().as_u16().to_string();
        let headers = r.headers().clone();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let case = format!("{method} {uri} ({mode:?}) -> {status}");
        let documented = &doc["paths"][route][method.to_lowercase()]["responses"][&status];
        assert!(documented.is_object(), "undocumented status: {case}");
        let content = documented["content"].as_object().expect(&case);
        let (media, schema) = content.iter().next().expect(&case);
        let got = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            got.starts_with(media.as_str()),
            "{case}: content type {got}, documented {media}"
        );
        if schema["schema"]["$ref"] == "#/components/schemas/Error" {
            let v: Value = serde_json::from_slice(&bytes).expect(&case);
            assert!(
                v["error"].is_string() && v["message"].is_string(),
                "{case}: {v}"
            );
        }
        if let Some(hs) = documented["headers"].as_object() {
            for name in hs.keys() {
                assert!(
                    headers.contains_key(name.as_str()),
                    "{case}: no {name} header"
                );
            }
        }
        produced.insert((route.to_owned(), method.to_lowercase(), status));
    }
    e.fake.down.store(false, Ordering::SeqCst);
    e.fake.busy.store(false, Ordering::SeqCst);
    let mut documented = BTreeSet::new();
    for (route, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for status in op["responses"].as_object().unwrap().keys() {
                documented.insert((route.clone(), method.clone(), status.clone()));
            }
        }
    }
    let never: Vec<_> = documented.difference(&produced).collect();
    assert!(never.is_empty(), "documented but never produced: {never:?}");

    // Outside the document: unknown routes and methods get the JSON error shape too.
    let (s, _, v) = e.call("GET", "/api/v2/nothing", Some(&all), None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, h, v) = e
        .call("DELETE", "/api/v1/workflows/greet-1", Some(&all), None)
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["error"], "method_not_allowed");
    assert!(h["allow"].to_str().unwrap().contains("GET"), "{h:?}");
}
