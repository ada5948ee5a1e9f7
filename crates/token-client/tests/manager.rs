#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The token manager against a real HTTPS token endpoint, on a manual clock.
//!
//! Virtual time never moves by itself, so every refresh instant asserted here
//! is exact; the tests wait on the manager's channels, never on sleeps (a
//! real-time timeout only guards against a hang).

mod support;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulwark_token_client::{
    AccessToken, AuthError, ClientAuthMethod, CredentialSource, LifetimeSource, ManualClock,
    MemorySource, OAuthErrorCode, TokenManager,
};
use support::{Mode, TokenServer};

const APP: &str = "order-worker";
const ID: &str = "order-worker-client";
const SECRET: &str = "first-secret-value";
const MIN: Duration = Duration::from_secs(60);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

struct Harness {
    server: TokenServer,
    clock: ManualClock,
    env: MemorySource,
    store: MemorySource,
    manager: TokenManager,
}

impl Harness {
    /// Server knows (ID, SECRET); the secret store holds them; env is empty.
    async fn new(expires_in: Option<u64>) -> Self {
        let server = TokenServer::start().await;
        server.add_client(ID, SECRET);
        server.set_expires_in(expires_in);
        let clock = ManualClock::new();
        let env = MemorySource::new();
        let store = MemorySource::new()
            .with("order_worker_client_id", ID)
            .with("order_worker_client_secret", SECRET);
        let manager = TokenManager::builder(&server.url, APP)
            .ca_bundle_file(&server.ca_path)
            .clock(Arc::new(clock.clone()))
            .environment(Arc::new(env.clone()))
            .secret_store(Arc::new(store.clone()))
            .build()
            .unwrap();
        Self {
            server,
            clock,
            env,
            store,
            manager,
        }
    }

    /// Waits until the manager holds a token of at least `generation`.
    async fn token(&self, generation: u64) -> AccessToken {
        let mut rx = self.manager.subscribe();
        let t = within(&format!("token generation {generation}"), async {
            rx.wait_for(|t| t.as_ref().is_some_and(|t| t.generation() >= generation))
                .await
                .unwrap()
                .clone()
        })
        .await;
        t.unwrap()
    }

    /// Waits until `attempts` refresh attempts have completed.
    async fn attempts(&self, attempts: u64) {
        let mut rx = self.manager.watch_status();
        within(&format!("{attempts} attempts"), async {
            rx.wait_for(|s| s.attempts >= attempts).await.unwrap();
        })
        .await;
    }

    fn at(&self, after_start: Duration) -> Instant {
        self.clock.start() + after_start
    }
}

/// Refresh instants for 1 h, 10 min and 2 min tokens with the production
/// policy, and what happens at those instants.
#[tokio::test]
async fn refresh_schedule_for_1h_10min_and_2min_tokens() {
    // (lifetime, expected delay): 80% clamped to [5, 30] min, capped at
    // expiry - 60 s. The seeds' formula gave 5 min for the 2-min token.
    for (lifetime, expected) in [(60 * MIN, 30 * MIN), (10 * MIN, 8 * MIN), (2 * MIN, MIN)] {
        let h = Harness::new(Some(lifetime.as_secs())).await;
        h.manager.start_background_refresh().unwrap();
        let first = h.token(1).await;
        let t0 = h.clock.start();
        assert_eq!(first.obtained_at(), t0);
        assert_eq!(first.lifetime(), Some(lifetime));
        assert_eq!(first.lifetime_source(), LifetimeSource::ExpiresIn);
        assert_eq!(first.expires_at(), Some(t0 + lifetime));
        assert_eq!(first.refresh_at(), t0 + expected, "{lifetime:?} token");
        assert_eq!(h.manager.next_refresh_at(), Some(t0 + expected));
        assert_eq!(h.manager.time_until_expiry(), Some(lifetime));

        // One millisecond early: nothing may happen. The next token's
        // obtained_at proves it was requested exactly at the refresh instant
        // (the clock only ever reads `expected - 1ms` or `expected`).
        h.clock.advance_to(t0 + expected - Duration::from_millis(1));
        tokio::task::yield_now().await;
        h.clock.advance_to(t0 + expected);
        let second = h.token(2).await;
        assert_eq!(second.obtained_at(), t0 + expected);
        assert!(
            second.obtained_at() < first.expires_at().unwrap(),
            "refreshed before the old token expired"
        );
        assert!(first.is_usable_at(second.obtained_at()));
        assert_eq!(h.server.requests(), 2);
        // Recomputed from the new token.
        assert_eq!(h.manager.next_refresh_at(), Some(t0 + expected + expected));
    }
}

