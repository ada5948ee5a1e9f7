#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
use std::io::Write as _;
use std::sync::atomic::Ordering;

use bulwark_secrets::{api_key_ref, oauth_client_ref};
use bulwark_workflows::{HttpCallInput, failure_type};

use super::super::HttpCallPolicy;
use super::super::testkit::{
    CAP, LogBuf, PLANTED, STREAM_CHUNKS, activities, assert_clean, call, pki, policy, serve,
};

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
    let tricked = reqwest::Url::parse(&format!("https://localhost:{pa}@evil.example/")).unwrap();
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
