//! The admin page's "Temporal calls" (the gate's audit, `gate_audit`) against a fresh
//! database, through the admin router without a listener: listing, filters, paging,
//! escaping, refused input and the sign-in requirement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode, header},
};
use bulwark_control::admin::{self, Admin, AdminConfig, auth::SESSION_COOKIE};
use http_body_util::BodyExt as _;
use sqlx::PgPool;
use tower::ServiceExt as _;

const SESSION: &str = "gate-audit-test-session-0123456789abcdef";

struct Harness {
    router: axum::Router,
    pool: PgPool,
    _tmp: tempfile::TempDir,
    /// Last: dropped after everything that holds its pool.
    _db: bulwark_db::testing::TestDatabase,
}

async fn start() -> Option<Harness> {
    let db = support::database().await?;
    let pool = db.pool().clone();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = AdminConfig::new(tmp.path().join("certs"), bulwark_pki::Settings::default());
    let state = Admin::new(cfg, pool.clone(), None).unwrap();
    // A signed-in admin: the account and a live session, as a login leaves them (the
    // session id's SHA-256 is stored, never the id).
    sqlx::query(
        "INSERT INTO admin_users (username, password_hash) VALUES ('admin', '$argon2id$test')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO admin_sessions (id_hash, username, csrf_token, expires_at)
         VALUES (sha256(convert_to($1, 'UTF8')), 'admin', 'test-csrf', now() + interval '1 hour')",
    )
    .bind(SESSION)
    .execute(&pool)
    .await
    .unwrap();
    Some(Harness {
        router: admin::router(state),
        pool,
        _tmp: tmp,
        _db: db,
    })
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The calls shown, in page order, by workflow id.
    fn workflow_ids(&self) -> Vec<String> {
        self.body
            .split("<td class=\"workflow\"><code>")
            .skip(1)
            .map(|s| s.split('<').next().unwrap().to_owned())
            .collect()
    }
    fn rows(&self) -> usize {
        self.body.matches("<tr class=\"call ").count()
    }
    /// The `before` cursor of the "Older" form.
    fn older(&self) -> Option<String> {
        let form = self.body.split("id=\"older\"").nth(1)?;
        let marker = "name=\"before\" value=\"";
        let start = form.find(marker)? + marker.len();
        Some(form[start..].split('"').next()?.to_owned())
    }
}

impl Harness {
    async fn get_as(&self, path: &str, signed_in: bool) -> Page {
        let mut req = Request::get(path);
        if signed_in {
            req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={SESSION}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.get_as(path, true).await
    }

    /// `/admin/temporal-calls` with these query parameters (percent-encoded).
    async fn calls(&self, params: &[(&str, &str)]) -> Page {
        let url = reqwest::Url::parse_with_params("http://admin.test/admin/temporal-calls", params)
            .unwrap();
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let page = self.get(&path).await;
        assert_ne!(
            page.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            page.body
        );
        page
    }

    /// One call at `at` (SQL timestamptz literal).
    async fn insert(
        &self,
        at: &str,
        identity: &str,
        method: &str,
        workflow_id: &str,
        decision: &str,
    ) {
        sqlx::query(
            "INSERT INTO gate_audit (at, identity, subject, jti, role, method, namespace, workflow_id, task_queue, decision, rule, grpc_status, latency_ms)
             VALUES ($1::timestamptz, $2, 'sub', 'jti-1', 'worker', $3, 'default', $4, 'bulwark', $5, 'policy line 3', $6, 2.5)",
        )
        .bind(at)
        .bind(identity)
        .bind(method)
        .bind(workflow_id)
        .bind(decision)
        .bind(if decision == "deny" { Some(7) } else { Some(0) })
        .execute(&self.pool)
        .await
        .unwrap();
    }
}

const WORKER: &str = "spiffe://bulwark.local/client/worker";
const API: &str = "spiffe://bulwark.local/client/api";
const START: &str = "WorkflowService/StartWorkflowExecution";
const TERMINATE: &str = "WorkflowService/TerminateWorkflowExecution";

async fn with_calls() -> Option<Harness> {
    let h = start().await?;
    h.insert("2026-05-20T10:00:00Z", WORKER, START, "wf-a", "allow")
        .await;
    h.insert("2026-05-20T11:00:00Z", API, START, "wf-b", "allow")
        .await;
    h.insert("2026-05-20T12:00:00Z", WORKER, TERMINATE, "wf-a", "deny")
        .await;
    h.insert("2026-05-20T13:00:00Z", API, TERMINATE, "wf-c", "allow")
        .await;
    Some(h)
}

#[tokio::test]
async fn calls_are_listed_newest_first_and_filters_narrow_them() {
    let Some(h) = with_calls().await else {
        return;
    };
    let all = h.calls(&[]).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.workflow_ids(), ["wf-c", "wf-a", "wf-b", "wf-a"]);
    assert!(all.body.contains("2026-05-20 13:00:00.000 UTC"));
    assert!(all.body.contains("7 PERMISSION_DENIED"));
    assert!(all.body.contains("2.5 ms"));
    assert_eq!(all.older(), None);

