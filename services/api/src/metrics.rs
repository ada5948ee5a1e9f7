//! `/metrics`: request counters by route and status, plus the listener's connection
//! counters, in one registry (see `bulwark_serve::metrics`).

use std::sync::Arc;

use bulwark_serve::{
    Stats,
    metrics::{Listeners, Registry},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};

/// `route` is the matched route template (or `unmatched`), never the request's path, and
/// `status` a status code this service chose: nothing a caller sends becomes a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// Connection counters of the HTTPS listener.
    listeners: Arc<Listeners>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        let listeners = Arc::new(Listeners::default());
        registry.register(
            "bulwark_api_requests",
            "requests answered, by route and status",
            requests.clone(),
        );
        registry.register_collector(Box::new(listeners.clone()));
        Self {
            registry,
            requests,
            listeners,
        }
    }
}

impl Metrics {
    pub(crate) fn inc(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// Include a listener's connection counters in `/metrics`.
    pub fn add_listener(&self, stats: Arc<Stats>) {
        self.listeners.add(stats);
    }

    pub(crate) fn render(&self) -> String {
        bulwark_serve::metrics::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn requests_and_listeners_render_under_their_old_names() {
        let m = Metrics::default();
        m.inc("/api/v1/workflows", 202);
        m.inc("/api/v1/workflows", 202);
        m.inc("unmatched", 404);
        m.add_listener(Arc::new(Stats::new("api")));
        let text = m.render();
        for line in [
            "# TYPE bulwark_api_requests_total counter",
            "bulwark_api_requests_total{route=\"/api/v1/workflows\",status=\"202\"} 2",
            "bulwark_api_requests_total{route=\"unmatched\",status=\"404\"} 1",
            "bulwark_http_connections_accepted_total{listener=\"api\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
