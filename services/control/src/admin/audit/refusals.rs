//! Refused logins, aggregated per address and window (see the module docs of `audit`).

use std::{
    collections::BTreeMap,
    net::IpAddr,
    num::NonZeroUsize,
    sync::Mutex,
    time::{Duration, Instant},
};

use lru::LruCache;
use sqlx::PgPool;

use super::{Action, AuditEntry, Outcome};

/// How a refused login names who tried: an existing account by its name, anything else (a
/// mistyped name, or a password typed into the name field) only by a short HMAC under
/// `key`, a key held in memory only. A plain hash could be reversed by a dictionary by
/// anyone who reads the log; the HMAC still lets one process's rows be correlated.
pub fn login_actor(key: &ring::hmac::Key, username: &str, exists: bool) -> String {
    if exists {
        username.to_owned()
    } else if username.is_empty() {
        "unknown user (empty)".to_owned()
    } else {
        // Domain-separated from the login CSRF values the same key signs.
        let mut input = b"bulwark-login-actor\0".to_vec();
        input.extend_from_slice(username.as_bytes());
        let tag = ring::hmac::sign(key, &input);
        format!("unknown user #{}", hex::encode(&tag.as_ref()[..4]))
    }
}

/// One aggregated row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalRow {
    pub actor: String,
    pub detail: String,
    pub address: String,
}

#[derive(Debug)]
struct Pending {
    started: Instant,
    /// Refusals after the first one of the window (not yet written).
    count: u64,
    actor: String,
    several_actors: bool,
    reasons: BTreeMap<&'static str, u64>,
}

/// At most this many addresses get rows of their own per window; refusals from further
/// addresses (a spray from a large block) share one entry, [`MANY`].
pub const ADDRESSES_PER_WINDOW: u32 = 100;
/// The shared entry's key; shown as [`MANY_LABEL`].
const MANY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
const MANY_LABEL: &str = "(further addresses)";

fn label(ip: IpAddr) -> String {
    if ip == MANY {
        MANY_LABEL.to_owned()
    } else {
        ip.to_string()
    }
}

impl Pending {
    fn row(self, ip: IpAddr) -> Option<RefusalRow> {
        if self.count == 0 {
            return None;
        }
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        Some(RefusalRow {
            actor: if self.several_actors {
                "several users".to_owned()
            } else {
                self.actor
            },
            detail: format!(
                "{} more refused logins from this address ({})",
                self.count,
                reasons.join(", ")
            ),
            address: label(ip),
        })
    }
}

/// Refused and throttled logins per address and window; memory bounded by an LRU (an
/// evicted entry is written out, not lost).
#[derive(Debug)]
pub struct RefusalLog {
    window: Duration,
    state: Mutex<Windows>,
}

#[derive(Debug)]
struct Windows {
    by_address: LruCache<IpAddr, Pending>,
    /// Start of the current global window and the addresses that got a first row in it.
    epoch: Instant,
    firsts: u32,
}