    for (params, want) in [
        (vec![("identity", WORKER)], vec!["wf-a", "wf-a"]),
        (vec![("method", TERMINATE)], vec!["wf-c", "wf-a"]),
        (vec![("workflow_id", "wf-a")], vec!["wf-a", "wf-a"]),
        (vec![("decision", "deny")], vec!["wf-a"]),
        (vec![("decision", "allow")], vec!["wf-c", "wf-b", "wf-a"]),
        (
            vec![("from", "2026-05-20T10:30"), ("to", "2026-05-20T12:00")],
            vec!["wf-a", "wf-b"],
        ),
        // RFC 3339 with an offset: 13:00+02:00 is 11:00 UTC.
        (
            vec![("to", "2026-05-20T13:00:00+02:00")],
            vec!["wf-b", "wf-a"],
        ),
        (vec![("identity", API), ("method", START)], vec!["wf-b"]),
        (
            vec![
                ("identity", WORKER),
                ("decision", "deny"),
                ("workflow_id", "wf-b"),
            ],
            vec![],
        ),
        // A submitted form sends blank fields: no filter.
        (
            vec![
                ("identity", ""),
                ("method", ""),
                ("decision", ""),
                ("from", ""),
                ("to", ""),
            ],
            vec!["wf-c", "wf-a", "wf-b", "wf-a"],
        ),
    ] {
        let page = h.calls(&params).await;
        assert_eq!(page.status, StatusCode::OK, "{params:?}: {}", page.body);
        assert_eq!(page.workflow_ids(), want, "{params:?}");
    }
    // The form shows the filters it was given.
    let page = h.calls(&[("identity", WORKER), ("decision", "deny")]).await;
    assert!(
        page.body
            .contains(&format!("name=\"identity\" value=\"{WORKER}\""))
    );
    assert!(page.body.contains("<option value=\"deny\" selected>"));
    let none = h.calls(&[("workflow_id", "wf-none")]).await;
    assert!(none.body.contains("id=\"no-calls\""), "{}", none.body);
}

#[tokio::test]
async fn pages_hold_one_hundred_calls_and_go_back_by_cursor() {
    let Some(h) = start().await else {
        return;
    };
    // 230 calls a second apart, wf-0 the oldest, and 20 of another identity in between.
    sqlx::query(
        "INSERT INTO gate_audit (at, identity, method, workflow_id, decision, latency_ms)
         SELECT timestamptz '2026-05-20T00:00:00Z' + make_interval(secs => n), $1, $2, 'wf-' || n, 'allow', 1
           FROM generate_series(0, 229) n",
    )
    .bind(WORKER)
    .bind(START)
    .execute(&h.pool)
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut page = h.calls(&[]).await;
    let mut sizes = Vec::new();
    loop {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        sizes.push(page.rows());
        seen.extend(page.workflow_ids());
        let Some(before) = page.older() else { break };
        assert!(page.body.contains("id=\"older\""));
        page = h.calls(&[("before", &before)]).await;
        assert!(
            page.body.contains("id=\"newest\""),
            "an older page links to the newest"
        );
        assert!(sizes.len() < 5, "paging does not end");
    }
    assert_eq!(sizes, [100, 100, 30]);
    let want: Vec<String> = (0..230).rev().map(|n| format!("wf-{n}")).collect();
    assert_eq!(seen, want, "every call once, newest first");

    // The cursor keeps the filters: the second page of one identity's calls.
    sqlx::query(
        "INSERT INTO gate_audit (at, identity, method, workflow_id, decision, latency_ms)
         SELECT timestamptz '2026-05-20T00:00:00.5Z' + make_interval(secs => n), $1, $2, 'api-' || n, 'deny', 1
           FROM generate_series(0, 119) n",
    )
    .bind(API)
    .bind(START)
    .execute(&h.pool)
    .await
    .unwrap();
    let first = h.calls(&[("identity", API)]).await;
    assert_eq!(first.rows(), 100);
    let before = first.older().unwrap();
    let form = first.body.split("id=\"older\"").nth(1).unwrap();
    assert!(form.contains(&format!("name=\"identity\" value=\"{API}\"")));
    let second = h.calls(&[("identity", API), ("before", &before)]).await;
    let ids = second.workflow_ids();
    assert_eq!(ids.len(), 20);
    assert!(ids.iter().all(|id| id.starts_with("api-")), "{ids:?}");
    assert_eq!(ids.last().map(String::as_str), Some("api-0"));
    // An unknown cursor is an empty page, not the first one again.
    let gone = h.calls(&[("before", "999999999")]).await;
    assert_eq!(gone.rows(), 0);
}

