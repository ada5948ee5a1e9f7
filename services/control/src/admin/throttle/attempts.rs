//! Failed-login bookkeeping: a sliding window per address and a backoff per
//! (user, address) pair, in bounded LRU maps.

use std::{
    collections::VecDeque,
    net::IpAddr,
    num::NonZeroUsize,
    sync::Mutex,
    time::{Duration, Instant},
};

use lru::LruCache;
use time::OffsetDateTime;

/// How the throttle is tuned (from [`AdminConfig`](crate::admin::AdminConfig)).
#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    /// Failed logins one address may make (any user) per `address_window`.
    pub address_limit: u32,
    pub address_window: Duration,
    /// Failures of one (user, address) pair after which it must wait before the next try.
    pub backoff_after: u32,
    /// The first wait; each further failure doubles it, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Entries kept per map (addresses; (user, address) pairs).
    pub capacity: NonZeroUsize,
}

/// Why an attempt was refused before any password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures from this address (any user) in the window.
    Address { retry_after: Duration },
    /// This (user, address) pair is backing off after repeated failures.
    Backoff { retry_after: Duration },
}

impl Refusal {
    pub fn retry_after(&self) -> Duration {
        match self {
            Refusal::Address { retry_after } | Refusal::Backoff { retry_after } => *retry_after,
        }
    }
}

#[derive(Debug)]
struct Pair {
    failures: u32,
    last_failure: Instant,
    /// Wall-clock start of this run of failures: `bulwark-init admin unlock` run later clears it.
    since: OffsetDateTime,
}

#[derive(Debug)]
struct State {
    addresses: LruCache<IpAddr, VecDeque<Instant>>,
    pairs: LruCache<(String, IpAddr), Pair>,
}

/// Failed-login bookkeeping; see the [module documentation](super).
#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    state: Mutex<State>,
}

/// A counted attempt. Pass it to [`Throttle::succeeded`] when the login succeeds; otherwise it
/// simply stays counted as a failure.
#[derive(Debug)]
#[must_use]
pub struct Reservation {
    ip: IpAddr,
    user: String,
    at: Instant,
    /// The pair's last failure before this attempt, restored if the attempt is released.
    previous_failure: Option<Instant>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Throttle {
            settings,
            state: Mutex::new(State {
                addresses: LruCache::new(settings.capacity),
                pairs: LruCache::new(settings.capacity),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain counters: a panic elsewhere cannot leave it inconsistent.
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// The wait a pair with `failures` failures owes after its last one.
    fn backoff(&self, failures: u32) -> Duration {
        let s = &self.settings;
        if failures < s.backoff_after {
            return Duration::ZERO;
        }
        let doublings = (failures - s.backoff_after).min(30);
        s.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(s.backoff_max)
    }

    /// Count an attempt by `user` from `ip` at `now` (`wall`: the same instant on the wall
    /// clock) before its password is checked, or say why it may not be made.
    pub fn reserve(
        &self,
        ip: IpAddr,
        user: &str,
        now: Instant,
        wall: OffsetDateTime,
    ) -> Result<Reservation, Refusal> {
        let s = self.settings;
        let mut st = self.lock();
        let key = (user.to_owned(), ip);
        let q = st.addresses.get_or_insert_mut(ip, VecDeque::new);
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= s.address_window)
        {
            q.pop_front();
        }
        if q.len() >= s.address_limit as usize {
            let oldest = q.front().copied().unwrap_or(now);
            let retry_after = s
                .address_window
                .saturating_sub(now.saturating_duration_since(oldest));
            return Err(Refusal::Address { retry_after });
        }
        if let Some(p) = st.pairs.get(&key) {
            let wait = self.backoff(p.failures);
            let waited = now.saturating_duration_since(p.last_failure);
            if waited < wait {
                return Err(Refusal::Backoff {
                    retry_after: wait - waited,
                });
            }
        }
        // Counted now, before any work: concurrent attempts see each other.
        if let Some(q) = st.addresses.get_mut(&ip) {
            q.push_back(now);
        }
        let p = st.pairs.get_or_insert_mut(key, || Pair {
            failures: 0,
            last_failure: now,
            since: wall,
        });
        let previous_failure = (p.failures > 0).then_some(p.last_failure);
        p.failures = p.failures.saturating_add(1);
        p.last_failure = now;
        Ok(Reservation {
            ip,
            user: user.to_owned(),
            at: now,
            previous_failure,
        })
    }

    /// The login succeeded: give the attempt back and forget the pair's failures.
    pub fn succeeded(&self, r: Reservation) {
        let mut st = self.lock();
        if let Some(q) = st.addresses.peek_mut(&r.ip)
            && let Some(i) = q.iter().position(|t| *t == r.at)
        {
            q.remove(i);
        }
        st.pairs.pop(&(r.user, r.ip));
    }

    /// No check ran for this attempt (no turn was free): give it back without forgetting the
    /// pair's earlier failures.
    pub fn released(&self, r: Reservation) {
        let mut st = self.lock();
        if let Some(q) = st.addresses.peek_mut(&r.ip)
            && let Some(i) = q.iter().position(|t| *t == r.at)
        {
            q.remove(i);
        }
        let key = (r.user, r.ip);
        if let Some(p) = st.pairs.peek_mut(&key) {
            p.failures = p.failures.saturating_sub(1);
            match r.previous_failure {
                // The backoff runs from the last real failure, not from this non-attempt.
                Some(t) if p.failures > 0 => p.last_failure = t,
                _ if p.failures == 0 => {
                    st.pairs.pop(&key);
                }
                _ => {}
            }
        }
    }

    /// `user` was unlocked (or given a new password) from the command line at `at`: forget
    /// every backoff of that user that began before then. Address windows stay: clearing
    /// them would hand every attacking address that tried this user a fresh budget; they
    /// expire on their own, and the admin from another address is never refused by them.
    pub fn unlocked(&self, user: &str, at: OffsetDateTime) {
        let mut st = self.lock();
        let stale: Vec<(String, IpAddr)> = st
            .pairs
            .iter()
            .filter(|((u, _), p)| u == user && p.since <= at)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            st.pairs.pop(&k);
        }
    }

    /// Tracked (addresses, pairs); for tests and metrics.
    pub fn tracked(&self) -> (usize, usize) {
        let st = self.lock();
        (st.addresses.len(), st.pairs.len())
    }
}

#[cfg(test)]
mod tests;
