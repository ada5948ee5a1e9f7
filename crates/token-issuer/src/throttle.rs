//! Who may make the token endpoint do work, in the order the work costs.
//!
//! 1. Syntax (in [`crate::grant::TokenRequest::new`]): a client id that is not in the
//!    registered shape, or an oversized secret, is refused before anything below: it touches
//!    no limiter, so it adds no key.
//! 2. `address`: every well-formed request from one address takes a token from a generous
//!    bucket (by default 100/s, burst 200). It only stops one address hammering; it is well
//!    above what the clients sharing one host need.
//! 3. `client_failures` / `address_failures`: if the (client id, address) pair, or the
//!    address as a whole, has used up its failure budget, the request is refused with 429
//!    *before* the database lookup and the secret check. Nothing is charged: a refused
//!    request does no work, so it need not cost anything.
//! 4. Lookup and constant-time secret check (unknown clients compare against a decoy).
//! 5. A failure takes a token from the pair's failure bucket (default burst 10, one back
//!    every 10 s) and from the address's failure bucket (default burst 50, one back per
//!    second). A success takes a token from the client's issuance bucket (`client_rate`,
//!    default 50/s, burst 100): only a caller holding the secret can spend it.
//!
//! The check (3) and the charge (5) are two steps, not a reservation: requests of one pair
//! already past the check when its budget runs out still complete, so a pair can overshoot
//! by the requests it has in flight (bounded by the listener's connection and stream limits).
//! A reservation would instead refuse a real client's own concurrent requests.
//!
//! So the real client, which authenticates, is throttled only by its own success rate or
//! by failures from its own address: failures for `worker` from address A never touch
//! (`worker`, B) nor `worker`'s issuance bucket.
//!
//! What an attacker with many addresses can still do, and the bound:
//! - Database lookups: each address gets at most `address_failure_burst` lookups that fail,
//!   then `address_failures_per_second`; with N addresses, at most
//!   N × (burst + rate × t) failed lookups over t seconds. The rest are refused from memory.
//! - Memory: four LRU maps of `capacity` keys each (default 10,000); a key is at most a
//!   63-byte [`ClientId`] plus an address, so the whole state stays at a few MB however many
//!   ids or addresses are tried. Eviction is per key, never a wipe.
//! - Churn: more distinct addresses than `capacity` evict each other's buckets, and an evicted
//!   key comes back with a full budget. IPv6 addresses are keyed by their /64 (one host's
//!   usual allocation), so churning needs that many distinct /64s, not a single host's
//!   address space. Past that the bound is the listener's connection limit and the database
//!   pool (the pool's size caps concurrent lookups; a flood then adds latency for real
//!   clients, it cannot make them fail authentication). A real client's own buckets are
//!   evicted only by churn too; evicted, they come back full, never locked.
//! - A host that shares an address with the real client (same machine, same NAT) can use up
//!   that address's failure budget and so delay the real client from that address: a
//!   per-address rule cannot tell two callers on one address apart.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroUsize,
    time::Duration,
};

use crate::{
    ClientId,
    ratelimit::{KeyedLimiter, Rate},
};

/// Why a request was refused with 429. The string form is a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThrottleReason {
    /// The address sends more requests than any client needs.
    Address,
    /// The address has failed authentication too often, for any client.
    AddressFailures,
    /// This (client, address) pair has failed authentication too often.
    ClientFailures,
    /// The authenticated client asks for tokens faster than its issuance rate.
    ClientRate,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleReason::Address => "address",
            ThrottleReason::AddressFailures => "address_failures",
            ThrottleReason::ClientFailures => "client_failures",
            ThrottleReason::ClientRate => "client_rate",
        }
    }
}

/// A refusal with how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub reason: ThrottleReason,
    pub retry_after: Duration,
}

impl Throttled {
    /// The `Retry-After` value: whole seconds, rounded up, at least 1 (0 would invite an
    /// immediate retry that is refused again).
    pub fn retry_after_secs(&self) -> u64 {
        let s = self.retry_after.as_secs();
        let s = if self.retry_after.subsec_nanos() > 0 {
            s.saturating_add(1)
        } else {
            s
        };
        s.max(1)
    }
}

