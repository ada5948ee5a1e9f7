#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A planted client secret and token value never appear in any error's
//! Display/Debug (including its source chain), in the manager's Debug, or in
//! this crate's log output, even when the endpoint echoes them back.

mod support;

use std::error::Error as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

use bulwark_token_client::{AuthError, ManualClock, MemorySource, TokenManager};
use support::{Mode, TokenServer};

const SECRET: &str = "PLANTED-SECRET-5f1c9e";
const TOKEN_MARKER: &str = "PLANTEDTOKEN7d41a2";
const APP: &str = "billing";

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

fn everything_about(err: &AuthError) -> String {
    let mut text = format!("{err}\n{err:?}\n{err:#?}\n");
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    text
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} leaks the secret:\n{text}");
    assert!(
        !text.contains(TOKEN_MARKER),
        "{what} leaks the token:\n{text}"
    );
}

#[tokio::test]
async fn planted_secret_and_token_never_leak() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("bulwark_token_client=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _log_guard = tracing::subscriber::set_default(subscriber);

    let server = TokenServer::start().await;
    server.add_client("billing-client", SECRET);
    *server.state.token_marker.lock().unwrap() = TOKEN_MARKER.to_owned();
    let store = MemorySource::new()
        .with("billing_client_id", "billing-client")
        .with("billing_client_secret", SECRET);
    let clock = ManualClock::new();
    let manager = TokenManager::builder(&server.url, APP)
        .ca_bundle_file(&server.ca_path)
        .clock(Arc::new(clock.clone()))
        .environment(Arc::new(MemorySource::new()))
        .secret_store(Arc::new(store.clone()))
        .build()
        .unwrap();

    let token = manager.get_access_token(false).await.unwrap();
    assert!(token.expose_secret().contains(TOKEN_MARKER), "planted");
    let mut errors = Vec::new();

    // Every failure shape the endpoint can produce; the server echoes the
    // presented secret and the last token into each body.
    for mode in [
        Mode::Status(400),
        Mode::Status(401),
        Mode::Status(500),
        Mode::RateLimited(5),
        Mode::RawOk(format!(
            "{{\"access_token\": \"{TOKEN_MARKER}\", \"token_type\": \"{SECRET}\"}}"
        )),
        Mode::RawOk(format!(
            "{{\"access_token\": \"{TOKEN_MARKER}\", \"token_type\": \"Bearer\", \"expires_in\": \"{SECRET}\"}}"
        )),
        Mode::RawOk(format!("{SECRET} {TOKEN_MARKER} not json")),
        Mode::RawOk(format!(
            "{{\"access_token\": \"{TOKEN_MARKER}\n\", \"token_type\": \"Bearer\"}}"
        )),
    ] {
        server.set_mode(mode);
        errors.push(manager.get_access_token(true).await.unwrap_err());
    }
    server.set_mode(Mode::Normal);

    // Wrong secret at the server: a real invalid_client.
    server.add_client("billing-client", "rotated-away");
    errors.push(manager.get_access_token(true).await.unwrap_err());

    // Credential problems.
    let env = MemorySource::new().with("BULWARK_BILLING_CLIENT_SECRET", SECRET);
    let half = TokenManager::builder(&server.url, APP)
        .ca_bundle_file(&server.ca_path)
        .environment(Arc::new(env))
        .secret_store(Arc::new(store.clone()))
        .build()
        .unwrap();
    errors.push(half.get_access_token(false).await.unwrap_err());
    store.remove("billing_client_id");
    manager.clear_cache();
    errors.push(manager.get_access_token(true).await.unwrap_err());

    // Transport failure (untrusted server certificate).
    let untrusted = TokenManager::builder(&server.url, APP)
        .ca_bundle_pem(support::test_pki().0)
        .environment(Arc::new(
            MemorySource::new()
                .with("BULWARK_BILLING_CLIENT_ID", "billing-client")
                .with("BULWARK_BILLING_CLIENT_SECRET", SECRET),
        ))
        .build()
        .unwrap();
    errors.push(untrusted.get_access_token(false).await.unwrap_err());

    let kinds: Vec<String> = errors.iter().map(|e| format!("{e}")).collect();
    assert_eq!(errors.len(), 12, "{kinds:#?}");
    for err in &errors {
        assert_clean("error", &everything_about(err));
    }
    // Sanity: the server really did echo the values back to us.
    assert!(
        server
            .seen()
            .iter()
            .any(|s| s.client_secret.as_deref() == Some(SECRET))
    );

    // The manager still holds the planted token and has cached credentials.
    store.set("billing_client_id", "billing-client");
    server.add_client("billing-client", SECRET);
    manager.clear_cache();
    let token = manager.get_access_token(true).await.unwrap();
    assert!(token.expose_secret().contains(TOKEN_MARKER));
    let status = manager.status();
    let headers = manager.authenticated_headers().await.unwrap();
    for (what, text) in [
        ("manager Debug", format!("{manager:?} {manager:#?}")),
        ("half manager Debug", format!("{half:?}")),
        ("token Debug", format!("{token:?}")),
        ("status Debug", format!("{status:?}")),
        ("headers Debug", format!("{headers:?}")),
        ("store Debug", format!("{store:?}")),
    ] {
        assert_clean(what, &text);
    }
    assert!(format!("{token:?}").contains("\"...\""));

    drop(_log_guard);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("refresh failed"),
        "logs were captured: {logs}"
    );
    assert_clean("logs", &logs);
}
