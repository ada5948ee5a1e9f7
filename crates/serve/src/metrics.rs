//! What every service's `/metrics` shares: one [`Registry`] per process, into which each
//! part registers its metrics (the listeners through [`Listeners`]), exposed in the
//! Prometheus text format (version 0.0.4) by [`render`] with [`CONTENT_TYPE`].
//!
//! Rule for every label: its values come from a fixed vocabulary chosen by the code (error
//! codes, reasons, route templates, listener names) or from an identity that has already
//! authenticated (a registered client id). Nothing an unauthenticated peer sends becomes a
//! label value, or a peer could grow the registry without bound.
//!
//! Counters are registered without the `_total` suffix: the encoder appends it.

pub use prometheus_client::{self, registry::Registry};

pub use crate::stats::Listeners;

/// `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The registry's metrics in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail, and every metric and collector here only
    // propagates the writer's errors.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        tracing::error!(error = %e, "metrics encoding failed");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use super::*;
    use crate::{Closed, Stats};

    #[test]
    fn listeners_render_with_the_names_they_always_had() {
        let mut registry = Registry::default();
        let listeners = Arc::new(Listeners::default());
        registry.register_collector(Box::new(listeners.clone()));
        let a = Arc::new(Stats::new("public"));
        listeners.add(a.clone());
        listeners.add(Arc::new(Stats::new("admin")));
        a.accepted();
        a.accepted();
        a.closed(Closed::HeaderTimeout);
        a.request_timed_out();
        a.limit_reached();
        let _open = a.open();
        let text = render(&registry);
        for line in [
            "# TYPE bulwark_http_connections_accepted_total counter",
            "bulwark_http_connections_accepted_total{listener=\"public\"} 2",
            "bulwark_http_connections_accepted_total{listener=\"admin\"} 0",
            "# TYPE bulwark_http_connections_active gauge",
            "bulwark_http_connections_active{listener=\"public\"} 1",
            "# TYPE bulwark_http_connections_closed_total counter",
            "bulwark_http_connections_closed_total{listener=\"public\",reason=\"header_timeout\"} 1",
            "bulwark_http_connections_closed_total{listener=\"admin\",reason=\"handshake_failed\"} 0",
            "bulwark_http_request_timeouts_total{listener=\"public\"} 1",
            "bulwark_http_connection_limit_reached_total{listener=\"public\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // A listener added after registration is scraped too.
        listeners.add(Arc::new(Stats::new("late")));
        assert!(render(&registry).contains("bulwark_http_connections_active{listener=\"late\"} 0"));
        assert!(CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
    }
}