impl RefusalLog {
    pub fn new(window: Duration, capacity: NonZeroUsize) -> Self {
        RefusalLog {
            window,
            state: Mutex::new(Windows {
                by_address: LruCache::new(capacity),
                epoch: Instant::now(),
                firsts: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// Note one refusal at `now`; returns the rows to write at once: the first refusal of a
    /// window (with `detail`), and any window this one closed or evicted.
    pub fn note(
        &self,
        ip: IpAddr,
        actor: &str,
        reason: &'static str,
        detail: &str,
        now: Instant,
    ) -> Vec<RefusalRow> {
        let mut rows = Vec::new();
        let mut guard = self.lock();
        let w = &mut *guard;
        if now.saturating_duration_since(w.epoch) >= self.window {
            w.epoch = now;
            w.firsts = 0;
        }
        let open = |p: &Pending| now.saturating_duration_since(p.started) < self.window;
        let ip = if w.by_address.peek(&ip).is_some_and(open) || w.firsts < ADDRESSES_PER_WINDOW {
            ip
        } else {
            MANY
        };
        let st = &mut w.by_address;
        if let Some(p) = st.get_mut(&ip)
            && open(p)
        {
            p.count += 1;
            *p.reasons.entry(reason).or_default() += 1;
            if p.actor != actor {
                p.several_actors = true;
            }
            return rows;
        }
        if let Some(old) = st.pop(&ip) {
            rows.extend(old.row(ip));
        }
        let fresh = Pending {
            started: now,
            count: 0,
            actor: actor.to_owned(),
            several_actors: false,
            reasons: BTreeMap::new(),
        };
        if let Some((evicted_ip, evicted)) = st.push(ip, fresh)
            && evicted_ip != ip
        {
            rows.extend(evicted.row(evicted_ip));
        }
        if ip != MANY {
            w.firsts += 1;
        }
        rows.push(RefusalRow {
            actor: actor.to_owned(),
            detail: detail.to_owned(),
            address: label(ip),
        });
        rows
    }

    /// Windows closed by `now` (removed); `None` for `now` takes every entry (shutdown).
    pub fn take_due(&self, now: Option<Instant>) -> Vec<RefusalRow> {
        let mut guard = self.lock();
        let st = &mut guard.by_address;
        let due: Vec<IpAddr> = st
            .iter()
            .filter(|(_, p)| {
                now.is_none_or(|n| n.saturating_duration_since(p.started) >= self.window)
            })
            .map(|(ip, _)| *ip)
            .collect();
        due.into_iter()
            .filter_map(|ip| st.pop(&ip).and_then(|p| p.row(ip)))
            .collect()
    }

    /// Addresses tracked; for tests.
    pub fn tracked(&self) -> usize {
        self.lock().by_address.len()
    }
}

/// Note a refused login and write what is due.
pub async fn refused(
    pool: &PgPool,
    log: &RefusalLog,
    ip: IpAddr,
    actor: &str,
    reason: &'static str,
    detail: &str,
) {
    for row in log.note(ip, actor, reason, detail, Instant::now()) {
        write_refusal(pool, &row).await;
    }
}

/// Write the aggregated rows of closed windows (all of them when `all`).
pub async fn flush_refusals(pool: &PgPool, log: &RefusalLog, all: bool) {
    let now = (!all).then(Instant::now);
    for row in log.take_due(now) {
        write_refusal(pool, &row).await;
    }
}

async fn write_refusal(pool: &PgPool, row: &RefusalRow) {
    super::write(
        pool,
        AuditEntry {
            actor: &row.actor,
            action: Action::Login,
            target: "",
            outcome: Outcome::Failure,
            detail: &row.detail,
            address: &row.address,
        },
    )
    .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn refusals_are_one_row_per_address_and_window_with_a_count() {
        let log = RefusalLog::new(Duration::from_secs(60), NonZeroUsize::new(100).unwrap());
        let t0 = Instant::now();
        let mut rows = Vec::new();
        for i in 0..1000u32 {
            let addr = ip(2 + (i % 3) as u8);
            let reason = if i % 2 == 0 {
                "wrong username or password"
            } else {
                "throttled"
            };
            rows.extend(log.note(
                addr,
                "admin",
                reason,
                reason,
                t0 + Duration::from_millis(i as u64),
            ));
        }
        // One immediate row per address.
        assert_eq!(rows.len(), 3);
        // The window closes: one row per address carrying the count of the rest.
        assert!(log.take_due(Some(t0 + Duration::from_secs(30))).is_empty());
        let closed = log.take_due(Some(t0 + Duration::from_secs(61)));
        assert_eq!(closed.len(), 3);
        let total: u64 = closed
            .iter()
            .map(|r| r.detail.split(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total + 3, 1000);
        assert!(
            closed[0].detail.contains("throttled: "),
            "{}",
            closed[0].detail
        );
        assert_eq!(log.tracked(), 0);
    }

    #[test]
    fn a_new_window_writes_the_old_count_and_a_fresh_first_row() {
        let log = RefusalLog::new(Duration::from_secs(60), NonZeroUsize::new(100).unwrap());
        let t0 = Instant::now();
        assert_eq!(log.note(ip(2), "a", "r", "d", t0).len(), 1);
        assert!(log.note(ip(2), "b", "r", "d", t0).is_empty());
        let rows = log.note(ip(2), "a", "r", "d", t0 + Duration::from_secs(61));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].actor, "several users");
        assert!(rows[0].detail.starts_with("1 more refused"));
        assert_eq!(rows[1].detail, "d");
    }

    #[test]
    fn memory_is_bounded_and_evicted_counts_are_written_not_lost() {
        let log = RefusalLog::new(Duration::from_secs(60), NonZeroUsize::new(2).unwrap());
        let t0 = Instant::now();
        let _ = log.note(ip(2), "a", "r", "d", t0);
        let _ = log.note(ip(2), "a", "r", "d", t0);
        let _ = log.note(ip(3), "a", "r", "d", t0);
        let rows = log.note(ip(4), "a", "r", "d", t0);
        assert_eq!(log.tracked(), 2);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].address, "127.0.0.2");
        assert!(rows[0].detail.starts_with("1 more"));
        // Shutdown takes everything still counted.
        let _ = log.note(ip(4), "a", "r", "d", t0);
        assert_eq!(log.take_due(None).len(), 1);
    }

    #[test]
    fn a_spray_from_many_addresses_adds_a_bounded_number_of_rows() {
        let log = RefusalLog::new(Duration::from_secs(60), NonZeroUsize::new(10_000).unwrap());
        let t0 = Instant::now();
        let mut rows = Vec::new();
        for i in 0..5000u32 {
            let addr = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            rows.extend(log.note(addr, "a", "r", "d", t0));
        }
        assert_eq!(rows.len(), ADDRESSES_PER_WINDOW as usize + 1);
        assert_eq!(rows.last().unwrap().address, MANY_LABEL);
        let closed = log.take_due(Some(t0 + Duration::from_secs(60)));
        assert_eq!(closed.len(), 1);
        assert!(closed[0].detail.starts_with("4899 more"), "{:?}", closed[0]);
        // The next window starts afresh.
        let rows = log.note(ip(2), "a", "r", "d", t0 + Duration::from_secs(61));
        assert_eq!(rows[0].address, "127.0.0.2");
    }

    #[test]
    fn unknown_login_names_are_never_kept_raw() {
        let typed = "correct horse battery staple";
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"test key");
        let a = login_actor(&key, typed, false);
        assert!(!a.contains(typed));
        assert!(a.starts_with("unknown user #"));
        assert_eq!(a.len(), "unknown user #".len() + 8);
        // Not the plain hash a dictionary could reverse.
        let plain = <sha2::Sha256 as sha2::Digest>::digest(typed.as_bytes());
        assert!(!a.contains(&hex::encode(&plain[..4])));
        // Stable within a process (rows correlate), different under another key.
        assert_eq!(a, login_actor(&key, typed, false));
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"other key");
        assert_ne!(a, login_actor(&other, typed, false));
        assert_eq!(login_actor(&key, "admin", true), "admin");
    }
}
