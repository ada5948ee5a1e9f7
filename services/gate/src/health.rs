//! The gate's own health: `/healthz` (the process answers), `/readyz` (a policy and keys are
//! loaded and Temporal's frontend answered a health check over the gate's own connection
//! recently), `/metrics`. Plain HTTP on a loopback or pod-internal address.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

use crate::proxy::Gate;

/// When the frontend last answered SERVING (unix seconds; 0 = never).
#[derive(Debug, Default)]
pub struct Upstream {
    last_ok: AtomicI64,
    last_error: std::sync::Mutex<String>,
}

/// A probe older than this no longer counts: three missed probes.
const STALE_AFTER: i64 = 15;

impl Upstream {
    fn ready(&self) -> Result<(), String> {
        let last = self.last_ok.load(Ordering::Relaxed);
        if last == 0 || time::OffsetDateTime::now_utc().unix_timestamp() - last > STALE_AFTER {
            let e = self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(if e.is_empty() {
                "Temporal's frontend has not answered yet".into()
            } else {
                e
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct HealthState {
    gate: Arc<Gate>,
    upstream: Arc<Upstream>,
}

pub fn app(gate: Arc<Gate>, upstream: Arc<Upstream>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(HealthState { gate, upstream })
}

async fn readyz(State(s): State<HealthState>) -> impl IntoResponse {
    match s.upstream.ready() {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"ready": true, "jwks_keys": s.gate.keys.key_count()})),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"ready": false, "reason": reason})),
        ),
    }
}

async fn metrics(State(s): State<HealthState>) -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            bulwark_serve::metrics::CONTENT_TYPE,
        )],
        s.gate.audit.metrics().render(),
    )
}

/// Asks the frontend `grpc.health.v1.Health/Check` every `interval` over the upstream channel.
pub fn spawn_probe(
    gate: Arc<Gate>,
    upstream: Arc<Upstream>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let result = tokio::time::timeout(Duration::from_secs(5), check(&gate)).await;
            let result = result
                .unwrap_or_else(|_| Err("health check of Temporal's frontend timed out".into()));
            gate.audit.metrics().set_upstream_ready(result.is_ok());
            match result {
                Ok(()) => upstream.last_ok.store(
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                    Ordering::Relaxed,
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "Temporal's frontend is not serving");
                    *upstream
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = e;
                }
            }
        }
    })
}

async fn check(gate: &Gate) -> Result<(), String> {
    // An empty HealthCheckRequest (service ""): the 5-byte prefix of a zero-length message.
    let body = Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]));
    let req = http::Request::builder()
        .method(http::Method::POST)
        .uri("/grpc.health.v1.Health/Check")
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(body))
        .map_err(|e| e.to_string())?;
    let res = gate
        .upstream
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| format!("Temporal's frontend is unreachable: {}", crate::chain(&e)))?;
    let (parts, body) = res.into_parts();
    let collected = body
        .collect()
        .await
        .map_err(|e| format!("health check response: {e}"))?;
    let status = crate::grpc::status_of(&parts.headers)
        .or_else(|| collected.trailers().and_then(crate::grpc::status_of))
        .unwrap_or(-1);
    if status != 0 {
        return Err(format!(
            "Temporal's frontend answered the health check with gRPC status {status}"
        ));
    }
    // HealthCheckResponse { status = 1 (SERVING) }: field 1, varint 1.
    let bytes = collected.to_bytes();
    match crate::grpc::unframe(&bytes) {
        Ok((false, [8, 1])) => Ok(()),
        Ok(_) => Err("Temporal's frontend is not SERVING".into()),
        Err(e) => Err(format!("health check response: {e}")),
    }
}
