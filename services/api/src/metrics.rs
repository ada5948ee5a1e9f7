//! `/metrics`: request counters by route and status, plus the listener's connection counters.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

/// Request counters by route and status class, rendered as Prometheus text.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<BTreeMap<(String, u16), u64>>,
    /// Connection counters of the HTTPS listener.
    listeners: Mutex<Vec<Arc<bulwark_serve::Stats>>>,
}

impl Metrics {
    pub(crate) fn inc(&self, route: &str, status: u16) {
        let mut c = match self.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        *c.entry((route.to_owned(), status)).or_default() += 1;
    }

    /// Include a listener's connection counters in `/metrics`.
    pub fn add_listener(&self, stats: Arc<bulwark_serve::Stats>) {
        match self.listeners.lock() {
            Ok(mut l) => l.push(stats),
            Err(p) => p.into_inner().push(stats),
        }
    }

    pub(crate) fn render(&self) -> String {
        let listeners = match self.listeners.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let c = match self.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let mut out = String::from("# TYPE bulwark_api_requests_total counter\n");
        for ((route, status), v) in c.iter() {
            out.push_str(&format!(
                "bulwark_api_requests_total{{route=\"{route}\",status=\"{status}\"}} {v}\n"
            ));
        }
        if !listeners.is_empty() {
            out.push_str(&bulwark_serve::Stats::render_all(
                listeners.iter().map(|s| &**s),
            ));
        }
        out
    }
}
