//! Per-listener counters, rendered in the Prometheus text format.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// TLS handshake not finished within `handshake_timeout`.
    HandshakeTimeout,
    /// The TLS handshake failed (not TLS, no common parameters, client aborted).
    HandshakeFailed,
    /// No complete request head within `header_timeout`.
    HeaderTimeout,
    /// No request in flight for `idle_timeout`.
    IdleTimeout,
    /// A response not delivered within `request_timeout + response_send_timeout` of its
    /// request (a peer that does not read, or an HTTP/2 peer that grants no window).
    ResponseTimeout,
    /// Older than `max_connection_age`: shut down gracefully (counted when it starts).
    MaxAge,
    /// Refused at accept: its address already held `max_connections_per_address`.
    PerAddressLimit,
}

impl Closed {
    const ALL: [Closed; 7] = [
        Closed::HandshakeTimeout,
        Closed::HandshakeFailed,
        Closed::HeaderTimeout,
        Closed::IdleTimeout,
        Closed::ResponseTimeout,
        Closed::MaxAge,
        Closed::PerAddressLimit,
    ];

    fn label(self) -> &'static str {
        match self {
            Closed::HandshakeTimeout => "handshake_timeout",
            Closed::HandshakeFailed => "handshake_failed",
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::ResponseTimeout => "response_timeout",
            Closed::MaxAge => "max_age",
            Closed::PerAddressLimit => "per_address_limit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one listener. Cheap to update (relaxed atomics); share it as `Arc<Stats>`
/// between [`crate::serve`] and the service's `/metrics`.
#[derive(Debug)]
pub struct Stats {
    listener: &'static str,
    accepted: AtomicU64,
    active: AtomicU64,
    closed: [AtomicU64; Closed::ALL.len()],
    request_timeouts: AtomicU64,
    limit_reached: AtomicU64,
}

impl Stats {
    /// `listener` names it in metrics and logs (`public`, `admin`, `api`).
    pub fn new(listener: &'static str) -> Self {
        Self {
            listener,
            accepted: AtomicU64::new(0),
            active: AtomicU64::new(0),
            closed: Default::default(),
            request_timeouts: AtomicU64::new(0),
            limit_reached: AtomicU64::new(0),
        }
    }

    pub fn listener(&self) -> &'static str {
        self.listener
    }

    /// Connections accepted since start.
    pub fn accepted_total(&self) -> u64 {
        self.accepted.load(Relaxed)
    }

    /// Connections open now (handshaking included).
    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    /// Connections the server closed for `why`.
    pub fn closed_total(&self, why: Closed) -> u64 {
        self.closed[why.index()].load(Relaxed)
    }

    /// Requests answered 503 because they outlived `request_timeout`.
    pub fn request_timeouts_total(&self) -> u64 {
        self.request_timeouts.load(Relaxed)
    }

    /// Times the accept loop found every connection slot taken.
    pub fn limit_reached_total(&self) -> u64 {
        self.limit_reached.load(Relaxed)
    }

    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
    }

    pub(crate) fn open(&self) -> ActiveGuard<'_> {
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(self)
    }

    pub(crate) fn closed(&self, why: Closed) {
        self.closed[why.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn request_timed_out(&self) {
        self.request_timeouts.fetch_add(1, Relaxed);
    }

    pub(crate) fn limit_reached(&self) {
        self.limit_reached.fetch_add(1, Relaxed);
    }

    /// Prometheus text for several listeners, each metric family once.
    pub fn render_all<'a>(all: impl IntoIterator<Item = &'a Stats> + Clone) -> String {
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "bulwark_http_connections_accepted_total",
            "counter",
            "TLS connections accepted",
        );
        for s in all.clone() {
            let _ = writeln!(
                out,
                "bulwark_http_connections_accepted_total{{listener=\"{}\"}} {}",
                s.listener,
                s.accepted_total()
            );
        }
        family(
            &mut out,
            "bulwark_http_connections_active",
            "gauge",
            "connections open now",
        );
        for s in all.clone() {
            let _ = writeln!(
                out,
                "bulwark_http_connections_active{{listener=\"{}\"}} {}",
                s.listener,
                s.active()
            );
        }
        family(
            &mut out,
            "bulwark_http_connections_closed_total",
            "counter",
            "connections closed by the server, by reason",
        );
        for s in all.clone() {
            for why in Closed::ALL {
                let _ = writeln!(
                    out,
                    "bulwark_http_connections_closed_total{{listener=\"{}\",reason=\"{}\"}} {}",
                    s.listener,
                    why.label(),
                    s.closed_total(why)
                );
            }
        }
        family(
            &mut out,
            "bulwark_http_request_timeouts_total",
            "counter",
            "requests answered 503 after the request timeout",
        );
        for s in all.clone() {
            let _ = writeln!(
                out,
                "bulwark_http_request_timeouts_total{{listener=\"{}\"}} {}",
                s.listener,
                s.request_timeouts_total()
            );
        }
        family(
            &mut out,
            "bulwark_http_connection_limit_reached_total",
            "counter",
            "times every connection slot was taken",
        );
        for s in all {
            let _ = writeln!(
                out,
                "bulwark_http_connection_limit_reached_total{{listener=\"{}\"}} {}",
                s.listener,
                s.limit_reached_total()
            );
        }
        out
    }
}

/// Decrements the active gauge when the connection's task ends.
#[derive(Debug)]
pub(crate) struct ActiveGuard<'a>(&'a Stats);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}
