//! The token endpoint over real HTTPS against a real database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use bulwark_pki::{
    binding::{Confirmation, thumbprint_s256},
    jwt::{Jwks, VerifyOptions, verify},
};
use bulwark_token_issuer::IssuerSettings;
use reqwest::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;

async fn json(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

async fn jwks(h: &support::Harness) -> Jwks {
    h.http
        .get(format!("{}/.well-known/jwks.json", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn issues_tokens_that_verify_against_the_published_jwks() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let r = h.token_basic("worker", &h.secret("worker"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = json(r).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "temporal:default:write");
    let claims = verify(
        body["access_token"].as_str().unwrap(),
        &jwks(&h).await,
        OffsetDateTime::now_utc(),
        &VerifyOptions::new(time::Duration::minutes(15)).audience("temporal"),
    )
    .unwrap();
    assert_eq!(claims.permissions, ["default:write"]);
    assert_eq!(claims.sub, "worker");
    assert_eq!(claims.exp - claims.iat, 900);

    // client_secret_post works too, and a second request is a new token.
    let r = h
        .http
        .post(format!("{}/oauth/token", h.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "worker"),
            ("client_secret", &h.secret("worker")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(json(r).await["access_token"], body["access_token"]);
}

#[tokio::test]
async fn temporal_tokens_are_bound_to_the_presented_certificate() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let r = h.token_basic("worker", &h.secret("worker"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(r).await;
    let claims = verify(
        body["access_token"].as_str().unwrap(),
        &jwks(&h).await,
        OffsetDateTime::now_utc(),
        &VerifyOptions::new(time::Duration::minutes(15)).audience("temporal"),
    )
    .unwrap();
    let leaf = h.client_leaf();
    let cnf = claims.cnf.expect("a Temporal token carries cnf");
    assert_eq!(cnf, Confirmation::for_certificate(&leaf).unwrap());
    assert_eq!(cnf.x5t_s256, thumbprint_s256(&leaf));
    assert_eq!(
        cnf.uri.as_deref(),
        Some("spiffe://bulwark.local/client/worker")
    );
}

#[tokio::test]
async fn a_temporal_token_without_a_client_certificate_is_refused() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let r = h
        .token_basic_over(&h.anonymous, "worker", &h.secret("worker"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":"invalid_request","error_description":"tokens for Temporal are bound to a client certificate: connect with this client's certificate"}"#
    );
    // Only after authentication: a wrong secret is still invalid_client, not this.
    let r = h
        .token_basic_over(&h.anonymous, "worker", "not-the-secret", &[])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_audience_tokens_need_no_certificate_and_carry_no_cnf() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    for http in [&h.anonymous, &h.http] {
        let r = h
            .token_basic_over(http, "operator", &h.secret("operator"), &[])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = json(r).await;
        let token = body["access_token"].as_str().unwrap();
        let claims = verify(
            token,
            &jwks(&h).await,
            OffsetDateTime::now_utc(),
            &VerifyOptions::new(time::Duration::minutes(15)).audience("bulwark-api"),
        )
        .unwrap();
        assert_eq!(claims.cnf, None);
        // Not even as an empty member.
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        assert!(!String::from_utf8(payload).unwrap().contains("cnf"));
    }
}

#[tokio::test]
async fn wrong_and_unknown_clients_get_the_same_rfc_error() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let wrong = h.token_basic("worker", "not-the-secret", &[]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Basic realm=\"bulwark-control\""
    );
    let wrong = json(wrong).await;
    let unknown = json(h.token_basic("nobody", "not-the-secret", &[]).await).await;
    assert_eq!(wrong["error"], "invalid_client");
    assert_eq!(
        wrong, unknown,
        "responses must not reveal whether the client exists"
    );

    let none = h
        .http
        .post(format!("{}/oauth/token", h.url))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn scope_narrowing_and_invalid_scope() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let r = json(
        h.token_basic(
            "api",
            &h.secret("api"),
            &[("scope", "temporal:default:read")],
        )
        .await,
    )
    .await;
    assert_eq!(r["scope"], "temporal:default:read");
    let claims = verify(
        r["access_token"].as_str().unwrap(),
        &jwks(&h).await,
        OffsetDateTime::now_utc(),
        &VerifyOptions::new(time::Duration::minutes(15)),
    )
    .unwrap();
    assert_eq!(claims.permissions, ["default:read"]);

    for scope in [
        "temporal:system:admin",
        "temporal:other:write",
        "made-up",
        "workflows:start",
    ] {
        let r = h
            .token_basic("api", &h.secret("api"), &[("scope", scope)])
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{scope}");
        assert_eq!(json(r).await["error"], "invalid_scope", "{scope}");
    }
}

#[tokio::test]
async fn malformed_requests_get_actionable_rfc_errors() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let url = format!("{}/oauth/token", h.url);
    let s = h.secret("worker");

    let r = h.token_basic("worker", &s, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = h
        .http
        .post(&url)
        .basic_auth("worker", Some(&s))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["error"], "unsupported_grant_type");
    let r = h
        .http
        .post(&url)
        .basic_auth("worker", Some(&s))
        .form(&[("scope", "x")])
        .send()
        .await
        .unwrap();
    let body = json(r).await;
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("grant_type")
    );
    let r = h
        .http
        .post(&url)
        .basic_auth("worker", Some(&s))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        json(r).await["error_description"]
            .as_str()
            .unwrap()
            .contains("x-www-form-urlencoded")
    );
    let r = h
        .http
        .post(&url)
        .basic_auth("worker", Some(&s))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", s.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["error"], "invalid_request");
    let big = "a".repeat(20_000);
    let r = h
        .http
        .post(&url)
        .basic_auth("worker", Some(&s))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", big.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn rotated_secret_has_a_grace_window_and_disabled_clients_are_refused() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let old = h.secret("worker");
    let (version, new) = h
        .store
        .rotate_secret("worker", time::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(version, 2);
    assert_eq!(
        h.token_basic("worker", &old, &[]).await.status(),
        StatusCode::OK,
        "old secret during grace"
    );
    assert_eq!(
        h.token_basic("worker", new.expose(), &[]).await.status(),
        StatusCode::OK
    );
    // The grace window passes.
    sqlx::query("UPDATE oauth_client_secrets SET expires_at = now() - interval '1 second' WHERE client_id = 'worker' AND version = 1")
        .execute(h.store.pool())
        .await
        .unwrap();
    assert_eq!(
        h.token_basic("worker", &old, &[]).await.status(),
        StatusCode::UNAUTHORIZED,
        "old secret after grace"
    );
    assert_eq!(
        h.token_basic("worker", new.expose(), &[]).await.status(),
        StatusCode::OK
    );

    h.store.set_enabled("worker", false).await.unwrap();
    let r = h.token_basic("worker", new.expose(), &[]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(r).await["error"], "invalid_client");
    h.store.set_enabled("worker", true).await.unwrap();
    assert_eq!(
        h.token_basic("worker", new.expose(), &[]).await.status(),
        StatusCode::OK
    );
}

/// A client whose requests leave from `source` (a loopback address), trusting the test CA.
fn client_from(h: &support::Harness, source: &str) -> reqwest::Client {
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(h.certs.join("ca.crt")).unwrap()).unwrap();
    let port = h.url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        // With the worker's certificate: its Temporal tokens are bound to it.
        .use_preconfigured_tls(support::with_client_cert(&h.certs, &h.client_cert))
        .local_address(source.parse::<IpAddr>().unwrap())
        // The certificate names localhost; reach it over IPv4, like the source.
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn token_from(
    http: &reqwest::Client,
    h: &support::Harness,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    http.post(format!("{}/oauth/token", h.url))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn metrics(h: &support::Harness) -> String {
    h.http
        .get(format!("{}/metrics", h.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn issuance_is_rate_limited_per_authenticated_client_with_retry_after() {
    let settings = IssuerSettings {
        per_client_per_second: 0.5,
        per_client_burst: 3,
        ..IssuerSettings::default()
    };
    let Some(h) = support::start(settings).await else {
        return;
    };
    // Wrong secrets do not spend the client's issuance budget...
    for _ in 0..5 {
        assert_eq!(
            h.token_basic("worker", "guess", &[]).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // ...so the real client gets its whole burst, then 429 with a sane Retry-After.
    for _ in 0..3 {
        assert_eq!(
            h.token_basic("worker", &h.secret("worker"), &[])
                .await
                .status(),
            StatusCode::OK
        );
    }
    let r = h.token_basic("worker", &h.secret("worker"), &[]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((1..=2).contains(&retry_after(&r)), "{:?}", r.headers());
    assert_eq!(json(r).await["error"], "slow_down");
    // Other clients are not affected.
    assert_eq!(
        h.token_basic("api", &h.secret("api"), &[]).await.status(),
        StatusCode::OK
    );
    assert!(
        metrics(&h)
            .await
            .contains("bulwark_control_token_throttled_total{reason=\"client_rate\"} 1")
    );
}

/// The issue's probe (a) in miniature: a wrong-secret flood for `worker` from three other
/// addresses, while the real worker asks for tokens from its own.
#[tokio::test]
async fn a_wrong_secret_flood_never_throttles_the_real_client() {
    // An issuance budget the attackers' 30 counted failures would exhaust, were they
    // charged to it; the real worker's 20 requests fit.
    let settings = IssuerSettings {
        per_client_per_second: 1.0,
        per_client_burst: 25,
        ..IssuerSettings::default()
    };
    let Some(h) = support::start(settings).await else {
        return;
    };
    let h = std::sync::Arc::new(h);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = std::time::Instant::now();
    let (throttled_tx, mut throttled_rx) = tokio::sync::mpsc::channel::<()>(3);
    let mut attackers = Vec::new();
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let (h, stop, http) = (h.clone(), stop.clone(), client_from(&h, source));
        let throttled_tx = throttled_tx.clone();
        attackers.push(tokio::spawn(async move {
            let (mut refused, mut throttled, mut sent) = (0u32, 0u32, 0u32);
            // Bounded: at most 300 requests per address.
            while sent < 300 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = token_from(&http, &h, "worker", "not-the-secret").await;
                sent += 1;
                match r.status() {
                    StatusCode::UNAUTHORIZED => refused += 1,
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert!((1..=10).contains(&retry_after(&r)), "{:?}", r.headers());
                        assert_eq!(json(r).await["error"], "slow_down");
                        if throttled == 0 {
                            throttled_tx.send(()).await.unwrap();
                        }
                        throttled += 1;
                    }
                    other => panic!("attacker got {other}"),
                }
            }
            (refused, throttled)
        }));
    }
    // The real worker asks only once every attacker is being refused, and goes on while
    // they keep flooding.
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(20), throttled_rx.recv())
            .await
            .expect("every attacker is throttled")
            .unwrap();
    }
    let real = client_from(&h, "127.0.0.1");
    for _ in 0..20 {
        let r = token_from(&real, &h, "worker", &h.secret("worker")).await;
        assert_eq!(r.status(), StatusCode::OK, "the real worker was refused");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut failures = 0;
    for a in attackers {
        let (refused, throttled) = a.await.unwrap();
        failures += refused;
        // Ten failures per (client, address), then refused before the lookup (plus one
        // back every 10 s, should this machine be that slow).
        let refilled = u32::try_from(started.elapsed().as_secs() / 10).unwrap();
        assert!((10..=10 + refilled).contains(&refused), "{refused}");
        assert!(throttled > 0);
    }
    // Even the right secret is refused from a throttled (client, address) pair: it is
    // refused before any lookup, so the pair's flood costs the database nothing.
    let r = token_from(
        &client_from(&h, "127.0.0.2"),
        &h,
        "worker",
        &h.secret("worker"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let m = metrics(&h).await;
    assert!(
        m.contains(&format!(
            "bulwark_control_token_errors_total{{error=\"invalid_client\"}} {failures}"
        )),
        "{m}"
    );
    assert!(
        m.contains("bulwark_control_token_throttled_total{reason=\"client_failures\"}"),
        "{m}"
    );
    assert!(
        m.contains("bulwark_control_token_limiter_keys{limiter=\"client_failures\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("bulwark_control_tokens_issued_total{client=\"worker\"} 20"),
        "{m}"
    );
}

#[tokio::test]
async fn malformed_and_oversized_client_ids_are_refused_before_any_limiter() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let url = format!("{}/oauth/token", h.url);
    let wrong = json(h.token_basic("nobody", "not-the-secret", &[]).await).await;
    let keys_before = metrics(&h).await;
    let post = |id: String, secret: String| {
        let (http, url) = (h.http.clone(), url.clone());
        async move {
            http.post(&url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for id in [
        "a".repeat(64),
        "Worker".into(),
        "worker\u{0}".into(),
        "w\u{f6}rker".into(),
        "1worker".into(),
        "worker;drop".into(),
        String::new(),
    ] {
        let r = post(id.clone(), "not-the-secret".into()).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{id:?}");
        assert_eq!(json(r).await, wrong, "{id:?}: same body as a wrong secret");
    }
    // An oversized secret is not hashed.
    let r = post("worker".into(), "s".repeat(257)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(r).await, wrong);
    // A 60 KB client id cannot even be sent: the body is refused before it is parsed, the
    // Basic header before it is decoded.
    let huge = "a".repeat(60_000);
    let t = std::time::Instant::now();
    let r = post(huge.clone(), "x".into()).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = h.token_basic(&huge, "x", &[]).await;
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // None of these added a limiter key.
    let limiter_lines = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("bulwark_control_token_limiter_keys"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        limiter_lines(&metrics(&h).await),
        limiter_lines(&keys_before)
    );
    assert!(
        keys_before.contains("bulwark_control_token_limiter_keys{limiter=\"address\"} 1"),
        "{keys_before}"
    );
}

#[tokio::test]
async fn oversized_authorization_and_body_are_refused_with_json_errors() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let url = format!("{}/oauth/token", h.url);
    let r = h
        .http
        .post(&url)
        .header("authorization", format!("Basic {}", "A".repeat(5 * 1024)))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(json(r).await["error"], "invalid_request");

    let body = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(20 * 1024)
    );
    let r = h
        .http
        .post(&url)
        .basic_auth("worker", Some(h.secret("worker")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.headers()["connection"],
        "close",
        "the unread rest of the body is not drained"
    );
    let body = json(r).await;
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("too large")
    );
    // Right at the limits, requests are served.
    let r = h
        .token_basic(
            "worker",
            &h.secret("worker"),
            &[("scope", "temporal:default:write")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A body that announces no length (chunked) and runs past the limit is refused with the
/// same 413, through the router directly: the harness's HTTP client always sends a length.
#[tokio::test]
async fn an_unannounced_oversized_body_is_refused_with_413() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let key = std::sync::Arc::new(
        bulwark_token_issuer::signer::KeyFile::open(
            h.certs.join("temporal-jwt-private.key"),
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let state = bulwark_control::AppState {
        issuer: std::sync::Arc::new(bulwark_token_issuer::TokenIssuer::new(
            h.store.clone(),
            key,
            IssuerSettings::default(),
        )),
        certs_dir: h.certs.clone(),
        base_url: h.url.clone(),
        metrics: Default::default(),
    };
    let mut req = axum::http::Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::new(Unannounced(20)))
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((
            [127, 0, 0, 5],
            1,
        ))));
    let res = bulwark_control::app(state).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// `n` frames of 1 KiB with no size hint, as a chunked upload looks to the server.
struct Unannounced(u32);

impl hyper::body::Body for Unannounced {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(axum::body::Bytes::from(
            vec![b'a'; 1024],
        )))))
    }
}

/// Two (and more) rotations of one client at the same time: each gets its own version, the
/// versions stay dense, exactly one secret is current, and it is the last one handed out.
#[tokio::test]
async fn concurrent_secret_rotations_of_one_client_are_serialised() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    const N: usize = 6;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (store, barrier) = (h.store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .rotate_secret("worker", time::Duration::hours(1))
                .await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().expect("every rotation succeeds"));
    }
    let mut versions: Vec<i32> = results.iter().map(|(v, _)| *v).collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=(N as i32 + 1)).collect::<Vec<_>>());
    let rows: Vec<(i32, bool)> = sqlx::query_as(
        "SELECT version, expires_at IS NULL FROM oauth_client_secrets WHERE client_id = 'worker' ORDER BY version",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    let stored: Vec<i32> = rows.iter().map(|(v, _)| *v).collect();
    assert_eq!(stored, (1..=(N as i32 + 1)).collect::<Vec<_>>());
    let current: Vec<i32> = rows.iter().filter(|(_, c)| *c).map(|(v, _)| *v).collect();
    assert_eq!(
        current,
        [N as i32 + 1],
        "exactly one current secret, the newest"
    );
    // Every secret handed out works during the grace window, the newest one included.
    for (_, secret) in &results {
        assert_eq!(
            h.token_basic("worker", secret.expose(), &[]).await.status(),
            StatusCode::OK
        );
    }
    // A malformed id is refused before the database.
    assert!(matches!(
        h.store.rotate_secret("Worker", time::Duration::ZERO).await,
        Err(bulwark_token_issuer::Error::InvalidClientId(_))
    ));
}

#[tokio::test]
async fn metadata_health_metrics_and_no_secret_in_responses() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let meta: Value = h
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", h.url));
    assert_eq!(meta["grant_types_supported"][0], "client_credentials");
    assert_eq!(
        h.http
            .get(format!("{}/readyz", h.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let secret = h.secret("worker");
    let mut seen = String::new();
    for r in [
        h.token_basic("worker", &secret, &[("scope", "bogus")])
            .await,
        h.token_basic("worker", &format!("{secret}x"), &[]).await,
        h.token_basic("worker", &secret, &[]).await,
    ] {
        seen.push_str(&r.text().await.unwrap());
    }
    let metrics = h
        .http
        .get(format!("{}/metrics", h.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    seen.push_str(&metrics);
    assert!(
        !seen.contains(&secret),
        "a client secret appeared in a response"
    );
    assert!(
        metrics.contains("bulwark_control_tokens_issued_total{client=\"worker\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bulwark_control_token_errors_total{error=\"invalid_client\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_rotated_signing_key_is_used_without_restart() {
    let Some(h) = support::start(IssuerSettings::default()).await else {
        return;
    };
    let before = json(h.token_basic("worker", &h.secret("worker"), &[]).await).await;
    bulwark_pki::generate(
        &h.certs,
        &bulwark_pki::Settings::default(),
        bulwark_pki::Mode::Rotate(&["jwt-key".into()]),
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    // The key file is re-checked every 50 ms in the harness; poll for the new kid.
    let kid = |t: &Value| {
        let h = t["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_owned();
        use base64::Engine;
        let v: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap();
        v["kid"].as_str().unwrap().to_owned()
    };
    let old_kid = kid(&before);
    let mut new_kid = old_kid.clone();
    for _ in 0..100 {
        let t = json(h.token_basic("worker", &h.secret("worker"), &[]).await).await;
        new_kid = kid(&t);
        if new_kid != old_kid {
            verify(
                t["access_token"].as_str().unwrap(),
                &jwks(&h).await,
                OffsetDateTime::now_utc(),
                &VerifyOptions::new(time::Duration::minutes(15)),
            )
            .unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_ne!(new_kid, old_kid);
    // Both keys are published during the overlap.
    let set = jwks(&h).await;
    assert!(set.find(&old_kid).is_some() && set.find(&new_kid).is_some());
}
