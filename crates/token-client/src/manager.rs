//! The token manager: cached token, single-flight refresh, background
//! schedule, backoff and hooks.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderMap};
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::credentials::{self, ClientCredentials, CredentialNames, CredentialSource, ProcessEnv};
use crate::endpoint::{ClientAuthMethod, Endpoint, Granted};
use crate::error::{AuthError, Result};
use crate::policy::RefreshPolicy;
use crate::token::{AccessToken, LifetimeSource, TokenParts, jwt_kid, jwt_lifetime};

/// Called with every new token, in order, right after it is installed.
///
/// Runs synchronously inside the refresh, so it must be quick and must not
/// call back into [`TokenManager::on_refresh`]. A panic is caught and counted.
pub type RefreshHook = Arc<dyn Fn(&AccessToken) + Send + Sync>;

/// Observable state of the refresh machinery, e.g. for a readiness probe.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RefreshStatus {
    /// Completed attempts (successful or not).
    pub attempts: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When the background refresher will next try (refresh or retry).
    pub next_attempt_at: Option<Instant>,
    /// The error of the last attempt, if it failed.
    pub last_error: Option<AuthError>,
    /// When the current token was requested.
    pub last_success_at: Option<Instant>,
}

/// Counters since construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Requests sent to the token endpoint.
    pub requests: u64,
    /// Tokens obtained.
    pub refreshes: u64,
    /// Failed attempts (including credential discovery failures).
    pub failures: u64,
    /// Credential discoveries performed (cache misses).
    pub discoveries: u64,
    /// Refresh hooks that panicked.
    pub hook_panics: u64,
    /// JWKS documents fetched by the revocation watch.
    pub jwks_checks: u64,
    /// Refreshes forced because the current token's key left the JWKS.
    pub revocations: u64,
}

#[derive(Debug, Default)]
struct Metrics {
    requests: AtomicU64,
    refreshes: AtomicU64,
    failures: AtomicU64,
    discoveries: AtomicU64,
    hook_panics: AtomicU64,
    jwks_checks: AtomicU64,
    revocations: AtomicU64,
}

/// Default interval of [`TokenManager::start_revocation_watch`].
pub const DEFAULT_JWKS_WATCH_INTERVAL: Duration = Duration::from_secs(10);

/// Obtains and keeps fresh an OAuth2 client-credentials access token.
///
/// Cloning is cheap and clones share everything. See the crate docs for an
/// example.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    app: String,
    names: CredentialNames,
    endpoint: Endpoint,
    policy: RefreshPolicy,
    clock: Arc<dyn Clock>,
    env: Arc<dyn CredentialSource>,
    store: Option<Arc<dyn CredentialSource>>,
    credentials: Mutex<Option<Arc<ClientCredentials>>>,
    token: RwLock<Option<AccessToken>>,
    /// Held for the whole of an attempt: this is what makes refresh single-flight.
    refresh_lock: tokio::sync::Mutex<()>,
    /// Bumped (under `refresh_lock`) when an attempt completes; lets a caller
    /// that queued behind an attempt take its outcome instead of repeating it.
    attempts: AtomicU64,
    generation: AtomicU64,
    status: watch::Sender<RefreshStatus>,
    tokens: watch::Sender<Option<AccessToken>>,
    hooks: Mutex<Vec<RefreshHook>>,
    metrics: Metrics,
    background: AtomicBool,
    /// The issuer's JWKS, watched for the revocation of our token's key.
    jwks_url: reqwest::Url,
    watching: AtomicBool,
    jitter_seed: AtomicU64,
}

