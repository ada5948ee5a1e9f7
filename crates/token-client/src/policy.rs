//! When to refresh and how long to back off.

use std::time::Duration;

use crate::error::{AuthError, Result};

/// Tunables for refresh scheduling. The defaults are the production values.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshPolicy {
    /// Fraction of the token lifetime after which to refresh (default 0.8).
    pub refresh_fraction: f64,
    /// Lower bound of the fraction-based delay (default 5 min), so long-lived
    /// tokens are not refreshed needlessly often. The expiry cap below wins
    /// over it for tokens shorter than this.
    pub min_refresh_delay: Duration,
    /// Upper bound of the refresh delay (default 30 min), so long-lived tokens
    /// still pick up key and scope changes.
    pub max_refresh_delay: Duration,
    /// Refresh delay when the lifetime is unknown (default 14 min): no
    /// `expires_in` and no decodable `exp`.
    pub unknown_lifetime_refresh: Duration,
    /// The refresh is scheduled at least this long before expiry (default
    /// 60 s), capped at half the lifetime so a very short token is not
    /// refreshed the moment it arrives.
    pub safety_margin: Duration,
    /// A token stops being handed out this long before its expiry (default
    /// 10 s, capped at a quarter of the lifetime), so a request that takes a
    /// moment does not reach the server with a token that just expired.
    pub expiry_leeway: Duration,
    /// First retry delay after a failed refresh (default 1 s).
    pub backoff_initial: Duration,
    /// Retry delay ceiling (default 8 s). Kept short because a service without a
    /// token is down: once the token endpoint answers again, every service must be
    /// back within 10 s. Each service is one client, so the retries cost the token
    /// endpoint one request per service per 8 s while it is unreachable.
    pub backoff_max: Duration,
    /// Retry delay ceiling after the token endpoint *answered* with a refusal (an RFC 6749
    /// error such as `invalid_client`; default 60 s). Retrying soon cannot help until the
    /// credentials change, and each refused attempt charges the endpoint's per-client
    /// failure budget; the short `backoff_max` is for an endpoint that did not answer.
    pub refused_backoff_max: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_fraction: 0.8,
            min_refresh_delay: Duration::from_secs(5 * 60),
            max_refresh_delay: Duration::from_secs(30 * 60),
            unknown_lifetime_refresh: Duration::from_secs(14 * 60),
            safety_margin: Duration::from_secs(60),
            expiry_leeway: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            refused_backoff_max: Duration::from_secs(60),
        }
    }
}

/// Never schedule a refresh sooner than this after the previous one, whatever
/// the server claims, so a zero `expires_in` cannot turn into a request loop.
const MIN_DELAY: Duration = Duration::from_secs(1);

impl RefreshPolicy {
    /// Checks the invariants the scheduling relies on.
    pub fn validate(&self) -> Result<()> {
        if !(self.refresh_fraction > 0.0 && self.refresh_fraction <= 1.0) {
            return Err(AuthError::config("refresh_fraction must be in (0, 1]"));
        }
        if self.min_refresh_delay > self.max_refresh_delay {
            return Err(AuthError::config(
                "min_refresh_delay must not exceed max_refresh_delay",
            ));
        }
        if self.backoff_initial.is_zero()
            || self.backoff_initial > self.backoff_max
            || self.backoff_initial > self.refused_backoff_max
        {
            return Err(AuthError::config(
                "backoff_initial must be positive and at most backoff_max and refused_backoff_max",
            ));
        }
        if self.unknown_lifetime_refresh.is_zero() {
            return Err(AuthError::config(
                "unknown_lifetime_refresh must be positive",
            ));
        }
        Ok(())
    }

