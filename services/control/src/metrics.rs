//! A few Prometheus counters, rendered in the text exposition format.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{Arc, Mutex},
};

use bulwark_serve::Stats;

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Connection counters of the HTTPS listeners (public, admin).
    listeners: Mutex<Vec<Arc<Stats>>>,
}

impl Metrics {
    /// Increment `name{label="value"}`. Label values come from fixed vocabularies (error
    /// codes) or registered client ids, never from unauthenticated input.
    pub fn inc(&self, name: &'static str, labels: String) {
        let mut c = match self.counters.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        *c.entry((name, labels)).or_default() += 1;
    }

    /// Include a listener's connection counters in [`Metrics::render`].
    pub fn add_listener(&self, stats: Arc<Stats>) {
        match self.listeners.lock() {
            Ok(mut l) => l.push(stats),
            Err(p) => p.into_inner().push(stats),
        }
    }

    pub fn render(&self) -> String {
        let c = match self.counters.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), v) in c.iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{labels} {v}");
        }
        drop(c);
        let listeners = match self.listeners.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if !listeners.is_empty() {
            out.push_str(&Stats::render_all(listeners.iter().map(|s| &**s)));
        }
        out
    }
}