#[tokio::test]
async fn recorded_text_is_escaped() {
    let Some(h) = start().await else {
        return;
    };
    let hostile = "<script>alert(1)</script>";
    let quoted = "x\" onmouseover=\"alert(2)";
    h.insert("2026-05-20T10:00:00Z", quoted, START, hostile, "allow")
        .await;
    for page in [
        h.calls(&[]).await,
        // Echoed back in the form's value attributes, too.
        h.calls(&[("workflow_id", hostile), ("identity", quoted)])
            .await,
    ] {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_eq!(page.rows(), 1);
        assert!(!page.body.contains("<script>alert"), "{}", page.body);
        assert!(!page.body.contains("\" onmouseover=\""), "{}", page.body);
        assert!(
            page.body.contains("&#60;script&#62;") || page.body.contains("&lt;script&gt;"),
            "{}",
            page.body
        );
    }
}

#[tokio::test]
async fn bad_filters_are_refused_with_a_reason() {
    let Some(h) = with_calls().await else {
        return;
    };
    let long = "x".repeat(2000);
    for (params, want) in [
        (vec![("from", "yesterday")], "from is not a time"),
        (vec![("to", "2026-05-20T25:00")], "to is not a time"),
        (
            vec![("decision", "maybe")],
            "decision must be allow or deny",
        ),
        (
            vec![("from", "2026-05-20T12:00"), ("to", "2026-05-20T11:00")],
            "from is later than to",
        ),
        (vec![("before", "abc")], "before must be"),
        (vec![("sort", "at")], "unknown parameter"),
        (
            vec![("identity", WORKER), ("identity", API)],
            "more than once",
        ),
        (
            vec![("workflow_id", long.as_str())],
            "longer than 1024 bytes",
        ),
    ] {
        let page = h.calls(&params).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{params:?}");
        assert!(page.body.contains(want), "{params:?}: {}", page.body);
        assert!(!page.body.contains("wf-a"), "{params:?}: rows shown anyway");
    }
}

#[tokio::test]
async fn only_a_signed_in_admin_sees_the_calls() {
    let Some(h) = with_calls().await else {
        return;
    };
    for path in [
        "/admin/temporal-calls",
        "/admin/temporal-calls?identity=spiffe%3A%2F%2Fbulwark.local%2Fclient%2Fworker",
        "/admin/temporal-calls?from=not-a-time",
    ] {
        let page = h.get_as(path, false).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location.as_deref(), Some("/admin/login"), "{path}");
        assert!(!page.body.contains("wf-a"));
    }
    // An ended session is signed out too.
    sqlx::query("UPDATE admin_sessions SET expires_at = now() - interval '1 second'")
        .execute(&h.pool)
        .await
        .unwrap();
    assert_eq!(
        h.get("/admin/temporal-calls").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_navigation_leads_to_the_calls() {
    let Some(h) = start().await else {
        return;
    };
    for path in ["/admin/audit", "/admin/temporal-calls"] {
        let page = h.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(
            page.body.contains(
                "<a href=\"/admin/temporal-calls\" id=\"nav-temporal-calls\">Temporal calls</a>"
            ),
            "{path}"
        );
    }
}