impl TokenManager {
    /// Starts configuring a manager for `app` against `token_url`.
    pub fn builder(token_url: impl Into<String>, app: impl Into<String>) -> TokenManagerBuilder {
        TokenManagerBuilder {
            token_url: token_url.into(),
            app: app.into(),
            scopes: Vec::new(),
            auth_method: ClientAuthMethod::default(),
            ca: None,
            client_cert: None,
            policy: RefreshPolicy::default(),
            clock: Arc::new(SystemClock),
            env: Arc::new(ProcessEnv),
            store: None,
            jwks_url: None,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// A token valid now: the cached one unless it is missing, no longer
    /// usable, or `force_refresh` is set.
    ///
    /// However many callers arrive together, at most one request is in flight;
    /// the others wait for it and share its outcome (token or error). While a
    /// failed refresh is backing off, callers without a usable token get the
    /// last error instead of adding load to a struggling endpoint; a forced
    /// refresh ignores the backoff.
    ///
    /// Proactive refresh (before expiry) is the background refresher's job;
    /// without [`TokenManager::start_background_refresh`] a token is only
    /// replaced here once it stops being usable.
    pub async fn get_access_token(&self, force_refresh: bool) -> Result<AccessToken> {
        let inner = &*self.inner;
        if !force_refresh {
            if let Some(token) = inner.usable_token() {
                return Ok(token);
            }
        }
        let seen_attempts = inner.attempts.load(Ordering::Acquire);
        let seen_generation = inner.generation.load(Ordering::Acquire);
        let guard = inner.refresh_lock.lock().await;

        if inner.attempts.load(Ordering::Acquire) != seen_attempts {
            if let Some(token) = inner.usable_token() {
                if !force_refresh || token.generation() != seen_generation {
                    return Ok(token);
                }
            }
            if let Some(err) = inner.status.borrow().last_error.clone() {
                return Err(err);
            }
        }
        if !force_refresh {
            let status = inner.status.borrow();
            let backing_off = status.consecutive_failures > 0
                && status
                    .next_attempt_at
                    .is_some_and(|at| inner.clock.now() < at);
            if backing_off {
                if let Some(err) = status.last_error.clone() {
                    return Err(err);
                }
            }
        }
        inner.refresh_locked(&guard).await
    }

    /// `Authorization: Bearer <token>` for a valid token; the value is marked
    /// sensitive.
    pub async fn authenticated_headers(&self) -> Result<HeaderMap> {
        let token = self.get_access_token(false).await?;
        let mut headers = HeaderMap::with_capacity(1);
        headers.insert(AUTHORIZATION, token.bearer_header());
        Ok(headers)
    }

    /// Wall-clock expiry of the current token, if there is one with a known lifetime.
    pub fn token_expiry_time(&self) -> Option<SystemTime> {
        self.inner.current()?.expiry_time()
    }

    /// Time left before the current token expires (zero once expired); `None`
    /// without a token or with an unknown lifetime.
    pub fn time_until_expiry(&self) -> Option<Duration> {
        let expires_at = self.inner.current()?.expires_at()?;
        Some(expires_at.saturating_duration_since(self.inner.clock.now()))
    }

    /// Whether a token is cached and still usable (before expiry minus leeway).
    pub fn is_token_valid(&self) -> bool {
        self.inner.usable_token().is_some()
    }

    /// The cached token, usable or not.
    pub fn current_token(&self) -> Option<AccessToken> {
        self.inner.current()
    }

    /// Forgets the discovered client credentials, so the next refresh reads
    /// them again (after a secret rotation). The cached token is kept: it is
    /// still valid and dropping it would only make callers wait.
    pub fn clear_cache(&self) {
        self.inner.clear_credentials();
    }

    /// Registers a hook called with every new token, and immediately with the
    /// current one if there is one, so the consumer always ends up holding
    /// the newest token. Typical use: `client.set_api_key(Some(token))` on a
    /// Temporal client.
    pub fn on_refresh(&self, hook: RefreshHook) {
        let mut hooks = self
            .inner
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Read the current token while holding the hooks lock: an install
        // that races with us calls hooks under the same lock, so whichever
        // order happens, the last call this hook sees carries the newest token.
        if let Some(token) = self.inner.current() {
            self.inner.call_hook(&hook, &token);
        }
        hooks.push(hook);
    }

    /// A channel that always holds the newest token; an alternative to hooks
    /// for consumers that run their own task.
    pub fn subscribe(&self) -> watch::Receiver<Option<AccessToken>> {
        self.inner.tokens.subscribe()
    }

    /// Current refresh status.
    pub fn status(&self) -> RefreshStatus {
        self.inner.status.borrow().clone()
    }

    /// A channel that changes after every refresh attempt.
    pub fn watch_status(&self) -> watch::Receiver<RefreshStatus> {
        self.inner.status.subscribe()
    }

    /// When the background refresher will next act (refresh or retry).
    pub fn next_refresh_at(&self) -> Option<Instant> {
        self.inner.status.borrow().next_attempt_at
    }

    /// Counters since construction.
    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.inner.metrics;
        MetricsSnapshot {
            requests: m.requests.load(Ordering::Relaxed),
            refreshes: m.refreshes.load(Ordering::Relaxed),
            failures: m.failures.load(Ordering::Relaxed),
            discoveries: m.discoveries.load(Ordering::Relaxed),
            hook_panics: m.hook_panics.load(Ordering::Relaxed),
            jwks_checks: m.jwks_checks.load(Ordering::Relaxed),
            revocations: m.revocations.load(Ordering::Relaxed),
        }
    }

    /// The app this manager authenticates as.
    pub fn app(&self) -> &str {
        &self.inner.app
    }

    /// The environment variable and store key names credentials are read from.
    pub fn credential_names(&self) -> &CredentialNames {
        &self.inner.names
    }

    /// Starts the background refresher on the current Tokio runtime
    /// (idempotent). It fetches a token right away, refreshes it on the
    /// policy's schedule, retries failures with backoff, and stops by itself
    /// once every clone of the manager is dropped.
    pub fn start_background_refresh(&self) -> Result<()> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| AuthError::config("background refresh needs a Tokio runtime"))?;
        if self.inner.background.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        runtime.spawn(run_refresher(
            Arc::downgrade(&self.inner),
            self.inner.status.subscribe(),
            Arc::clone(&self.inner.clock),
        ));
        Ok(())
    }

    /// Starts the revocation watch on the current Tokio runtime (idempotent):
    /// every `interval` the issuer's JWKS is fetched (over the same HTTPS
    /// client and CA as the token endpoint; by default
    /// `<token URL origin>/.well-known/jwks.json`) and, when the current
    /// token's `kid` is no longer in it, a new token is fetched at once
    /// (single flight) and handed to the hooks, so a key revoked by the
    /// issuer stops being presented without a restart. A fetch that fails
    /// changes nothing: the token is kept. Opaque tokens (no `kid`) are not
    /// checked. Stops by itself once every clone of the manager is dropped.
    pub fn start_revocation_watch(&self, interval: Duration) -> Result<()> {
        if interval.is_zero() {
            return Err(AuthError::config(
                "the JWKS watch interval must be positive",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| AuthError::config("the revocation watch needs a Tokio runtime"))?;
        if self.inner.watching.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // The first deadline is fixed here, not when the task first runs, so the
        // schedule does not depend on task start-up latency.
        let first = self.inner.clock.now() + interval;
        runtime.spawn(run_revocation_watch(
            Arc::downgrade(&self.inner),
            Arc::clone(&self.inner.clock),
            interval,
            first,
        ));
        Ok(())
    }
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let credentials = inner
            .credentials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        f.debug_struct("TokenManager")
            .field("app", &inner.app)
            .field("token_url", &inner.endpoint.url.as_str())
            .field("auth_method", &inner.endpoint.auth)
            .field("scope", &inner.endpoint.scope)
            .field("credentials", &credentials)
            .field("token", &inner.current())
            .field("status", &*inner.status.borrow())
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn current(&self) -> Option<AccessToken> {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn usable_token(&self) -> Option<AccessToken> {
        let now = self.clock.now();
        let guard = self.token.read().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().filter(|t| t.is_usable_at(now)).cloned()
    }

    fn clear_credentials(&self) {
        *self
            .credentials
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn credentials(&self) -> Result<Arc<ClientCredentials>> {
        if let Some(c) = self
            .credentials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(c);
        }
        self.metrics.discoveries.fetch_add(1, Ordering::Relaxed);
        let found = Arc::new(
            credentials::discover(&self.app, &self.names, &*self.env, self.store.as_deref())
                .await?,
        );
        tracing::debug!(app = %self.app, origin = ?found.origin(), "discovered OAuth client credentials");
        *self
            .credentials
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&found));
        Ok(found)
    }

    /// One attempt. The guard proves the caller holds `refresh_lock`.
    async fn refresh_locked(
        &self,
        _guard: &tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<AccessToken> {
        let sent_at = self.clock.now();
        let sent_wall = self.clock.system_now();
        let outcome = match self.credentials().await {
            Ok(creds) => {
                self.metrics.requests.fetch_add(1, Ordering::Relaxed);
                self.endpoint.request(&creds).await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(granted) => Ok(self.install(granted, sent_at, sent_wall)),
            Err(err) => Err(self.record_failure(err)),
        }
    }

    fn install(&self, granted: Granted, sent_at: Instant, sent_wall: SystemTime) -> AccessToken {
        let (lifetime, lifetime_source) = resolve_lifetime(&granted, sent_wall);
        let generation = self.generation.load(Ordering::Acquire) + 1;
        let token = AccessToken::new(TokenParts {
            value: granted.access_token,
            header: granted.header,
            scope: granted.scope,
            generation,
            obtained_at: sent_at,
            obtained_wall: sent_wall,
            lifetime,
            lifetime_source,
            leeway: lifetime.map_or(Duration::ZERO, |l| self.policy.leeway_for(l)),
            refresh_delay: self.policy.refresh_delay(lifetime),
        });
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        self.generation.store(generation, Ordering::Release);
        self.attempts.fetch_add(1, Ordering::AcqRel);
        self.metrics.refreshes.fetch_add(1, Ordering::Relaxed);
        self.status.send_modify(|s| {
            s.attempts += 1;
            s.consecutive_failures = 0;
            s.next_attempt_at = Some(token.refresh_at());
            s.last_error = None;
            s.last_success_at = Some(sent_at);
        });
        tracing::info!(
            app = %self.app,
            generation,
            lifetime_secs = lifetime.map(|l| l.as_secs()),
            lifetime_source = ?lifetime_source,
            refresh_in_secs = token.refresh_at().saturating_duration_since(sent_at).as_secs(),
            "obtained access token"
        );
        self.tokens.send_replace(Some(token.clone()));
        let hooks = self.hooks.lock().unwrap_or_else(PoisonError::into_inner);
        for hook in hooks.iter() {
            self.call_hook(hook, &token);
        }
        token
    }

    fn record_failure(&self, err: AuthError) -> AuthError {
        // The secret may have been rotated (invalid_client) or the store may
        // now hold different values; read them afresh on the next attempt.
        self.clear_credentials();
        let failures = self.status.borrow().consecutive_failures.saturating_add(1);
        let mut delay = match &err {
            AuthError::OAuth { .. } => self.policy.refused_backoff(failures, self.jitter()),
            _ => self.policy.backoff(failures, self.jitter()),
        };
        if let AuthError::RateLimited {
            retry_after: Some(after),
        } = &err
        {
            delay = delay.max((*after).min(self.policy.max_refresh_delay));
        }
        let next = self.clock.now() + delay;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        self.metrics.failures.fetch_add(1, Ordering::Relaxed);
        self.status.send_modify(|s| {
            s.attempts += 1;
            s.consecutive_failures = failures;
            s.next_attempt_at = Some(next);
            s.last_error = Some(err.clone());
        });
        tracing::warn!(
            app = %self.app,
            error = %err,
            consecutive_failures = failures,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            token_still_usable = self.usable_token().is_some(),
            "access token refresh failed"
        );
        err
    }

    fn call_hook(&self, hook: &RefreshHook, token: &AccessToken) {
        if std::panic::catch_unwind(AssertUnwindSafe(|| hook(token))).is_err() {
            self.metrics.hook_panics.fetch_add(1, Ordering::Relaxed);
            tracing::error!(app = %self.app, "token refresh hook panicked");
        }
    }

    /// A value in `[0, 1)`; std's randomly keyed hasher is plenty to spread
    /// retries and avoids a dependency on a RNG crate.
    fn jitter(&self) -> f64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(self.jitter_seed.fetch_add(1, Ordering::Relaxed));
        (h.finish() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The `kid`s the issuer publishes now. Reasons are fixed strings: the body is never quoted.
    async fn published_kids(&self) -> std::result::Result<Vec<String>, String> {
        #[derive(serde::Deserialize)]
        struct Key {
            kid: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<Key>,
        }
        self.metrics.jwks_checks.fetch_add(1, Ordering::Relaxed);
        let response = self
            .endpoint
            .http
            .get(self.jwks_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| AuthError::transport(e).to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP status {}", response.status().as_u16()));
        }
        let body = crate::endpoint::read_limited(response)
            .await
            .map_err(|e| e.to_string())?;
        let doc: Document =
            serde_json::from_slice(&body).map_err(|_| "not a JWK Set document".to_owned())?;
        Ok(doc.keys.into_iter().filter_map(|k| k.kid).collect())
    }

    /// One revocation check; `failures` counts consecutive fetch failures (logging only).
    async fn check_revocation(&self, failures: &mut u32) {
        let Some(token) = self.current() else {
            return;
        };
        let Some(kid) = jwt_kid(token.expose_secret()) else {
            return;
        };
        let kids = match self.published_kids().await {
            Ok(kids) => {
                *failures = 0;
                kids
            }
            Err(reason) => {
                *failures = failures.saturating_add(1);
                // Warn once per outage, not every interval; the token stays in use.
                if *failures == 1 {
                    tracing::warn!(app = %self.app, url = %self.jwks_url, reason = %reason, "JWKS fetch failed; keeping the current token");
                } else {
                    tracing::debug!(app = %self.app, url = %self.jwks_url, reason = %reason, failures = *failures, "JWKS fetch failed; keeping the current token");
                }
                return;
            }
        };
        if kids.contains(&kid) {
            return;
        }
        let guard = self.refresh_lock.lock().await;
        // Somebody refreshed while we fetched: that token is checked next time.
        if self.current().map(|t| t.generation()) != Some(token.generation()) {
            return;
        }
        tracing::warn!(app = %self.app, kid = %kid, "the current token's signing key is no longer published (revoked); fetching a new token");
        self.metrics.revocations.fetch_add(1, Ordering::Relaxed);
        // The outcome is recorded in the status; a failure is retried by the refresher.
        let _ = self.refresh_locked(&guard).await;
    }

    /// Background attempt, skipped if somebody else refreshed while we waited.
    async fn background_refresh(&self) {
        let guard = self.refresh_lock.lock().await;
        let due = self.status.borrow().next_attempt_at;
        if due.is_some_and(|at| at > self.clock.now()) {
            return;
        }
        // The outcome is recorded in the status; callers see it from there.
        let _ = self.refresh_locked(&guard).await;
    }
}

/// The smaller of `expires_in` and the JWT's own `exp - iat` (the token dies
/// at whichever comes first); falls back to the JWT when `expires_in` is absent.
fn resolve_lifetime(
    granted: &Granted,
    sent_wall: SystemTime,
) -> (Option<Duration>, LifetimeSource) {
    let jwt = jwt_lifetime(granted.access_token.expose_secret(), sent_wall);
    match (granted.expires_in, jwt) {
        (Some(e), Some((j, LifetimeSource::JwtIssuedAt))) => {
            (Some(e.min(j)), LifetimeSource::ExpiresIn)
        }
        (Some(e), _) => (Some(e), LifetimeSource::ExpiresIn),
        (None, Some((j, source))) => (Some(j), source),
        (None, None) => (None, LifetimeSource::Unknown),
    }
}

async fn run_refresher(
    inner: Weak<Inner>,
    mut status: watch::Receiver<RefreshStatus>,
    clock: Arc<dyn Clock>,
) {
    loop {
        let due = status
            .borrow_and_update()
            .next_attempt_at
            .unwrap_or_else(|| clock.now());
        tokio::select! {
            () = clock.sleep_until(due) => {}
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.background_refresh().await;
    }
}

/// Checks on a fixed grid (`first + k * interval`); ticks missed while a check
/// ran long are skipped rather than run back to back.
async fn run_revocation_watch(
    inner: Weak<Inner>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    first: Instant,
) {
    let mut failures = 0u32;
    let mut next = first;
    loop {
        clock.sleep_until(next).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.check_revocation(&mut failures).await;
        drop(inner);
        next += interval;
        let now = clock.now();
        if next < now {
            next = now + interval;
        }
    }
}

/// Configuration for a [`TokenManager`]; see [`TokenManager::builder`].
pub struct TokenManagerBuilder {
    token_url: String,
    app: String,
    scopes: Vec<String>,
    auth_method: ClientAuthMethod,
    ca: Option<CaBundle>,
    client_cert: Option<Arc<bulwark_tls::Reloading>>,
    policy: RefreshPolicy,
    clock: Arc<dyn Clock>,
    env: Arc<dyn CredentialSource>,
    store: Option<Arc<dyn CredentialSource>>,
    jwks_url: Option<String>,
    request_timeout: Duration,
    connect_timeout: Duration,
}

enum CaBundle {
    File(PathBuf),
    Pem(Vec<u8>),
}

impl fmt::Debug for TokenManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManagerBuilder")
            .field("token_url", &self.token_url)
            .field("app", &self.app)
            .field("scopes", &self.scopes)
            .field("auth_method", &self.auth_method)
            .field(
                "ca",
                &self.ca.as_ref().map(|c| match c {
                    CaBundle::File(p) => p.display().to_string(),
                    CaBundle::Pem(_) => "<pem>".to_owned(),
                }),
            )
            .field(
                "client_certificate",
                &self.client_cert.as_ref().map(|c| c.fingerprint()),
            )
            .field("policy", &self.policy)
            .field("clock", &self.clock)
            .field("env", &self.env)
            .field("store", &self.store)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl TokenManagerBuilder {
    /// Trust only the CA certificates in this PEM file (Bulwark's own CA)
    /// instead of the built-in public roots.
    pub fn ca_bundle_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(CaBundle::File(path.into()));
        self
    }

    /// Like [`TokenManagerBuilder::ca_bundle_file`] with the PEM in memory.
    pub fn ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(CaBundle::Pem(pem.into()));
        self
    }

    /// Present this client certificate (mutual TLS) to the token endpoint, so
    /// that tokens for Temporal can be bound to it. Each new TLS connection
    /// uses the certificate the holder has at that moment, so a certificate
    /// rotated on disk (and reloaded by the holder's watcher) is used without
    /// rebuilding the manager. Pass the same holder the service gives its
    /// Temporal connection: a token is bound to the certificate it is fetched
    /// with. Needs a CA bundle ([`TokenManagerBuilder::ca_bundle_file`] or
    /// [`TokenManagerBuilder::ca_bundle_pem`]).
    pub fn client_certificate(mut self, cert: Arc<bulwark_tls::Reloading>) -> Self {
        self.client_cert = Some(cert);
        self
    }

    /// Scopes to request (sent space-separated); none means the client's
    /// default set.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `client_secret_basic` (default) or `client_secret_post`.
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = method;
        self
    }

    /// Refresh schedule and backoff.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Time source (tests pass a [`crate::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where `BULWARK_<APP>_CLIENT_*` are read; the process environment by
    /// default. Tests substitute a [`crate::MemorySource`] because changing
    /// the real environment is unsafe in a multi-threaded process.
    pub fn environment(mut self, env: Arc<dyn CredentialSource>) -> Self {
        self.env = env;
        self
    }

    /// The deployment secret store, consulted when the environment has no
    /// credentials.
    pub fn secret_store(mut self, store: Arc<dyn CredentialSource>) -> Self {
        self.store = Some(store);
        self
    }

    /// The JWKS the revocation watch reads; by default
    /// `<token URL origin>/.well-known/jwks.json`. Must be https.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Whole-request timeout (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// TCP+TLS connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Validates the configuration and builds the manager. No request is made
    /// until a token is asked for or the background refresher is started.
    pub fn build(self) -> Result<TokenManager> {
        validate_app(&self.app)?;
        self.policy.validate()?;
        let url = reqwest::Url::parse(&self.token_url)
            .map_err(|_| AuthError::config("token URL is not a valid URL"))?;
        // The client secret travels in this request: never in clear text.
        if url.scheme() != "https" {
            return Err(AuthError::config("token URL must use https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AuthError::config("token URL must not embed credentials"));
        }
        if url.fragment().is_some() {
            return Err(AuthError::config("token URL must not have a fragment"));
        }
        let jwks_url = match &self.jwks_url {
            Some(u) => reqwest::Url::parse(u)
                .map_err(|_| AuthError::config("JWKS URL is not a valid URL"))?,
            None => url
                .join("/.well-known/jwks.json")
                .map_err(|_| AuthError::config("cannot derive the JWKS URL from the token URL"))?,
        };
        if jwks_url.scheme() != "https" {
            return Err(AuthError::config("JWKS URL must use https"));
        }
        for scope in &self.scopes {
            // RFC 6749 section 3.3 scope-token characters.
            let valid = !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(AuthError::config(format!("invalid scope token {scope:?}")));
            }
        }

        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            // A token endpoint has no business redirecting, and following one
            // would send the client credentials somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            // The endpoint is inside the appliance; an ambient HTTPS_PROXY
            // must not get to see client credentials.
            .no_proxy()
            // Bulwark's listeners close a connection that sends no request for 10 s
            // (BULWARK_HTTP_HEADER_TIMEOUT). Reusing one at that moment races the server's
            // close, and the JWKS watch polls every 10 s, so it hit the race about once a
            // minute; dropping idle connections first means every reuse is of a live one.
            .pool_idle_timeout(Duration::from_secs(5))
            .user_agent(concat!("bulwark-token-client/", env!("CARGO_PKG_VERSION")));
        let ca = match &self.ca {
            Some(CaBundle::File(path)) => Some((
                std::fs::read(path).map_err(|e| {
                    AuthError::config(format!("cannot read CA bundle {}: {e}", path.display()))
                })?,
                path.display().to_string(),
            )),
            Some(CaBundle::Pem(pem)) => Some((pem.clone(), "in-memory PEM".to_owned())),
            None => None,
        };
        match (&self.client_cert, ca) {
            (Some(cert), Some((pem, what))) => {
                // reqwest cannot take a certificate resolver, only a whole rustls
                // configuration; the roots go into it too (reqwest's own root
                // settings do not apply to a preconfigured one).
                let roots = bulwark_tls::roots_from_pem(std::path::Path::new(&what), &pem)
                    .map_err(|e| AuthError::config(format!("CA bundle {e}")))?;
                let tls = bulwark_tls::client_config(roots, Some(cert.clone()))
                    .map_err(|e| AuthError::config(format!("client TLS configuration: {e}")))?;
                http = http.use_preconfigured_tls(tls);
            }
            (Some(_), None) => {
                // Without a bundle, the public roots would vouch for the endpoint the
                // client certificate is shown to; Bulwark's is always under its own CA.
                return Err(AuthError::config(
                    "a client certificate needs a CA bundle (ca_bundle_file or ca_bundle_pem)",
                ));
            }
            (None, Some((pem, what))) => {
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|_| AuthError::config(format!("CA bundle {what} is not valid PEM")))?;
                if certs.is_empty() {
                    return Err(AuthError::config(format!(
                        "CA bundle {what} holds no certificate"
                    )));
                }
                http = http.tls_built_in_root_certs(false);
                for cert in certs {
                    http = http.add_root_certificate(cert);
                }
            }
            (None, None) => {}
        }
        let http = http
            .build()
            .map_err(|_| AuthError::config("cannot build the HTTPS client"))?;

        let (status, _) = watch::channel(RefreshStatus::default());
        let (tokens, _) = watch::channel(None);
        Ok(TokenManager {
            inner: Arc::new(Inner {
                names: CredentialNames::for_app(&self.app),
                app: self.app,
                endpoint: Endpoint {
                    http,
                    url,
                    scope: (!self.scopes.is_empty()).then(|| self.scopes.join(" ")),
                    auth: self.auth_method,
                },
                policy: self.policy,
                clock: self.clock,
                env: self.env,
                store: self.store,
                credentials: Mutex::new(None),
                token: RwLock::new(None),
                refresh_lock: tokio::sync::Mutex::new(()),
                attempts: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                status,
                tokens,
                hooks: Mutex::new(Vec::new()),
                metrics: Metrics::default(),
                background: AtomicBool::new(false),
                jwks_url,
                watching: AtomicBool::new(false),
                jitter_seed: AtomicU64::new(0),
            }),
        })
    }
}

fn validate_app(app: &str) -> Result<()> {
    let ok = !app.is_empty()
        && app.len() <= 64
        && app
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AuthError::config(
            "app name must be 1-64 characters of [A-Za-z0-9_-]",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_rejects_unsafe_configuration() {
        let err = |url: &str, app: &str| {
            TokenManager::builder(url, app)
                .build()
                .unwrap_err()
                .to_string()
        };
        assert!(err("http://control:8443/oauth/token", "api").contains("https"));
        assert!(err("https://u:p@control/oauth/token", "api").contains("credentials"));
        assert!(err("not a url", "api").contains("valid URL"));
        assert!(err("https://control/oauth/token", "").contains("app name"));
        assert!(err("https://control/oauth/token", "a b").contains("app name"));
        let e = TokenManager::builder("https://control/oauth/token", "api")
            .scopes(["ok", "bad scope"])
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("scope"));
        let e = TokenManager::builder("https://control/oauth/token", "api")
            .ca_bundle_pem(b"not pem".to_vec())
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("CA bundle"), "{e}");
        let e = TokenManager::builder("https://control/oauth/token", "api")
            .ca_bundle_file("/nonexistent/ca.crt")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.crt"), "{e}");
    }

    #[test]
    fn lifetime_takes_the_earlier_expiry() {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwt = format!(
            "{}.{}.s",
            e.encode("{}"),
            e.encode(r#"{"iat":100,"exp":700}"#)
        );
        let granted = |expires_in: Option<u64>, token: &str| Granted {
            access_token: crate::SecretString::new(token),
            header: reqwest::header::HeaderValue::from_static("Bearer x"),
            expires_in: expires_in.map(Duration::from_secs),
            scope: None,
        };
        let now = SystemTime::now();
        assert_eq!(
            resolve_lifetime(&granted(Some(900), &jwt), now),
            (Some(Duration::from_secs(600)), LifetimeSource::ExpiresIn)
        );
        assert_eq!(
            resolve_lifetime(&granted(Some(300), &jwt), now),
            (Some(Duration::from_secs(300)), LifetimeSource::ExpiresIn)
        );
        assert_eq!(
            resolve_lifetime(&granted(None, &jwt), now),
            (Some(Duration::from_secs(600)), LifetimeSource::JwtIssuedAt)
        );
        assert_eq!(
            resolve_lifetime(&granted(None, "opaque"), now),
            (None, LifetimeSource::Unknown)
        );
    }
}
