//! Token buckets keyed by small, parsed keys (a [`crate::ClientId`], an address, or a pair),
//! held in an LRU cache of fixed capacity. The key set is bounded by construction: past the
//! capacity the least recently used bucket is dropped, one at a time, never the whole map.
//! A dropped key comes back with a full bucket, so eviction can only ever make a limiter more
//! lenient towards that key, never lock anyone out; see [`crate::throttle`] for why that
//! leniency is bounded.

use std::{
    hash::Hash,
    num::NonZeroUsize,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use lru::LruCache;

/// `burst` events at once, refilled continuously at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    pub fn new(per_second: f64, burst: u32) -> Self {
        Rate { per_second, burst }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One token bucket per key, at most `capacity` keys.
pub struct KeyedLimiter<K: Hash + Eq> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<LruCache<K, Bucket>>,
}

impl<K: Hash + Eq> std::fmt::Debug for KeyedLimiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .field("keys", &self.len())
            .finish()
    }
}

impl<K: Hash + Eq> KeyedLimiter<K> {
    pub fn new(rate: Rate, capacity: NonZeroUsize) -> Self {
        KeyedLimiter {
            // A zero or negative rate would never refill and divide by zero below.
            per_second: if rate.per_second.is_finite() {
                rate.per_second.max(0.001)
            } else {
                f64::MAX
            },
            burst: f64::from(rate.burst.max(1)),
            buckets: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// Take one token for `key`, or say how long until one is available. An unknown key
    /// starts with a full bucket (evicting the least recently used key when full).
    pub fn acquire(&self, key: K) -> Result<(), Duration> {
        self.acquire_at(key, Instant::now())
    }

    /// How long `key` must wait for a token, or `None` if it has one now. Takes nothing and
    /// never adds a key, so a refused caller cannot grow the map.
    pub fn throttled(&self, key: &K) -> Option<Duration> {
        self.throttled_at(key, Instant::now())
    }

    /// Take one token for `key` if it has one; an empty bucket stays empty. For counting
    /// events (failures) that already happened.
    pub fn charge(&self, key: K) {
        self.charge_at(key, Instant::now());
    }

    /// The number of keys held now (at most the capacity).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.lock().cap().get()
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<K, Bucket>> {
        // A panic while holding the lock cannot leave a bucket half-updated (each update is
        // a plain store), so the poisoned state is as good as any.
        match self.buckets.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.at = now;
    }

    fn wait(&self, b: &Bucket) -> Duration {
        Duration::try_from_secs_f64((1.0 - b.tokens) / self.per_second).unwrap_or(Duration::MAX)
    }

    fn full(&self, now: Instant) -> Bucket {
        Bucket {
            tokens: self.burst,
            at: now,
        }
    }

    fn acquire_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut map = self.lock();
        let b = map.get_or_insert_mut(key, || self.full(now));
        self.refill(b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait(b))
        }
    }

    fn throttled_at(&self, key: &K, now: Instant) -> Option<Duration> {
        let mut map = self.lock();
        // `get_mut` also marks the key as recently used: a bucket under attack stays held.
        let b = map.get_mut(key)?;
        self.refill(b, now);
        (b.tokens < 1.0).then(|| self.wait(b))
    }

    fn charge_at(&self, key: K, now: Instant) {
        let mut map = self.lock();
        let b = map.get_or_insert_mut(key, || self.full(now));
        self.refill(b, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32, capacity: usize) -> KeyedLimiter<&'static str> {
        KeyedLimiter::new(
            Rate::new(per_second, burst),
            NonZeroUsize::new(capacity).unwrap(),
        )
    }

    #[test]
    fn burst_then_refuse_per_key_with_a_sane_wait() {
        let l = limiter(1.0, 3, 10);
        let t = Instant::now();
        for _ in 0..3 {
            l.acquire_at("a", t).unwrap();
        }
        let wait = l.acquire_at("a", t).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Half a second later half a token has come back: half a second to go.
        let wait = l
            .acquire_at("a", t + Duration::from_millis(500))
            .unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        l.acquire_at("a", t + Duration::from_millis(1000)).unwrap();
        l.acquire_at("b", t).unwrap();
    }

    #[test]
    fn eviction_keeps_the_map_at_capacity_and_an_evicted_key_starts_full() {
        let l = limiter(0.001, 2, 100);
        let t = Instant::now();
        l.acquire_at("victim", t).unwrap();
        l.acquire_at("victim", t).unwrap();
        assert!(l.acquire_at("victim", t).is_err());
        let keys: Vec<&'static str> = (0..1_000)
            .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
            .collect();
        for k in &keys {
            l.acquire_at(k, t).unwrap();
            assert!(l.len() <= 100);
        }
        assert_eq!(l.len(), 100);
        assert_eq!(l.capacity(), 100);
        // The most recent keys are the ones kept.
        assert!(l.throttled_at(&keys[999], t).is_none());
        l.acquire_at(keys[999], t).unwrap();
        assert!(l.throttled_at(&keys[999], t).is_some());
        // The victim was evicted: it comes back with a full bucket.
        assert!(l.throttled_at(&"victim", t).is_none());
        l.acquire_at("victim", t).unwrap();
        l.acquire_at("victim", t).unwrap();
        assert!(l.acquire_at("victim", t).is_err());
    }

    #[test]
    fn throttled_neither_charges_nor_adds_keys() {
        let l = limiter(1.0, 1, 10);
        let t = Instant::now();
        assert_eq!(l.throttled_at(&"a", t), None);
        assert!(l.is_empty(), "a look-up must not add a key");
        l.acquire_at("a", t).unwrap();
        for _ in 0..5 {
            assert!(l.throttled_at(&"a", t).is_some());
        }
        l.acquire_at("a", t + Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn charge_saturates_at_empty_and_refills() {
        let l = limiter(0.5, 3, 10);
        let t = Instant::now();
        for _ in 0..10 {
            l.charge_at("a", t);
        }
        let wait = l.throttled_at(&"a", t).unwrap();
        assert_eq!(wait, Duration::from_secs(2), "one token at 0.5/s, not ten");
        assert!(l.throttled_at(&"a", t + Duration::from_secs(2)).is_none());
    }

    #[test]
    fn degenerate_rates_do_not_panic() {
        let t = Instant::now();
        let l = limiter(0.0, 0, 1);
        l.acquire_at("a", t).unwrap();
        let wait = l.acquire_at("a", t).unwrap_err();
        assert!(wait >= Duration::from_secs(999));
        let l = limiter(f64::INFINITY, u32::MAX, 1);
        for _ in 0..1_000 {
            l.acquire_at("a", t).unwrap();
        }
        let l = limiter(f64::NAN, 1, 1);
        l.acquire_at("a", t).unwrap();
        let _ = l.acquire_at("a", t);
    }
}