/// The failure budgets and the bound on keys; request and issuance rates are in
/// [`crate::IssuerSettings`].
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleSettings {
    /// Failed authentications one (client id, address) pair may make at once...
    pub failure_burst: u32,
    /// ...and how fast that budget comes back.
    pub failures_per_second: f64,
    /// Failed authentications one address may make at once, for any client ids...
    pub address_failure_burst: u32,
    /// ...and how fast that budget comes back.
    pub address_failures_per_second: f64,
    /// Keys each limiter holds before evicting the least recently used.
    pub capacity: usize,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            failure_burst: 10,
            failures_per_second: 0.1,
            address_failure_burst: 50,
            address_failures_per_second: 1.0,
            capacity: 10_000,
        }
    }
}

/// The number of keys each limiter holds, for a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimiterKeys {
    pub address: usize,
    pub address_failures: usize,
    pub client_failures: usize,
    pub client_rate: usize,
}

impl LimiterKeys {
    pub fn labelled(&self) -> [(&'static str, usize); 4] {
        [
            (ThrottleReason::Address.as_str(), self.address),
            (
                ThrottleReason::AddressFailures.as_str(),
                self.address_failures,
            ),
            (
                ThrottleReason::ClientFailures.as_str(),
                self.client_failures,
            ),
            (ThrottleReason::ClientRate.as_str(), self.client_rate),
        ]
    }
}

/// An address as a limiter key: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The token endpoint's four limiters; see the module documentation for the order.
#[derive(Debug)]
pub struct Throttle {
    by_address: KeyedLimiter<IpAddr>,
    failures_by_address: KeyedLimiter<IpAddr>,
    failures_by_pair: KeyedLimiter<(ClientId, IpAddr)>,
    issuance_by_client: KeyedLimiter<ClientId>,
}

impl Throttle {
    pub fn new(per_address: Rate, per_client: Rate, settings: &ThrottleSettings) -> Self {
        // At least one key, or the limiter could hold no state at all.
        let cap = NonZeroUsize::new(settings.capacity).unwrap_or(NonZeroUsize::MIN);
        Throttle {
            by_address: KeyedLimiter::new(per_address, cap),
            failures_by_address: KeyedLimiter::new(
                Rate::new(
                    settings.address_failures_per_second,
                    settings.address_failure_burst,
                ),
                cap,
            ),
            failures_by_pair: KeyedLimiter::new(
                Rate::new(settings.failures_per_second, settings.failure_burst),
                cap,
            ),
            issuance_by_client: KeyedLimiter::new(per_client, cap),
        }
    }

    /// Step 2: one token from the address's request bucket.
    pub fn admit(&self, peer: IpAddr) -> Result<(), Throttled> {
        self.by_address
            .acquire(address_key(peer))
            .map_err(|retry_after| Throttled {
                reason: ThrottleReason::Address,
                retry_after,
            })
    }

    /// Step 3: refuse, without charging, a pair or address that has used up its failures.
    pub fn check_failures(&self, client: &ClientId, peer: IpAddr) -> Result<(), Throttled> {
        let addr = address_key(peer);
        // The lookup needs an owned key; a ClientId is at most 63 bytes.
        let pair = self.failures_by_pair.throttled(&(client.clone(), addr));
        let address = self.failures_by_address.throttled(&addr);
        match (pair, address) {
            (None, None) => Ok(()),
            (Some(p), a) => Err(Throttled {
                reason: ThrottleReason::ClientFailures,
                retry_after: a.map_or(p, |a| a.max(p)),
            }),
            (None, Some(a)) => Err(Throttled {
                reason: ThrottleReason::AddressFailures,
                retry_after: a,
            }),
        }
    }

    /// Step 5, failure: count it against the pair and the address.
    pub fn record_failure(&self, client: &ClientId, peer: IpAddr) {
        let addr = address_key(peer);
        self.failures_by_pair.charge((client.clone(), addr));
        self.failures_by_address.charge(addr);
    }

    /// Step 5, success: one token from the authenticated client's issuance bucket.
    pub fn admit_issuance(&self, client: &ClientId) -> Result<(), Throttled> {
        self.issuance_by_client
            .acquire(client.clone())
            .map_err(|retry_after| Throttled {
                reason: ThrottleReason::ClientRate,
                retry_after,
            })
    }