    /// Delay from obtaining a token to refreshing it.
    ///
    /// `clamp(lifetime * fraction, min, max)`, then never later than
    /// `lifetime - safety_margin` (or half the lifetime, if the margin is more
    /// than half). The seeds applied only the clamp, which pushed a 2-minute
    /// token's refresh to 5 minutes, 3 minutes after it expired.
    pub fn refresh_delay(&self, lifetime: Option<Duration>) -> Duration {
        let Some(lifetime) = lifetime else {
            return self.unknown_lifetime_refresh;
        };
        let proportional = lifetime
            .mul_f64(self.refresh_fraction)
            .clamp(self.min_refresh_delay, self.max_refresh_delay);
        let latest = lifetime
            .saturating_sub(self.safety_margin)
            .max(lifetime / 2);
        proportional.min(latest).max(MIN_DELAY)
    }

    /// How long before expiry a token stops being handed out.
    pub fn leeway_for(&self, lifetime: Duration) -> Duration {
        self.expiry_leeway.min(lifetime / 4)
    }

    /// Delay before retry number `failures` (1-based): exponential, capped,
    /// with "equal jitter" (half fixed, half random) so that many replicas
    /// failing together do not retry in lockstep. `jitter` is in `[0, 1)`.
    pub fn backoff(&self, failures: u32, jitter: f64) -> Duration {
        self.backoff_up_to(self.backoff_max, failures, jitter)
    }

    /// [`Self::backoff`] after a refusal: the same curve up to `refused_backoff_max`.
    pub fn refused_backoff(&self, failures: u32, jitter: f64) -> Duration {
        self.backoff_up_to(self.refused_backoff_max, failures, jitter)
    }

    fn backoff_up_to(&self, max: Duration, failures: u32, jitter: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let ceiling = self
            .backoff_initial
            .saturating_mul(1u32 << exponent)
            .min(max);
        let half = ceiling / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn production_schedule() {
        let p = RefreshPolicy::default();
        // 1 h: 80% = 48 min, capped at 30 min.
        assert_eq!(p.refresh_delay(Some(60 * MIN)), 30 * MIN);
        // 10 min: 80% = 8 min, inside the bounds.
        assert_eq!(p.refresh_delay(Some(10 * MIN)), 8 * MIN);
        // 15 min (control's default TTL): 12 min.
        assert_eq!(p.refresh_delay(Some(15 * MIN)), 12 * MIN);
        // 2 min: the 5 min floor would be after expiry; expiry - 60 s wins.
        assert_eq!(p.refresh_delay(Some(2 * MIN)), 60 * Duration::from_secs(1));
        // Unknown lifetime.
        assert_eq!(p.refresh_delay(None), 14 * MIN);
    }

    #[test]
    fn always_before_expiry() {
        let p = RefreshPolicy::default();
        for secs in [
            2u64, 10, 30, 59, 61, 90, 119, 120, 299, 300, 301, 600, 3600, 86_400,
        ] {
            let life = Duration::from_secs(secs);
            let d = p.refresh_delay(Some(life));
            assert!(d < life, "{secs}s token refreshed at {d:?}");
            assert!(d >= MIN_DELAY);
        }
        assert_eq!(p.refresh_delay(Some(Duration::ZERO)), MIN_DELAY);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = RefreshPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(2, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(3, 0.999_999).as_secs(), 3);
        assert_eq!(p.backoff(100, 0.0), Duration::from_secs(4));
        // The recovery bound: back within 10 s of the token endpoint returning.
        assert!(p.backoff(100, 0.999_999) <= Duration::from_secs(8));
        // A refusal (wrong secret) backs off further: the old 60 s ceiling.
        assert_eq!(p.refused_backoff(100, 0.0), Duration::from_secs(30));
        assert!(p.refused_backoff(100, 0.999_999) <= Duration::from_secs(60));
        assert_eq!(p.refused_backoff(1, 0.0), p.backoff(1, 0.0));
    }

    #[test]
    fn validation() {
        assert!(RefreshPolicy::default().validate().is_ok());
        let bad = RefreshPolicy {
            refresh_fraction: 1.5,
            ..RefreshPolicy::default()
        };
        assert!(bad.validate().is_err());
        let bad = RefreshPolicy {
            min_refresh_delay: Duration::from_secs(3600),
            ..RefreshPolicy::default()
        };
        assert!(bad.validate().is_err());
    }
}
