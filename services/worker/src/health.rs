//! `/healthz`, `/readyz` and `/metrics`.
//!
//! Ready means: the SDK worker is running, the last token refresh succeeded and the token is
//! valid, and Temporal itself reports a recent poller with this worker's identity on both the
//! workflow and the activity side of the task queue (a live process with zero pollers is not
//! ready).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use bulwark_temporal::{Client, PollerKind};
use bulwark_token_client::TokenManager;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

/// Label values are activity names and failure types from this crate's code, never from a
/// workflow's input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActivityLabel {
    activity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabels {
    activity: String,
    r#type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The worker's one metrics registry: activity and credential counters, readiness and
/// pollers (set at scrape time), and the token manager's counters (read at scrape time).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    activities: Family<ActivityLabel, Counter>,
    activity_failures: Family<FailureLabels, Counter>,
    credential_resolutions: Family<ResultLabel, Counter>,
    ready: Gauge,
    active_pollers: Family<KindLabel, Gauge>,
    tokens: Arc<TokenCounters>,
}

impl Default for Metrics {
    fn default() -> Self {
        let (activities, activity_failures, credential_resolutions) =
            (Family::default(), Family::default(), Family::default());
        let (ready, active_pollers) = (Gauge::default(), Family::default());
        let tokens = Arc::new(TokenCounters::default());
        let mut registry = Registry::default();
        // Counters without `_total`: the encoder appends it.
        registry.register(
            "bulwark_worker_activities",
            "activity executions, by activity",
            activities.clone(),
        );
        registry.register(
            "bulwark_worker_activity_failures",
            "failed activity executions, by activity and failure type",
            activity_failures.clone(),
        );
        registry.register(
            "bulwark_worker_credential_resolutions",
            "credential references resolved, by result",
            credential_resolutions.clone(),
        );
        registry.register_collector(Box::new(tokens.clone()));
        registry.register(
            "bulwark_worker_ready",
            "1 when /readyz answers ready",
            ready.clone(),
        );
        registry.register(
            "bulwark_worker_active_pollers",
            "1 when Temporal sees a fresh poller of this worker, by task kind",
            active_pollers.clone(),
        );
        Self {
            registry,
            activities,
            activity_failures,
            credential_resolutions,
            ready,
            active_pollers,
            tokens,
        }
    }
}

impl Metrics {
    /// An activity ran.
    pub fn activity(&self, activity: &str) {
        self.activities
            .get_or_create(&ActivityLabel {
                activity: activity.to_owned(),
            })
            .inc();
    }

    /// An activity failed with the failure type `kind`.
    pub fn activity_failed(&self, activity: &str, kind: &str) {
        self.activity_failures
            .get_or_create(&FailureLabels {
                activity: activity.to_owned(),
                r#type: kind.to_owned(),
            })
            .inc();
    }

    /// A credential reference was resolved, or failed to resolve.
    pub fn credential_resolution(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.credential_resolutions
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Include `tokens`' counters in every scrape (the first call wins: one process, one
    /// token manager).
    pub fn watch_tokens(&self, tokens: &TokenManager) {
        self.tokens.0.get_or_init(|| tokens.clone());
    }

    fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail, and nothing registered here fails otherwise.
        if let Err(e) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

/// The token manager's counters, read at scrape time: it counts them itself.
#[derive(Debug, Default)]
struct TokenCounters(OnceLock<TokenManager>);

impl Collector for TokenCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(tokens) = self.0.get() else {
            return Ok(());
        };
        let m = tokens.metrics();
        for (name, help, value) in [
            (
                "bulwark_worker_token_refreshes",
                "access tokens obtained",
                m.refreshes,
            ),
            (
                "bulwark_worker_token_refresh_failures",
                "failed token refresh attempts",
                m.failures,
            ),
        ] {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        Ok(())
    }
}

/// The last poller observation.
#[derive(Debug, Clone, Default)]
pub struct PollerCheck {
    pub at: Option<OffsetDateTime>,
    pub workflow: bool,
    pub activity: bool,
    pub error: Option<String>,
}

/// Shared readiness state.
#[derive(Debug)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub running: AtomicBool,
    pub shutting_down: AtomicBool,
    pub tokens: TokenManager,
    pub client: Mutex<Option<Client>>,
    pub pollers: Mutex<PollerCheck>,
    pub task_queue: String,
    /// A poll older than this does not count.
    pub poll_freshness: Duration,
}

