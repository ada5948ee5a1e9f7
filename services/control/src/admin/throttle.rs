//! Bounding the work an unauthenticated caller can cause on the login form.
//!
//! - [`Throttle`]: failed logins per address (any user) in a sliding window, and a growing
//!   backoff per (user, address). An attempt is *reserved* (counted as a failure) before any
//!   password is hashed and given back only when the login succeeds, so a burst of concurrent
//!   attempts cannot all pass the check before the first one is counted. Nothing is global:
//!   failures from one address never slow the same user down from another address.
//! - [`HashGate`]: a semaphore around argon2 so that memory (19 MiB per verification) and CPU
//!   stay bounded however many logins arrive at once.
//!
//! State is in memory, per process, in bounded LRU maps (evicting the least recently seen
//! key, never wiping everything); a restart clears it.

use std::{
    collections::VecDeque,
    net::IpAddr,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use lru::LruCache;
use time::OffsetDateTime;

/// How the throttle is tuned (from [`super::AdminConfig`]).
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

/// Failed-login bookkeeping; see the module documentation.
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

/// At most `permits` argon2 computations at a time; a caller waits at most `wait` for a turn.
///
/// The hashes run on `permits` threads of their own, each with one argon2 work area
/// allocated once (19 MiB with the default parameters), at a lower CPU priority (nice +10):
/// - memory: allocating per verification made glibc keep a freed 19 MiB area per blocking
///   thread that ever hashed, so a login storm grew control by hundreds of MB although only
///   two hashes ran at a time; now argon2 holds exactly `permits` areas;
/// - CPU: a login storm keeps the hash threads busy, and the token endpoint, which every
///   service depends on, must still be answered at once; the kernel now prefers it.
#[derive(Debug, Clone)]
pub struct HashGate {
    permits: Arc<tokio::sync::Semaphore>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    wait: Duration,
}

type Job = Box<dyn FnOnce(&mut [argon2::Block]) + Send>;

/// No turn was free within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

/// The hash threads are gone (they never exit while the gate lives; a panic in a hash would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password-hash threads stopped")]
pub struct GateStopped;

/// Blocks of one argon2 work area: enough for the default parameters, which every hash
/// Bulwark writes uses.
fn work_area() -> Box<[argon2::Block]> {
    vec![argon2::Block::default(); argon2::Params::default().block_count()].into_boxed_slice()
}

/// Ten nice levels below the process (capped at 19) for the calling thread. Relative, so a
/// process started with `nice` keeps its hashes below its token endpoint, and never raised
/// above it even with CAP_SYS_NICE. Best effort: if the kernel refuses, hashes run at the
/// process's priority.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    let base = rustix::process::getpriority_process(None).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), (base + 10).min(19)) {
        tracing::debug!(error = %e, "could not lower the priority of a password-hash thread");
    }
}