/// The 2-minute token over several cycles: the holder never has an expired
/// token, and a lifetime change is picked up at the next refresh.
#[tokio::test]
async fn short_tokens_are_always_replaced_before_expiry_and_schedule_is_recomputed() {
    let h = Harness::new(Some(120)).await;
    let holder: Arc<Mutex<Option<AccessToken>>> = Arc::default();
    let sink = Arc::clone(&holder);
    h.manager.on_refresh(Arc::new(move |t| {
        *sink.lock().unwrap() = Some(t.clone());
    }));
    h.manager.start_background_refresh().unwrap();
    h.token(1).await;
    for generation in 2..=5 {
        let due = h.manager.next_refresh_at().unwrap();
        let held = holder.lock().unwrap().clone().unwrap();
        assert!(
            held.is_usable_at(due),
            "held token still valid at refresh time"
        );
        h.clock.advance_to(due);
        let t = h.token(generation).await;
        assert_eq!(t.obtained_at(), due);
        assert_eq!(
            holder.lock().unwrap().as_ref().unwrap().generation(),
            generation
        );
    }
    assert_eq!(h.clock.elapsed(), 4 * MIN);

    // The server switches to 1-hour tokens: the next refresh is 30 min out.
    h.server.set_expires_in(Some(3600));
    let due = h.manager.next_refresh_at().unwrap();
    h.clock.advance_to(due);
    let t = h.token(6).await;
    assert_eq!(t.refresh_at(), due + 30 * MIN);
}

#[tokio::test]
async fn unknown_lifetime_refreshes_after_14_minutes() {
    let h = Harness::new(None).await;
    h.manager.start_background_refresh().unwrap();
    let t = h.token(1).await;
    assert_eq!(t.lifetime(), None);
    assert_eq!(t.lifetime_source(), LifetimeSource::Unknown);
    assert_eq!(h.manager.token_expiry_time(), None);
    assert_eq!(h.manager.next_refresh_at(), Some(h.at(14 * MIN)));
    h.clock.advance_to(h.at(14 * MIN));
    assert_eq!(h.token(2).await.obtained_at(), h.at(14 * MIN));
}

/// 100 callers on an empty cache, all in flight together: one request.
/// Then 100 concurrent forced refreshes: one more request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_callers_send_exactly_one_request() {
    let h = Harness::new(Some(900)).await;
    for (force, expected_requests) in [(false, 1), (true, 2)] {
        h.server.hold();
        let started = Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let m = h.manager.clone();
            let started = Arc::clone(&started);
            tasks.push(tokio::spawn(async move {
                started.add_permits(1);
                m.get_access_token(force).await
            }));
        }
        // The request is held at the server until every caller is running.
        h.server.wait_for_requests(expected_requests).await;
        within("all callers started", started.acquire_many(100))
            .await
            .unwrap()
            .forget();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        h.server.release();
        let mut generations = Vec::new();
        for t in tasks {
            generations.push(within("caller", t).await.unwrap().unwrap().generation());
        }
        assert!(generations.iter().all(|g| *g == expected_requests as u64));
        assert_eq!(h.server.requests(), expected_requests);
        assert_eq!(h.manager.metrics().requests, expected_requests as u64);
    }
}

