//! `/metrics` of the gate: calls by method, decision and status, call latency, reloads, the
//! audit store's queue, and the TLS listener's connection counters.
//!
//! Labels come from fixed vocabularies only: `method` is a catalog method or `unknown`
//! (never the path a caller sent), `decision` allow/deny, `status` a gRPC code.

use std::sync::Arc;

use bulwark_gate_policy::Method;
use bulwark_serve::{
    Stats,
    metrics::{Listeners, Registry},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};

use crate::audit::Decision;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    method: String,
    decision: &'static str,
    status: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    what: &'static str,
    result: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<DecisionLabels, Histogram>,
    reloads: Family<ReloadLabels, Counter>,
    store_queue_full: Counter,
    upstream_ready: Gauge,
    listeners: Arc<Listeners>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let calls = Family::default();
        let latency = Family::<DecisionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 75.0,
            ])
        });
        let reloads = Family::default();
        let store_queue_full = Counter::default();
        let upstream_ready = Gauge::default();
        let listeners = Arc::new(Listeners::default());
        registry.register(
            "bulwark_gate_calls",
            "calls by method, decision and gRPC status",
            calls.clone(),
        );
        registry.register(
            "bulwark_gate_call_duration_seconds",
            "time from request to the end of the response, by decision",
            latency.clone(),
        );
        registry.register(
            "bulwark_gate_reloads",
            "reloads of the policy, JWKS and client trust, by result",
            reloads.clone(),
        );
        registry.register(
            "bulwark_gate_audit_queue_full",
            "mutating-call records not queued for Postgres because the queue was full (they are still logged)",
            store_queue_full.clone(),
        );
        registry.register(
            "bulwark_gate_upstream_ready",
            "1 when the last health check of Temporal's frontend through the gate's own connection succeeded",
            upstream_ready.clone(),
        );
        registry.register_collector(Box::new(listeners.clone()));
        Self {
            registry,
            calls,
            latency,
            reloads,
            store_queue_full,
            upstream_ready,
            listeners,
        }
    }
}

impl Metrics {
    pub fn call(
        &self,
        method: Option<&'static Method>,
        decision: Decision,
        status: Option<i32>,
        latency_ms: f64,
    ) {
        let method = method.map_or_else(|| "unknown".to_owned(), Method::short);
        self.calls
            .get_or_create(&CallLabels {
                method,
                decision: decision.as_str(),
                status: status.unwrap_or(-1),
            })
            .inc();
        self.latency
            .get_or_create(&DecisionLabels {
                decision: decision.as_str(),
            })
            .observe(latency_ms / 1000.0);
    }

    pub fn reload(&self, what: &'static str, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                what,
                result: if ok { "ok" } else { "refused" },
            })
            .inc();
    }

    pub fn store_queue_full(&self) {
        self.store_queue_full.inc();
    }

    pub fn set_upstream_ready(&self, ready: bool) {
        self.upstream_ready.set(i64::from(ready));
    }

    pub fn add_listener(&self, stats: Arc<Stats>) {
        self.listeners.add(stats);
    }

    pub fn render(&self) -> String {
        bulwark_serve::metrics::render(&self.registry)
    }
}
