#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn fresh_pollers(now: OffsetDateTime) -> PollerCheck {
    PollerCheck {
        at: Some(now),
        workflow: true,
        activity: true,
        error: None,
    }
}

#[test]
fn readiness_requires_everything() {
    let now = OffsetDateTime::now_utc();
    let age = Duration::from_secs(30);
    let p = fresh_pollers(now);
    assert_eq!(
        not_ready_reason(true, false, true, None, &p, now, age),
        None
    );
    assert!(
        not_ready_reason(true, true, true, None, &p, now, age)
            .unwrap()
            .contains("shutting")
    );
    // A failed refresh while the held token is still valid: still ready.
    let r = not_ready_reason(
        true,
        false,
        true,
        Some("invalid_client".into()),
        &p,
        now,
        age,
    );
    assert_eq!(r, None);
    // Once the token is gone too, the reason names both.
    let r = not_ready_reason(
        true,
        false,
        false,
        Some("invalid_client".into()),
        &p,
        now,
        age,
    )
    .unwrap();
    assert!(
        r.contains("cannot authenticate") && r.contains("invalid_client"),
        "{r}"
    );
    assert!(
        not_ready_reason(true, false, false, None, &p, now, age)
            .unwrap()
            .contains("no valid")
    );
    assert!(
        not_ready_reason(false, false, true, None, &p, now, age)
            .unwrap()
            .contains("not running")
    );
    let none = PollerCheck {
        workflow: false,
        activity: false,
        ..p.clone()
    };
    assert!(
        not_ready_reason(true, false, true, None, &none, now, age)
            .unwrap()
            .contains("no active pollers")
    );
    let half = PollerCheck {
        activity: false,
        ..p.clone()
    };
    assert!(
        not_ready_reason(true, false, true, None, &half, now, age)
            .unwrap()
            .contains("activity")
    );
    let stale = PollerCheck {
        at: Some(now - Duration::from_secs(60)),
        ..p.clone()
    };
    assert!(
        not_ready_reason(true, false, true, None, &stale, now, age)
            .unwrap()
            .contains("stale")
    );
    let err = PollerCheck {
        error: Some("PermissionDenied".into()),
        ..p
    };
    assert!(
        not_ready_reason(true, false, true, None, &err, now, age)
            .unwrap()
            .contains("PermissionDenied")
    );
}

#[test]
fn metrics_render_as_prometheus_text() {
    let m = Metrics::default();
    m.activity("greet");
    m.activity("greet");
    m.credential_resolution(true);
    m.credential_resolution(false);
    m.activity_failed("http_call", "transient");
    m.ready.set(1);
    m.active_pollers
        .get_or_create(&KindLabel { kind: "workflow" })
        .set(1);
    let s = m.render();
    for line in [
        "# TYPE bulwark_worker_activities_total counter",
        "bulwark_worker_activities_total{activity=\"greet\"} 2",
        "bulwark_worker_credential_resolutions_total{result=\"ok\"} 1",
        "bulwark_worker_credential_resolutions_total{result=\"failed\"} 1",
        "bulwark_worker_activity_failures_total{activity=\"http_call\",type=\"transient\"} 1",
        "# TYPE bulwark_worker_ready gauge",
        "bulwark_worker_ready 1",
        "bulwark_worker_active_pollers{kind=\"workflow\"} 1",
    ] {
        assert!(s.lines().any(|l| l == line), "no {line:?} in\n{s}");
    }
    assert_eq!(
        s.matches("# TYPE bulwark_worker_activities_total counter")
            .count(),
        1
    );
    // No token manager watched yet: its counters are absent rather than made up.
    assert!(!s.contains("bulwark_worker_token_refreshes_total"), "{s}");
    let tokens = TokenManager::builder("https://control.invalid/oauth/token", "worker")
        .build()
        .unwrap();
    m.watch_tokens(&tokens);
    let s = m.render();
    for line in [
        "# TYPE bulwark_worker_token_refreshes_total counter",
        "bulwark_worker_token_refreshes_total 0",
        "bulwark_worker_token_refresh_failures_total 0",
    ] {
        assert!(s.lines().any(|l| l == line), "no {line:?} in\n{s}");
    }
}