/// The endpoint fails (500, then invalid_client after a secret rotation),
/// callers keep the still-valid token, credentials are re-read after each
/// failure, and the manager recovers once the store has the new secret.
#[tokio::test]
async fn failure_then_recovery_with_rediscovered_credentials() {
    let h = Harness::new(Some(600)).await;
    h.manager.start_background_refresh().unwrap();
    let first = h.token(1).await;
    assert_eq!(h.manager.metrics().discoveries, 1);
    assert_eq!(h.manager.next_refresh_at(), Some(h.at(8 * MIN)));

    // 1. The endpoint breaks at the refresh instant.
    h.server.set_mode(Mode::Status(500));
    h.clock.advance_to(h.at(8 * MIN));
    h.attempts(2).await;
    let status = h.manager.status();
    assert_eq!(status.consecutive_failures, 1);
    assert!(matches!(
        status.last_error,
        Some(AuthError::HttpStatus { status: 500 })
    ));
    let retry_at = status.next_attempt_at.unwrap();
    let backoff = retry_at - h.at(8 * MIN);
    assert!(backoff >= Duration::from_millis(500) && backoff <= Duration::from_secs(1));
    // Callers are still served the current token, without new requests.
    let requests = h.server.requests();
    for _ in 0..10 {
        let t = h.manager.get_access_token(false).await.unwrap();
        assert_eq!(t.generation(), first.generation());
    }
    assert!(h.manager.is_token_valid());
    assert_eq!(h.server.requests(), requests);

    // 2. The secret is rotated at the server; the store still has the old one.
    h.server.set_mode(Mode::Normal);
    h.server.add_client(ID, "second-secret-value");
    h.clock.advance_to(retry_at);
    h.attempts(3).await;
    let status = h.manager.status();
    assert_eq!(status.consecutive_failures, 2);
    let err = status.last_error.unwrap();
    assert_eq!(err.oauth_code(), Some(OAuthErrorCode::InvalidClient));
    assert_eq!(err.http_status(), Some(401));
    // The cache was cleared after failure 1, so attempt 3 re-read the store.
    assert_eq!(h.manager.metrics().discoveries, 2);
    let backoff = status.next_attempt_at.unwrap() - retry_at;
    assert!(backoff >= Duration::from_secs(1) && backoff <= Duration::from_secs(2));
    assert_eq!(
        h.manager
            .get_access_token(false)
            .await
            .unwrap()
            .generation(),
        1
    );

    // 3. The deployment store gets the rotated secret; the next retry works.
    h.store
        .set("order_worker_client_secret", "second-secret-value");
    let retry_at = h.manager.next_refresh_at().unwrap();
    h.clock.advance_to(retry_at);
    let second = h.token(2).await;
    assert_eq!(second.obtained_at(), retry_at);
    assert_eq!(h.manager.metrics().discoveries, 3);
    assert_eq!(
        h.server.seen().last().unwrap().client_secret.as_deref(),
        Some("second-secret-value")
    );
    let status = h.manager.status();
    assert_eq!(status.consecutive_failures, 0);
    assert!(status.last_error.is_none());
    assert_eq!(
        h.manager.next_refresh_at(),
        Some(retry_at + 8 * MIN),
        "normal schedule resumes"
    );
    let m = h.manager.metrics();
    assert_eq!((m.refreshes, m.failures), (2, 2));
}

/// Once the token has expired during an outage, callers get the error, not
/// the stale token; a forced refresh ignores the backoff.
#[tokio::test]
async fn expired_token_is_never_served_during_an_outage() {
    let h = Harness::new(Some(600)).await;
    h.manager.start_background_refresh().unwrap();
    h.token(1).await;
    h.server.set_mode(Mode::Status(503));
    // Usable until expiry minus the 10 s leeway.
    h.clock.advance_to(h.at(10 * MIN - Duration::from_secs(10)));
    h.attempts(2).await;
    assert!(!h.manager.is_token_valid());
    assert_eq!(h.manager.time_until_expiry(), Some(Duration::from_secs(10)));
    let err = h.manager.get_access_token(false).await.unwrap_err();
    assert!(
        matches!(err, AuthError::HttpStatus { status: 503 }),
        "{err}"
    );
    assert!(h.manager.authenticated_headers().await.is_err());
    h.clock.advance_to(h.at(11 * MIN));
    // Let the background retry due by now fail too, so it cannot race the
    // forced refresh below.
    h.attempts(3).await;
    assert_eq!(h.manager.time_until_expiry(), Some(Duration::ZERO));

    h.server.set_mode(Mode::Normal);
    let t = h.manager.get_access_token(true).await.unwrap();
    assert_eq!(t.generation(), 2);
    assert!(h.manager.is_token_valid());
    let headers = h.manager.authenticated_headers().await.unwrap();
    let value = headers.get("authorization").unwrap();
    assert_eq!(
        value.to_str().unwrap(),
        format!("Bearer {}", t.expose_secret())
    );
    assert!(value.is_sensitive());
}