/// Why the worker is not ready, or `None` when it is.
pub fn not_ready_reason(
    running: bool,
    shutting_down: bool,
    token_valid: bool,
    token_error: Option<String>,
    pollers: &PollerCheck,
    now: OffsetDateTime,
    check_max_age: Duration,
) -> Option<String> {
    if shutting_down {
        return Some("shutting down".into());
    }
    // A failed refresh alone is not a reason: the token held is still accepted, and the
    // worker keeps working until it expires (control may be down for a while).
    if !token_valid {
        return Some(match token_error {
            Some(e) => format!(
                "cannot authenticate: no valid access token; last token refresh failed: {e}"
            ),
            None => "cannot authenticate: no valid access token".into(),
        });
    }
    if !running {
        return Some("worker is not running (not connected to Temporal yet)".into());
    }
    if let Some(e) = &pollers.error {
        return Some(format!("cannot check pollers: {e}"));
    }
    match pollers.at {
        None => return Some("pollers not checked yet".into()),
        Some(at) if now - at > check_max_age => {
            return Some("poller check is stale".into());
        }
        Some(_) => {}
    }
    match (pollers.workflow, pollers.activity) {
        (true, true) => None,
        (false, false) => Some("no active pollers on the task queue".into()),
        (false, true) => Some("no active workflow-task poller".into()),
        (true, false) => Some("no active activity-task poller".into()),
    }
}

impl Health {
    fn client(&self) -> Option<Client> {
        self.client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn readiness(&self) -> Option<String> {
        let status = self.tokens.status();
        let token_error = if status.consecutive_failures > 0 {
            status.last_error.map(|e| e.to_string())
        } else {
            None
        };
        let pollers = self
            .pollers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        not_ready_reason(
            self.running.load(Ordering::Acquire),
            self.shutting_down.load(Ordering::Acquire),
            self.tokens.is_token_valid(),
            token_error,
            &pollers,
            OffsetDateTime::now_utc(),
            Duration::from_secs(30),
        )
    }

    /// Asks Temporal which pollers it sees, every `interval`.
    pub async fn watch_pollers(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut token = self.tokens.subscribe();
        loop {
            // A new token (control back after an outage) is checked at once rather than at
            // the next tick, so readiness follows recovery within a second or two.
            tokio::select! {
                _ = tick.tick() => {}
                changed = token.changed() => {
                    if changed.is_err() {
                        tick.tick().await;
                    } else {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            let Some(client) = self.client() else {
                continue;
            };
            let identity = client.identity().to_owned();
            let now = OffsetDateTime::now_utc();
            let fresh = |list: Vec<bulwark_temporal::Poller>| {
                list.iter().any(|p| {
                    p.identity == identity
                        && p.last_access
                            .is_some_and(|t| now - t <= self.poll_freshness)
                })
            };
            let wf = client
                .task_queue_pollers(&self.task_queue, PollerKind::Workflow)
                .await;
            let act = client
                .task_queue_pollers(&self.task_queue, PollerKind::Activity)
                .await;
            let check = match (wf, act) {
                (Ok(w), Ok(a)) => PollerCheck {
                    at: Some(now),
                    workflow: fresh(w),
                    activity: fresh(a),
                    error: None,
                },
                (Err(e), _) | (_, Err(e)) => PollerCheck {
                    at: Some(now),
                    workflow: false,
                    activity: false,
                    error: Some(e.to_string()),
                },
            };
            *self.pollers.lock().unwrap_or_else(PoisonError::into_inner) = check;
        }
    }

    fn render_metrics(&self) -> String {
        self.metrics.watch_tokens(&self.tokens);
        self.metrics
            .ready
            .set(i64::from(self.readiness().is_none()));
        let pollers = self
            .pollers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (kind, seen) in [
            ("workflow", pollers.workflow),
            ("activity", pollers.activity),
        ] {
            self.metrics
                .active_pollers
                .get_or_create(&KindLabel { kind })
                .set(i64::from(seen));
        }
        self.metrics.render()
    }
}

pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    match h.readiness() {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

async fn metrics(State(h): State<Arc<Health>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
        h.render_metrics(),
    )
}

#[cfg(test)]
mod tests;
