#![allow(clippy::unwrap_used)]

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
