//! Time as the token manager sees it.
//!
//! Everything the manager schedules (refresh instants, backoff, expiry) goes
//! through [`Clock`], so tests can drive it with [`ManualClock`] and assert exact
//! instants instead of sleeping.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

/// A boxed future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Source of monotonic time, wall-clock time and timers.
///
/// Expiry is tracked on the monotonic clock (`now`), which is immune to
/// wall-clock steps and to skew against the token issuer; wall-clock time is
/// only used to report [`crate::TokenManager::token_expiry_time`].
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Wall-clock now.
    fn system_now(&self) -> SystemTime;
    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

/// The real clock, with Tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// A clock that only moves when told to, for deterministic tests.
///
/// Sleepers wake as soon as [`ManualClock::advance`] moves time past their
/// deadline, so a test can advance to an exact instant and then wait on a
/// notification from the manager.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    start: Instant,
    system_start: SystemTime,
    now: watch::Sender<Instant>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock frozen at the current instant.
    pub fn new() -> Self {
        let start = Instant::now();
        let (now, _) = watch::channel(start);
        Self {
            inner: Arc::new(ManualInner {
                start,
                system_start: SystemTime::now(),
                now,
            }),
        }
    }

    /// The instant this clock was created at.
    pub fn start(&self) -> Instant {
        self.inner.start
    }

    /// How far the clock has been advanced.
    pub fn elapsed(&self) -> Duration {
        self.now().saturating_duration_since(self.inner.start)
    }

    /// Moves time forward by `by`, waking every sleeper whose deadline passed.
    pub fn advance(&self, by: Duration) {
        self.inner.now.send_modify(|now| *now += by);
    }

    /// Moves time forward to `instant` (no-op if it is in the past).
    pub fn advance_to(&self, instant: Instant) {
        self.inner.now.send_modify(|now| {
            if instant > *now {
                *now = instant;
            }
        });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.inner.now.borrow()
    }

    fn system_now(&self) -> SystemTime {
        self.inner.system_start + self.elapsed()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let mut rx = self.inner.now.subscribe();
        Box::pin(async move {
            // The sender lives in `inner`, which outlives every clock handle
            // that could be advanced; if it is gone, time can never reach the
            // deadline, so the sleep must never complete.
            if rx.wait_for(|now| *now >= deadline).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_wakes_on_advance() {
        let clock = ManualClock::new();
        let deadline = clock.now() + Duration::from_secs(60);
        let sleeper = tokio::spawn(clock.sleep_until(deadline));
        clock.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(clock.elapsed(), Duration::from_secs(60));
    }
}
