//! `/healthz`, `/readyz` and `/metrics`.
//!
//! Ready means: the SDK worker is running, the last token refresh succeeded and the token is
//! valid, and Temporal itself reports a recent poller with this worker's identity on both the
//! workflow and the activity side of the task queue (a live process with zero pollers is not
//! ready).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use bulwark_temporal::{Client, PollerKind};
use bulwark_token_client::TokenManager;
use time::OffsetDateTime;

/// Counters rendered as Prometheus text. Keys are `name{labels}`.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        let mut key = name.to_owned();
        if !labels.is_empty() {
            let parts: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace(['"', '\\', '\n'], "_")))
                .collect();
            key = format!("{name}{{{}}}", parts.join(","));
        }
        *self
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
    }

    #[cfg(test)]
    pub fn get(&self, key: &str) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
            .unwrap_or_default()
    }

    fn render(&self, out: &mut String) {
        let map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut last_name = "";
        for (k, v) in map.iter() {
            let name = k.split('{').next().unwrap_or(k);
            if name != last_name {
                out.push_str(&format!("# TYPE {name} counter\n"));
                last_name = name;
            }
            out.push_str(&format!("{k} {v}\n"));
        }
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
    if let Some(e) = token_error {
        return Some(format!(
            "cannot authenticate: last token refresh failed: {e}"
        ));
    }
    if !token_valid {
        return Some("cannot authenticate: no valid access token".into());
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
        loop {
            tick.tick().await;
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
        let mut out = String::new();
        self.metrics.render(&mut out);
        let m = self.tokens.metrics();
        out.push_str("# TYPE bulwark_worker_token_refreshes_total counter\n");
        out.push_str(&format!(
            "bulwark_worker_token_refreshes_total {}\n",
            m.refreshes
        ));
        out.push_str("# TYPE bulwark_worker_token_refresh_failures_total counter\n");
        out.push_str(&format!(
            "bulwark_worker_token_refresh_failures_total {}\n",
            m.failures
        ));
        let ready = u8::from(self.readiness().is_none());
        out.push_str("# TYPE bulwark_worker_ready gauge\n");
        out.push_str(&format!("bulwark_worker_ready {ready}\n"));
        let pollers = self
            .pollers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        out.push_str("# TYPE bulwark_worker_active_pollers gauge\n");
        out.push_str(&format!(
            "bulwark_worker_active_pollers{{kind=\"workflow\"}} {}\n",
            u8::from(pollers.workflow)
        ));
        out.push_str(&format!(
            "bulwark_worker_active_pollers{{kind=\"activity\"}} {}\n",
            u8::from(pollers.activity)
        ));
        out
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
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.render_metrics(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn fresh_pollers(now: OffsetDateTime) -> PollerCheck {
        PollerCheck {
            at: Some(now),
            workflow: true,
            activity: true,
            error: None,
        }
    }

    #[test]
    fn readiness_requires_everything() {
        let now = OffsetDateTime::now_utc();
        let age = Duration::from_secs(30);
        let p = fresh_pollers(now);
        assert_eq!(
            not_ready_reason(true, false, true, None, &p, now, age),
            None
        );
        assert!(
            not_ready_reason(true, true, true, None, &p, now, age)
                .unwrap()
                .contains("shutting")
        );
        let r = not_ready_reason(
            true,
            false,
            true,
            Some("invalid_client".into()),
            &p,
            now,
            age,
        );
        assert!(r.unwrap().contains("cannot authenticate"));
        assert!(
            not_ready_reason(true, false, false, None, &p, now, age)
                .unwrap()
                .contains("no valid")
        );
        assert!(
            not_ready_reason(false, false, true, None, &p, now, age)
                .unwrap()
                .contains("not running")
        );
        let none = PollerCheck {
            workflow: false,
            activity: false,
            ..p.clone()
        };
        assert!(
            not_ready_reason(true, false, true, None, &none, now, age)
                .unwrap()
                .contains("no active pollers")
        );
        let half = PollerCheck {
            activity: false,
            ..p.clone()
        };
        assert!(
            not_ready_reason(true, false, true, None, &half, now, age)
                .unwrap()
                .contains("activity")
        );
        let stale = PollerCheck {
            at: Some(now - Duration::from_secs(60)),
            ..p.clone()
        };
        assert!(
            not_ready_reason(true, false, true, None, &stale, now, age)
                .unwrap()
                .contains("stale")
        );
        let err = PollerCheck {
            error: Some("PermissionDenied".into()),
            ..p
        };
        assert!(
            not_ready_reason(true, false, true, None, &err, now, age)
                .unwrap()
                .contains("PermissionDenied")
        );
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = Metrics::default();
        m.inc("bulwark_worker_activities_total", &[("activity", "greet")]);
        m.inc("bulwark_worker_activities_total", &[("activity", "greet")]);
        m.inc(
            "bulwark_worker_credential_resolutions_total",
            &[("result", "ok")],
        );
        let mut s = String::new();
        m.render(&mut s);
        assert!(
            s.contains("bulwark_worker_activities_total{activity=\"greet\"} 2\n"),
            "{s}"
        );
        assert_eq!(
            s.matches("# TYPE bulwark_worker_activities_total counter")
                .count(),
            1
        );
        assert_eq!(
            m.get("bulwark_worker_credential_resolutions_total{result=\"ok\"}"),
            1
        );
    }
}
