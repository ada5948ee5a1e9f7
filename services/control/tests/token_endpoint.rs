//! The token endpoint over real HTTPS against a real database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bulwark_oauth::IssuerSettings;
use bulwark_pki::jwt::{Jwks, VerifyOptions, verify};
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
    assert!(r.status().is_client_error());
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

#[tokio::test]
async fn rate_limited_per_client_with_retry_after() {
    let settings = IssuerSettings {
        per_client_per_second: 0.5,
        per_client_burst: 3,
        ..IssuerSettings::default()
    };
    let Some(h) = support::start(settings).await else {
        return;
    };
    for _ in 0..3 {
        assert_eq!(
            h.token_basic("worker", "guess", &[]).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = h.token_basic("worker", &h.secret("worker"), &[]).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "guessing must not be unlimited"
    );
    assert!(r.headers().contains_key("retry-after"));
    // Other clients are not affected.
    assert_eq!(
        h.token_basic("api", &h.secret("api"), &[]).await.status(),
        StatusCode::OK
    );
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