impl HashGate {
    pub fn new(permits: usize, wait: Duration) -> Self {
        let permits = permits.max(1);
        // Every job holds a permit, so at most `permits` are ever queued or running: the
        // channel never blocks a sender.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(permits);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..permits {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut area = work_area();
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        match job {
                            // A panicking hash (e.g. the OS random source failing while a
                            // new password is hashed) fails its caller only; the thread
                            // stays, so the gate never runs out of threads. The area is safe
                            // to reuse: argon2 writes every block before reading any.
                            Ok(job) => {
                                let run = std::panic::AssertUnwindSafe(|| job(&mut area));
                                if std::panic::catch_unwind(run).is_err() {
                                    tracing::error!("a password-hash job panicked");
                                }
                            }
                            Err(_) => return, // the gate was dropped
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password-hash thread");
            }
        }
        HashGate {
            permits: Arc::new(tokio::sync::Semaphore::new(permits)),
            jobs,
            wait,
        }
    }

    /// Run `f` (argon2 work, given a work area) on a hash thread once a permit is free. The
    /// permit moves into the job, so a caller that gives up (a dropped request) cannot free
    /// it while the hash still runs.
    pub async fn run<T, F>(&self, f: F) -> Result<Result<T, GateStopped>, Busy>
    where
        F: FnOnce(&mut [argon2::Block]) -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                // Timed out, or closed (never: we never close it): either way no turn.
                _ => {
                    return Err(Busy {
                        retry_after: self.wait.max(Duration::from_secs(1)),
                    });
                }
            };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |area| {
            let out = f(area);
            // Freed before the answer, so a caller that sees its result sees the turn free.
            drop(permit);
            let _ = done.send(out);
        });
        if self.jobs.try_send(job).is_err() {
            return Ok(Err(GateStopped));
        }
        Ok(result.await.map_err(|_| GateStopped))
    }

    /// Free permits; for tests.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            address_limit: 5,
            address_window: Duration::from_secs(900),
            backoff_after: 3,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            capacity: NonZeroUsize::new(100).unwrap(),
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn wall() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn attempts_are_counted_before_the_work_so_a_burst_cannot_pass_together() {
        let t = Throttle::new(ThrottleSettings {
            backoff_after: 1000,
            ..settings()
        });
        let now = Instant::now();
        // 100 "concurrent" attempts: none has finished (none succeeded or failed yet).
        let passed = (0..100)
            .filter(|i| t.reserve(ip(2), &format!("u{i}"), now, wall()).is_ok())
            .count();
        assert_eq!(passed, 5);
        assert!(matches!(
            t.reserve(ip(2), "admin", now, wall()),
            Err(Refusal::Address { .. })
        ));
        // Another address is not affected.
        assert!(t.reserve(ip(3), "admin", now, wall()).is_ok());
    }

    #[test]
    fn success_gives_the_attempt_back() {
        let t = Throttle::new(settings());
        let now = Instant::now();
        for _ in 0..10 {
            let r = t.reserve(ip(2), "admin", now, wall()).unwrap();
            t.succeeded(r);
        }
        assert!(t.reserve(ip(2), "admin", now, wall()).is_ok());
    }

    #[test]
    fn address_window_slides() {
        let t = Throttle::new(ThrottleSettings {
            backoff_after: 1000,
            ..settings()
        });
        let now = Instant::now();
        for i in 0..5 {
            let _ = t.reserve(ip(2), &format!("u{i}"), now, wall()).unwrap();
        }
        let r = t.reserve(ip(2), "x", now + Duration::from_secs(60), wall());
        assert_eq!(
            r.unwrap_err(),
            Refusal::Address {
                retry_after: Duration::from_secs(840)
            }
        );
        assert!(
            t.reserve(ip(2), "x", now + Duration::from_secs(900), wall())
                .is_ok()
        );
    }

    #[test]
    fn backoff_grows_per_user_and_address_and_is_capped() {
        let t = Throttle::new(ThrottleSettings {
            address_limit: 1000,
            ..settings()
        });
        let mut now = Instant::now();
        // Three failures are free.
        for _ in 0..3 {
            let _ = t.reserve(ip(2), "admin", now, wall()).unwrap();
        }
        // Then 1 s, 2 s, 4 s, 8 s, 8 s (capped).
        for expected in [1, 2, 4, 8, 8] {
            let wait = Duration::from_secs(expected);
            let r = t.reserve(
                ip(2),
                "admin",
                now + wait - Duration::from_millis(1),
                wall(),
            );
            assert_eq!(
                r.unwrap_err(),
                Refusal::Backoff {
                    retry_after: Duration::from_millis(1)
                },
                "wait {expected}s"
            );
            now += wait;
            let _ = t.reserve(ip(2), "admin", now, wall()).unwrap();
        }
        // The same user from another address, and another user from the same address, are not
        // slowed down.
        assert!(t.reserve(ip(3), "admin", now, wall()).is_ok());
        assert!(t.reserve(ip(2), "other", now, wall()).is_ok());
    }

    #[test]
    fn an_unlock_after_the_failures_clears_the_backoff() {
        let t = Throttle::new(settings());
        let now = Instant::now();
        let before = wall();
        for _ in 0..4 {
            let _ = t.reserve(ip(2), "admin", now, before);
        }
        assert!(t.reserve(ip(2), "admin", now, wall()).is_err());
        // An unlock from before the failures changes nothing; one after them clears the pair.
        t.unlocked("admin", before - time::Duration::seconds(10));
        assert!(t.reserve(ip(2), "admin", now, wall()).is_err());
        t.unlocked("other", wall());
        assert!(t.reserve(ip(2), "admin", now, wall()).is_err());
        t.unlocked("admin", wall());
        assert!(t.reserve(ip(2), "admin", now, wall()).is_ok());
    }

    #[test]
    fn an_attempt_that_found_no_turn_is_given_back() {
        // backoff_after is 3 in settings(): three busy refusals in a row must not back the
        // admin off, nor fill the address window.
        let t = Throttle::new(settings());
        let now = Instant::now();
        for _ in 0..10 {
            let r = t.reserve(ip(2), "admin", now, wall()).unwrap();
            t.released(r);
        }
        assert_eq!(t.tracked(), (1, 0));
        // Real failures still count, and a released attempt does not erase them.
        for _ in 0..3 {
            let _ = t.reserve(ip(2), "admin", now, wall()).unwrap();
        }
        assert!(matches!(
            t.reserve(ip(2), "admin", now, wall()),
            Err(Refusal::Backoff { .. })
        ));
    }

    #[test]
    fn state_is_bounded_by_lru_eviction_not_wiped() {
        let t = Throttle::new(ThrottleSettings {
            capacity: NonZeroUsize::new(10).unwrap(),
            address_limit: 2,
            ..settings()
        });
        let now = Instant::now();
        // The address that keeps failing stays tracked while 50 others pass through.
        let _ = t.reserve(ip(2), "admin", now, wall()).unwrap();
        let _ = t.reserve(ip(2), "admin", now, wall()).unwrap();
        for i in 0..50u8 {
            let _ = t.reserve(IpAddr::from([10, 0, 0, i]), "u", now, wall());
            // Touching the busy address keeps it recent.
            assert!(t.reserve(ip(2), "admin", now, wall()).is_err());
        }
        let (addresses, pairs) = t.tracked();
        assert!(addresses <= 10 && pairs <= 10, "{addresses} {pairs}");
        assert!(t.reserve(ip(2), "admin", now, wall()).is_err());
    }

    #[tokio::test]
    async fn the_gate_refuses_when_no_permit_frees_up_in_time() {
        let gate = HashGate::new(1, Duration::from_millis(50));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let busy = gate.clone();
        let holder = tokio::spawn(async move {
            busy.run(move |_| {
                let _ = started_tx.send(());
                let _ = wait.recv();
            })
            .await
        });
        started.await.unwrap();
        assert_eq!(gate.available(), 0);
        let refused = gate.run(|_| ()).await.unwrap_err();
        assert!(refused.retry_after >= Duration::from_secs(1));
        release.send(()).unwrap();
        holder.await.unwrap().unwrap().unwrap();
        assert!(gate.run(|_| 7).await.unwrap().unwrap() == 7);
    }

    #[tokio::test]
    async fn a_dropped_caller_keeps_the_permit_until_the_hash_ends() {
        let gate = HashGate::new(1, Duration::from_millis(20));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let g = gate.clone();
        let caller = tokio::spawn(async move {
            let _ = g
                .run(move |_| {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                })
                .await;
        });
        started.await.unwrap();
        caller.abort();
        let _ = caller.await;
        // The request is gone but its hash still runs: no second one may start.
        assert!(gate.run(|_| ()).await.is_err());
        release.send(()).unwrap();
        for _ in 0..100 {
            if gate.available() == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the permit was not returned");
    }

    #[tokio::test]
    async fn every_turn_reuses_one_of_the_preallocated_work_areas() {
        let gate = HashGate::new(2, Duration::from_secs(5));
        let blocks = argon2::Params::default().block_count();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..8 {
            let (len, at) = gate
                .run(|area| (area.len(), area.as_ptr() as usize))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(len, blocks);
            seen.insert(at);
        }
        // Only the two areas allocated at start are ever handed out.
        assert!(!seen.is_empty() && seen.len() <= 2, "{} areas", seen.len());
        assert_eq!(gate.available(), 2);
    }

    #[tokio::test]
    async fn hashes_run_on_their_own_lower_priority_threads() {
        let gate = HashGate::new(1, Duration::from_secs(5));
        let (name, nice) = gate
            .run(|_| {
                let name = std::thread::current().name().map(str::to_owned);
                let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
                (name, nice)
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name.as_deref(), Some("argon2-0"));
        let base = rustix::process::getpriority_process(None).unwrap();
        assert_eq!(nice.unwrap(), (base + 10).min(19));
    }

    #[tokio::test]
    async fn a_panicking_hash_fails_its_caller_only() {
        let gate = HashGate::new(1, Duration::from_secs(5));
        let r = gate.run(|_| -> u8 { panic!("boom") }).await.unwrap();
        assert_eq!(r, Err(GateStopped));
        // The one thread is still there.
        assert_eq!(gate.run(|_| 7).await.unwrap(), Ok(7));
        assert_eq!(gate.available(), 1);
    }
}