#[tokio::test]
async fn rate_limiting_is_honoured() {
    let h = Harness::new(Some(900)).await;
    h.server.set_mode(Mode::RateLimited(120));
    let err = h.manager.get_access_token(false).await.unwrap_err();
    assert!(matches!(
        err,
        AuthError::RateLimited {
            retry_after: Some(d)
        } if d == Duration::from_secs(120)
    ));
    assert_eq!(
        h.manager.next_refresh_at(),
        Some(h.at(120 * Duration::from_secs(1)))
    );
    // Callers during the backoff get the error without a new request.
    h.server.set_mode(Mode::Normal);
    assert!(h.manager.get_access_token(false).await.is_err());
    assert_eq!(h.server.requests(), 1);
    h.clock.advance_to(h.at(2 * MIN));
    assert_eq!(
        h.manager
            .get_access_token(false)
            .await
            .unwrap()
            .generation(),
        1
    );
}

/// Env beats store; store is used when env is missing; both missing is an
/// error naming the app and the variable names. Observed at the server.
#[tokio::test]
async fn credential_discovery_order_seen_by_the_endpoint() {
    let h = Harness::new(Some(900)).await;
    h.server.add_client("env-client", "env-secret-value");
    h.env.set("BULWARK_ORDER_WORKER_CLIENT_ID", "env-client");
    h.env
        .set("BULWARK_ORDER_WORKER_CLIENT_SECRET", "env-secret-value");

    h.manager.get_access_token(false).await.unwrap();
    assert_eq!(h.server.seen()[0].client_id.as_deref(), Some("env-client"));
    assert_eq!(h.server.seen()[0].method, "basic");

    // Cached: removing env changes nothing until the cache is cleared.
    h.env.remove("BULWARK_ORDER_WORKER_CLIENT_ID");
    h.env.remove("BULWARK_ORDER_WORKER_CLIENT_SECRET");
    h.manager.get_access_token(true).await.unwrap();
    assert_eq!(h.server.seen()[1].client_id.as_deref(), Some("env-client"));
    h.manager.clear_cache();
    h.manager.get_access_token(true).await.unwrap();
    assert_eq!(h.server.seen()[2].client_id.as_deref(), Some(ID));

    h.store.remove("order_worker_client_id");
    h.store.remove("order_worker_client_secret");
    h.manager.clear_cache();
    let err = h.manager.get_access_token(true).await.unwrap_err();
    assert!(matches!(err, AuthError::MissingCredentials { .. }));
    let msg = err.to_string();
    for name in [
        "order-worker",
        "BULWARK_ORDER_WORKER_CLIENT_ID",
        "BULWARK_ORDER_WORKER_CLIENT_SECRET",
        "order_worker_client_id",
        "order_worker_client_secret",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
    for value in ["env-secret-value", SECRET, "env-client"] {
        assert!(!msg.contains(value) && !format!("{err:?}").contains(value));
    }
    assert_eq!(h.server.requests(), 3, "no request without credentials");
    // The previous token is still handed out meanwhile.
    assert_eq!(
        h.manager
            .get_access_token(false)
            .await
            .unwrap()
            .generation(),
        3
    );
}

#[tokio::test]
async fn client_secret_post_and_scopes() {
    let server = TokenServer::start().await;
    server.add_client(ID, "secret with spaces & symbols:+%");
    let store = MemorySource::new().with("order_worker_client_id", ID).with(
        "order_worker_client_secret",
        "secret with spaces & symbols:+%",
    );
    let build = |method, scopes: &[&str]| {
        TokenManager::builder(&server.url, APP)
            .ca_bundle_pem(server.ca_pem.clone())
            .auth_method(method)
            .scopes(scopes.iter().copied())
            .environment(Arc::new(MemorySource::new()))
            .secret_store(Arc::new(store.clone()))
            .build()
            .unwrap()
    };
    let t = build(ClientAuthMethod::Post, &["temporal-worker"])
        .get_access_token(false)
        .await
        .unwrap();
    assert_eq!(t.scope(), Some("temporal-worker"));
    let seen = server.seen();
    assert_eq!(seen[0].method, "post");
    assert_eq!(seen[0].scope.as_deref(), Some("temporal-worker"));

    // Basic with characters that need form-encoding, two scopes.
    let t = build(
        ClientAuthMethod::Basic,
        &["temporal-worker", "temporal-client"],
    )
    .get_access_token(false)
    .await
    .unwrap();
    assert_eq!(t.scope(), Some("temporal-worker temporal-client"));
    assert_eq!(server.seen()[1].method, "basic");

    let err = build(ClientAuthMethod::Basic, &["temporal-system"])
        .get_access_token(false)
        .await
        .unwrap_err();
    assert_eq!(err.oauth_code(), Some(OAuthErrorCode::InvalidScope));
    assert_eq!(err.http_status(), Some(400));
}

/// Only the configured CA is trusted; without it the test server's
/// certificate is refused (no silent fallback to accepting anything).
#[tokio::test]
async fn only_the_configured_ca_is_trusted() {
    let server = TokenServer::start().await;
    server.add_client(ID, SECRET);
    let other_ca = support::test_pki().0;
    let store: Arc<dyn CredentialSource> = Arc::new(
        MemorySource::new()
            .with("order_worker_client_id", ID)
            .with("order_worker_client_secret", SECRET),
    );
    for manager in [
        TokenManager::builder(&server.url, APP)
            .ca_bundle_pem(other_ca)
            .environment(Arc::new(MemorySource::new()))
            .secret_store(Arc::clone(&store))
            .build()
            .unwrap(),
        TokenManager::builder(&server.url, APP)
            .environment(Arc::new(MemorySource::new()))
            .secret_store(Arc::clone(&store))
            .build()
            .unwrap(),
    ] {
        let err = manager.get_access_token(false).await.unwrap_err();
        assert!(matches!(err, AuthError::Transport { .. }), "{err:?}");
    }
    assert_eq!(server.requests(), 0);
}

/// A hook that behaves like `temporalio_client::Client::set_api_key`: it is
/// called at once with the current token and then with every new one.
#[tokio::test]
async fn hook_feeds_a_live_client() {
    #[derive(Default)]
    struct FakeTemporalClient {
        api_key: Mutex<Option<String>>,
        calls: Mutex<u32>,
    }
    impl FakeTemporalClient {
        fn set_api_key(&self, key: Option<String>) {
            *self.api_key.lock().unwrap() = key;
            *self.calls.lock().unwrap() += 1;
        }
    }

    let h = Harness::new(Some(900)).await;
    let first = h.manager.get_access_token(false).await.unwrap();
    let client = Arc::new(FakeTemporalClient::default());
    let c = Arc::clone(&client);
    h.manager.on_refresh(Arc::new(move |t| {
        c.set_api_key(Some(t.expose_secret().to_owned()));
    }));
    assert_eq!(
        client.api_key.lock().unwrap().as_deref(),
        Some(first.expose_secret())
    );
    // A panicking hook is contained and counted; the others still run.
    h.manager.on_refresh(Arc::new(|_| panic!("consumer bug")));
    h.manager.start_background_refresh().unwrap();
    h.clock.advance_to(h.at(12 * MIN));
    let second = h.token(2).await;
    assert_eq!(
        client.api_key.lock().unwrap().as_deref(),
        Some(second.expose_secret())
    );
    assert_eq!(*client.calls.lock().unwrap(), 2);
    assert_eq!(h.manager.metrics().hook_panics, 2);
}

#[tokio::test]
async fn background_refresher_stops_when_the_manager_is_dropped() {
    let h = Harness::new(Some(900)).await;
    h.manager.start_background_refresh().unwrap();
    h.manager.start_background_refresh().unwrap();
    h.token(1).await;
    let weak_status = h.manager.watch_status();
    drop(h.manager);
    // The status sender lives in the manager: once every handle (including
    // the refresher's) is gone the channel closes.
    let mut rx = weak_status;
    within("refresher exit", async {
        while rx.changed().await.is_ok() {}
    })
    .await;
    h.clock.advance(60 * MIN);
    assert_eq!(h.server.requests(), 1);
}

const WATCH: Duration = Duration::from_secs(10);

/// The issuer revokes the key that signed our token: within one watch interval
/// a new token is fetched and handed to the hooks (the live Temporal client).
#[tokio::test]
async fn revoked_key_forces_a_new_token_within_the_watch_interval() {
    let h = Harness::new(Some(900)).await;
    h.server.set_kid("key-1");
    h.server.set_jwks(Ok(&["key-1"]));
    let first = h.manager.get_access_token(false).await.unwrap();
    let pushed = Arc::new(Mutex::new(Vec::<String>::new()));
    let p = Arc::clone(&pushed);
    h.manager.on_refresh(Arc::new(move |t| {
        p.lock().unwrap().push(t.expose_secret().to_owned());
    }));
    h.manager.start_revocation_watch(WATCH).unwrap();
    h.manager.start_revocation_watch(WATCH).unwrap();

    // Key still published: checked, nothing fetched.
    h.clock.advance(WATCH);
    within("first JWKS check", h.server.wait_for_jwks_requests(1)).await;

    // Revoke: the issuer signs with a new key and publishes only that one.
    h.server.set_kid("key-2");
    h.server.set_jwks(Ok(&["key-2"]));
    h.clock.advance(WATCH);
    let second = h.token(2).await;
    assert_ne!(second.expose_secret(), first.expose_secret());
    assert_eq!(h.server.requests(), 2);
    assert_eq!(h.manager.metrics().revocations, 1);
    assert_eq!(
        pushed.lock().unwrap().last().map(String::as_str),
        Some(second.expose_secret()),
        "the new token reached the hook"
    );

    // The new token's key is published: two more checks, no further request.
    h.clock.advance(WATCH);
    within("third JWKS check", h.server.wait_for_jwks_requests(3)).await;
    h.clock.advance(WATCH);
    within("fourth JWKS check", h.server.wait_for_jwks_requests(4)).await;
    assert_eq!(h.server.requests(), 2);
    assert_eq!(h.manager.metrics().revocations, 1);
}

/// Key present: every check is a JWKS fetch only.
#[tokio::test]
async fn published_key_causes_no_extra_token_request() {
    let h = Harness::new(Some(900)).await;
    h.server.set_kid("key-1");
    h.server.set_jwks(Ok(&["key-0", "key-1"]));
    h.manager.get_access_token(false).await.unwrap();
    h.manager.start_revocation_watch(WATCH).unwrap();
    for n in 1..=3 {
        h.clock.advance(WATCH);
        within("JWKS check", h.server.wait_for_jwks_requests(n)).await;
    }
    // Request 3 was answered, so checks 1 and 2 have completed.
    assert_eq!(h.server.requests(), 1);
    assert_eq!(h.manager.current_token().unwrap().generation(), 1);
    assert_eq!(h.manager.metrics().revocations, 0);
}

/// An unreachable or failing JWKS changes nothing: the token is kept.
#[tokio::test]
async fn failing_jwks_keeps_the_token() {
    let h = Harness::new(Some(900)).await;
    h.server.set_kid("key-1");
    h.server.set_jwks(Err(503));
    let first = h.manager.get_access_token(false).await.unwrap();
    h.manager.start_revocation_watch(WATCH).unwrap();
    for n in 1..=3 {
        h.clock.advance(WATCH);
        within("JWKS check", h.server.wait_for_jwks_requests(n)).await;
    }
    assert_eq!(h.server.requests(), 1);
    let kept = h.manager.current_token().unwrap();
    assert_eq!(kept.expose_secret(), first.expose_secret());
    assert!(h.manager.is_token_valid());
    assert_eq!(h.manager.metrics().revocations, 0);

    // Nothing listens at this JWKS URL at all: same outcome.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let clock = ManualClock::new();
    let m = TokenManager::builder(&h.server.url, APP)
        .ca_bundle_file(&h.server.ca_path)
        .clock(Arc::new(clock.clone()))
        .environment(Arc::new(h.env.clone()))
        .secret_store(Arc::new(h.store.clone()))
        .jwks_url(format!("https://127.0.0.1:{port}/.well-known/jwks.json"))
        .build()
        .unwrap();
    let t = m.get_access_token(false).await.unwrap();
    m.start_revocation_watch(WATCH).unwrap();
    for n in 1..=3u64 {
        clock.advance(WATCH);
        within("JWKS attempt", async {
            while m.metrics().jwks_checks < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
    // Attempt 3 started, so attempt 2 failed and was handled.
    assert_eq!(
        m.current_token().unwrap().expose_secret(),
        t.expose_secret()
    );
    assert_eq!(m.metrics().revocations, 0);
}

#[tokio::test]
async fn watch_configuration_is_checked() {
    let h = Harness::new(Some(900)).await;
    assert!(h.manager.start_revocation_watch(Duration::ZERO).is_err());
    let e = TokenManager::builder(&h.server.url, APP)
        .jwks_url("http://localhost/.well-known/jwks.json")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("https"), "{e}");
}
