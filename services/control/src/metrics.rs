//! Control's metrics, all in one registry: the token endpoint's counters, the token
//! limiters' sizes and the listeners' connection counters (see `bulwark_serve::metrics`).

use std::{borrow::Cow, sync::Arc};

use bulwark_serve::{
    Stats,
    metrics::{Listeners, Registry},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};

/// Label values come from fixed vocabularies (error codes, throttle reasons, limiter names)
/// or registered client ids, never from unauthenticated input: the id of a client that did
/// not authenticate is counted as an `invalid_client` error, not under its own label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClientLabel {
    client: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabel {
    error: Cow<'static, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: Cow<'static, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimiterLabel {
    limiter: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    issued: Family<ClientLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    throttled: Family<ReasonLabel, Counter>,
    limiter_keys: Family<LimiterLabel, Gauge>,
    /// Connection counters of the HTTPS listeners (public, admin).
    listeners: Arc<Listeners>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let issued = Family::default();
        let errors = Family::default();
        let throttled = Family::default();
        let limiter_keys = Family::default();
        let listeners = Arc::new(Listeners::default());
        registry.register(
            "bulwark_control_tokens_issued",
            "access tokens issued, by client",
            issued.clone(),
        );
        registry.register(
            "bulwark_control_token_errors",
            "token requests refused, by OAuth error code",
            errors.clone(),
        );
        registry.register(
            "bulwark_control_token_throttled",
            "token requests refused by a throttle, by reason",
            throttled.clone(),
        );
        registry.register(
            "bulwark_control_token_limiter_keys",
            "keys each token-endpoint limiter tracks",
            limiter_keys.clone(),
        );
        registry.register_collector(Box::new(listeners.clone()));
        Self {
            registry,
            issued,
            errors,
            throttled,
            limiter_keys,
            listeners,
        }
    }
}

impl Metrics {
    /// A token was issued to `client` (a registered, authenticated client id).
    pub fn token_issued(&self, client: &str) {
        self.issued
            .get_or_create(&ClientLabel {
                client: client.to_owned(),
            })
            .inc();
    }

    /// A token request was refused with the OAuth error `code`.
    pub fn token_error(&self, code: &'static str) {
        self.error(Cow::Borrowed(code));
    }

    /// A token request was refused by a throttle for `reason`.
    pub fn token_throttled(&self, reason: &'static str) {
        self.throttle(Cow::Borrowed(reason));
    }

    fn error(&self, error: Cow<'static, str>) {
        self.errors.get_or_create(&ErrorLabel { error }).inc();
    }

    fn throttle(&self, reason: Cow<'static, str>) {
        self.throttled.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Sets the token limiters' key counts (read from the issuer at scrape time).
    pub fn set_limiter_keys(&self, keys: impl IntoIterator<Item = (&'static str, usize)>) {
        for (limiter, n) in keys {
            self.limiter_keys
                .get_or_create(&LimiterLabel { limiter })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Include a listener's connection counters in [`Metrics::render`].
    pub fn add_listener(&self, stats: Arc<Stats>) {
        self.listeners.add(stats);
    }

    /// Everything registered, in the Prometheus text format.
    pub fn render(&self) -> String {
        bulwark_serve::metrics::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn has_line(text: &str, line: &str) {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }

    #[test]
    fn every_family_renders_under_its_old_name() {
        let m = Metrics::default();
        m.token_issued("worker");
        m.token_issued("worker");
        m.token_error("invalid_client");
        m.token_throttled("client_rate");
        m.set_limiter_keys([("address", 3), ("client_rate", 0)]);
        let stats = Arc::new(Stats::new("public"));
        m.add_listener(stats);
        let text = m.render();
        has_line(&text, "# TYPE bulwark_control_tokens_issued_total counter");
        has_line(
            &text,
            "bulwark_control_tokens_issued_total{client=\"worker\"} 2",
        );
        has_line(
            &text,
            "bulwark_control_token_errors_total{error=\"invalid_client\"} 1",
        );
        has_line(
            &text,
            "bulwark_control_token_throttled_total{reason=\"client_rate\"} 1",
        );
        has_line(&text, "# TYPE bulwark_control_token_limiter_keys gauge");
        has_line(
            &text,
            "bulwark_control_token_limiter_keys{limiter=\"address\"} 3",
        );
        has_line(
            &text,
            "bulwark_http_connections_accepted_total{listener=\"public\"} 0",
        );
        assert_eq!(
            text.matches("# TYPE bulwark_control_token_errors_total")
                .count(),
            1
        );
    }
}
