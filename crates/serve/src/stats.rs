//! Per-listener counters, exposed through a process's metrics registry ([`Listeners`]).

use std::{
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
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

    fn read(&self) -> Reading {
        Reading {
            listener: self.listener,
            accepted: self.accepted_total(),
            active: self.active(),
            closed: Closed::ALL.map(|why| self.closed_total(why)),
            request_timeouts: self.request_timeouts_total(),
            limit_reached: self.limit_reached_total(),
        }
    }
}

/// The listeners of a process, as a collector of its metrics registry: every listener's
/// counters are read at scrape time, each family once with a `listener` label.
#[derive(Debug, Default)]
pub struct Listeners(Mutex<Vec<Arc<Stats>>>);

impl Listeners {
    /// Include a listener's counters in every later scrape.
    pub fn add(&self, stats: Arc<Stats>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stats);
    }
}

impl Collector for Listeners {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let readings: Vec<Reading> = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|s| s.read())
            .collect();
        encode(&readings, encoder)
    }
}

/// One listener's counters at one instant.
#[derive(Debug)]
struct Reading {
    listener: &'static str,
    accepted: u64,
    active: u64,
    closed: [u64; Closed::ALL.len()],
    request_timeouts: u64,
    limit_reached: u64,
}

/// Label values are the listener names the binaries chose and the fixed reasons of
/// [`Closed`]: nothing a peer sends becomes a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClosedLabels {
    listener: &'static str,
    reason: &'static str,
}

/// Counters are named without `_total`: the encoder appends it, so the exposed names are
/// `bulwark_http_connections_accepted_total` etc.
fn encode(readings: &[Reading], mut encoder: DescriptorEncoder) -> fmt::Result {
    let counter = |encoder: &mut DescriptorEncoder,
                   name: &str,
                   help: &str,
                   value: fn(&Reading) -> u64|
     -> fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for r in readings {
            let labels = ListenerLabels {
                listener: r.listener,
            };
            ConstCounter::new(value(r)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    };
    counter(
        &mut encoder,
        "bulwark_http_connections_accepted",
        "TLS connections accepted",
        |r| r.accepted,
    )?;
    {
        let mut family = encoder.encode_descriptor(
            "bulwark_http_connections_active",
            "connections open now",
            None,
            MetricType::Gauge,
        )?;
        for r in readings {
            let labels = ListenerLabels {
                listener: r.listener,
            };
            // Above i64::MAX open connections is not a state this process can reach.
            let active = i64::try_from(r.active).unwrap_or(i64::MAX);
            ConstGauge::new(active).encode(family.encode_family(&labels)?)?;
        }
    }
    {
        let mut family = encoder.encode_descriptor(
            "bulwark_http_connections_closed",
            "connections closed by the server, by reason",
            None,
            MetricType::Counter,
        )?;
        for r in readings {
            for why in Closed::ALL {
                let labels = ClosedLabels {
                    listener: r.listener,
                    reason: why.label(),
                };
                ConstCounter::new(r.closed[why.index()]).encode(family.encode_family(&labels)?)?;
            }
        }
    }
    counter(
        &mut encoder,
        "bulwark_http_request_timeouts",
        "requests answered 503 after the request timeout",
        |r| r.request_timeouts,
    )?;
    counter(
        &mut encoder,
        "bulwark_http_connection_limit_reached",
        "times every connection slot was taken",
        |r| r.limit_reached,
    )
}

/// Decrements the active gauge when the connection's task ends.
#[derive(Debug)]
pub(crate) struct ActiveGuard<'a>(&'a Stats);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}