    pub fn keys(&self) -> LimiterKeys {
        LimiterKeys {
            address: self.by_address.len(),
            address_failures: self.failures_by_address.len(),
            client_failures: self.failures_by_pair.len(),
            client_rate: self.issuance_by_client.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ClientId {
        ClientId::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn throttle() -> Throttle {
        Throttle::new(
            Rate::new(100.0, 200),
            Rate::new(50.0, 100),
            &ThrottleSettings::default(),
        )
    }

    #[test]
    fn a_failure_flood_for_one_pair_does_not_touch_other_pairs_or_issuance() {
        let t = throttle();
        let worker = id("worker");
        let (a, b) = (ip("127.0.0.2"), ip("127.0.0.3"));
        for _ in 0..10 {
            t.check_failures(&worker, a).unwrap();
            t.record_failure(&worker, a);
        }
        let refused = t.check_failures(&worker, a).unwrap_err();
        assert_eq!(refused.reason, ThrottleReason::ClientFailures);
        // One failure back every 10 s: the wait is about that, not minutes, not zero.
        assert!(
            (9..=10).contains(&refused.retry_after_secs()),
            "{refused:?}"
        );
        // The same client from another address, and the client's own issuance, are free.
        t.check_failures(&worker, b).unwrap();
        for _ in 0..100 {
            t.admit_issuance(&worker).unwrap();
        }
        assert_eq!(
            t.admit_issuance(&worker).unwrap_err().reason,
            ThrottleReason::ClientRate
        );
        // Another client from the flooding address still has its own pair budget.
        t.check_failures(&id("api"), a).unwrap();
    }

    #[test]
    fn spraying_client_ids_from_one_address_uses_up_the_address_budget() {
        let t = throttle();
        let a = ip("10.0.0.7");
        for i in 0..50 {
            let c = id(&format!("guess{i}"));
            t.check_failures(&c, a).unwrap();
            t.record_failure(&c, a);
        }
        let refused = t.check_failures(&id("fresh"), a).unwrap_err();
        assert_eq!(refused.reason, ThrottleReason::AddressFailures);
        assert_eq!(refused.retry_after_secs(), 1);
        t.check_failures(&id("fresh"), ip("10.0.0.8")).unwrap();
    }

    #[test]
    fn the_address_bucket_refuses_a_hammering_address_only() {
        let t = throttle();
        for _ in 0..200 {
            t.admit(ip("127.0.0.9")).unwrap();
        }
        let refused = t.admit(ip("127.0.0.9")).unwrap_err();
        assert_eq!(refused.reason, ThrottleReason::Address);
        assert_eq!(refused.retry_after_secs(), 1);
        t.admit(ip("127.0.0.1")).unwrap();
    }

    #[test]
    fn keys_are_bounded_by_capacity() {
        let t = Throttle::new(
            Rate::new(1.0, 1),
            Rate::new(1.0, 1),
            &ThrottleSettings {
                capacity: 64,
                ..ThrottleSettings::default()
            },
        );
        for i in 0..1_000u32 {
            let addr = IpAddr::from(i.to_be_bytes());
            let c = id(&format!("c{i}"));
            let _ = t.admit(addr);
            t.record_failure(&c, addr);
            let _ = t.admit_issuance(&c);
        }
        let k = t.keys();
        assert_eq!(
            (
                k.address,
                k.address_failures,
                k.client_failures,
                k.client_rate
            ),
            (64, 64, 64, 64)
        );
        // Checking does not add keys.
        let before = t.keys();
        for i in 0..100 {
            let _ = t.check_failures(&id(&format!("n{i}")), ip("192.0.2.1"));
        }
        assert_eq!(t.keys(), before);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(address_key(ip("::ffff:127.0.0.2")), ip("127.0.0.2"));
        assert_eq!(address_key(ip("127.0.0.2")), ip("127.0.0.2"));
        let t = throttle();
        let worker = id("worker");
        for n in 0..10u16 {
            let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n));
            t.record_failure(&worker, addr);
        }
        // Ten different addresses in one /64 are one attacker.
        assert!(t.check_failures(&worker, ip("2001:db8::ffff")).is_err());
        assert!(t.check_failures(&worker, ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let r = |ms| {
            Throttled {
                reason: ThrottleReason::Address,
                retry_after: Duration::from_millis(ms),
            }
            .retry_after_secs()
        };
        assert_eq!((r(0), r(1), r(1000), r(1001), r(9_500)), (1, 1, 1, 2, 10));
    }
}
