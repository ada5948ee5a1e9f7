//! The gate's decisions through `proxy::app` with `tower::ServiceExt::oneshot`, on a certs
//! directory made by bulwark-pki and the shipped policy file. The upstream is a closed port:
//! a refused call never gets there, an allowed one comes back UNAVAILABLE from the forward.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bulwark_gate::audit::{AuditRecord, Decision};
use bulwark_gate::caller::{Binding, Keys, PeerCache};
use bulwark_gate::metrics::Metrics;
use bulwark_gate::proxy::{self, Gate};
use bulwark_gate::reload::Policies;
use bulwark_gate::sink::AuditSink;
use bulwark_gate::upstream::Upstream;
use bulwark_pki::binding::Confirmation;
use bulwark_pki::jwt::{Claims, SigningKey};
use bulwark_serve::PeerCertificate;
use prost::Message;
use temporalio_common::protos::temporal::api::{
    common::v1::WorkflowType,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        PollWorkflowTaskQueueRequest, StartWorkflowExecutionRequest,
        TerminateWorkflowExecutionRequest,
    },
};
use tower::ServiceExt;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    gate: Arc<Gate>,
    audit: tokio::sync::mpsc::Receiver<AuditRecord>,
    key: SigningKey,
    policy: PathBuf,
}

fn shipped_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/gate-policy.toml")
}

async fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    bulwark_pki::generate(
        &dir,
        &bulwark_pki::Settings::default(),
        bulwark_pki::Mode::Missing,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let policy = tmp.path().join("gate-policy.toml");
    std::fs::copy(shipped_policy(), &policy).unwrap();
    let key = SigningKey::from_pem(
        &std::fs::read_to_string(dir.join("temporal-jwt-private.key")).unwrap(),
    )
    .unwrap();
    let identity = bulwark_tls::Reloading::new(bulwark_tls::PemFiles::new(
        dir.join("gate-client.crt"),
        dir.join("gate-client.key"),
    ))
    .unwrap();
    // A port nothing listens on: every forwarded call fails fast with UNAVAILABLE.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let upstream = Upstream {
        address,
        server_name: "temporal".into(),
        roots: bulwark_tls::load_roots(&dir.join("ca.crt")).unwrap(),
        identity,
        connect_timeout: Duration::from_secs(1),
    }
    .channel()
    .unwrap();
    // Every record, mutating or not, goes to the test through a sink of its own.
    let (tx, rx) = tokio::sync::mpsc::channel(100);
    let gate = Arc::new(Gate {
        keys: Keys::load(dir.join("jwks.json"), "temporal", time::Duration::hours(24)).unwrap(),
        policies: Policies::load(&policy).unwrap(),
        peers: PeerCache::default(),
        binding: Binding::Identity,
        upstream,
        audit: AuditSink::new(Arc::new(Metrics::default()), Some(tx)),
        max_request_bytes: 64 * 1024,
        body_timeout: Duration::from_secs(5),
        body_reads: tokio::sync::Semaphore::new(16),
    });
    Fixture {
        _tmp: tmp,
        dir,
        gate,
        audit: rx,
        key,
        policy,
    }
}

fn der(dir: &Path, cert: &str) -> Vec<u8> {
    bulwark_tls::load_certs(&dir.join(format!("{cert}.crt"))).unwrap()[0].to_vec()
}

impl Fixture {
    /// A token for `scope` bound to `bound_to`'s certificate (None: unbound).
    fn token(&self, scope: &str, bound_to: Option<&str>, ttl: time::Duration) -> String {
        let mut c = Claims::new(
            "test",
            "bulwark",
            "temporal",
            scope,
            vec!["default:write".into()],
            time::OffsetDateTime::now_utc(),
            ttl,
        );
        if let Some(cert) = bound_to {
            c = c.with_cnf(Confirmation::for_certificate(&der(&self.dir, cert)).unwrap());
        }
        self.key.sign(&c).unwrap()
    }

    async fn call(
        &self,
        cert: &str,
        token: Option<&str>,
        method: &str,
        message: Vec<u8>,
    ) -> (i32, String) {
        self.call_framed(cert, token, method, frame(0, &message))
            .await
    }

    async fn call_framed(
        &self,
        cert: &str,
        token: Option<&str>,
        method: &str,
        body: Vec<u8>,
    ) -> (i32, String) {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!(
                "/temporal.api.workflowservice.v1.WorkflowService/{method}"
            ))
            .header("content-type", "application/grpc");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::from(body)).unwrap();
        req.extensions_mut()
            .insert(PeerCertificate(Arc::from(der(&self.dir, cert).as_slice())));
        let res = proxy::app(self.gate.clone()).oneshot(req).await.unwrap();
        let status = res
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let message = res
            .headers()
            .get("grpc-message")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status.unwrap_or(-1), message)
    }
}

fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn poll(queue: &str) -> Vec<u8> {
    PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: Some(TaskQueue {
            name: queue.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn start(queue: &str) -> Vec<u8> {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: "wf-1".into(),
        workflow_type: Some(WorkflowType {
            name: "Greeting".into(),
        }),
        task_queue: Some(TaskQueue {
            name: queue.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

const UNAVAILABLE: i32 = 14;
const PERMISSION_DENIED: i32 = 7;
const UNAUTHENTICATED: i32 = 16;

#[tokio::test]
async fn a_worker_polls_its_queues_and_nothing_else() {
    let mut f = fixture().await;
    let t = f.token(
        "temporal-worker",
        Some("client-worker"),
        time::Duration::minutes(10),
    );
    let (s, m) = f
        .call(
            "client-worker",
            Some(&t),
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(s, UNAVAILABLE, "allowed, then the closed upstream: {m}");
    let (s, m) = f
        .call(
            "client-worker",
            Some(&t),
            "StartWorkflowExecution",
            start("bulwark-default"),
        )
        .await;
    assert_eq!(s, PERMISSION_DENIED, "{m}");
    assert!(
        m.contains("StartWorkflowExecution") && m.contains("worker"),
        "names method and role: {m}"
    );
    let terminate = TerminateWorkflowExecutionRequest {
        namespace: "default".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let (s, _) = f
        .call(
            "client-worker",
            Some(&t),
            "TerminateWorkflowExecution",
            terminate,
        )
        .await;
    assert_eq!(s, PERMISSION_DENIED);
    let (s, m) = f
        .call(
            "client-worker",
            Some(&t),
            "PollWorkflowTaskQueue",
            poll("outside-1"),
        )
        .await;
    assert_eq!(s, PERMISSION_DENIED, "{m}");
    assert!(m.contains("outside-1"), "{m}");
    // One record per call, the refusals with the caller's identity.
    let mut records = Vec::new();
    while let Ok(r) = f.audit.try_recv() {
        records.push(r);
    }
    // Only mutating calls reach the store queue: start and terminate.
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.decision == Decision::Deny && r.identity.ends_with("/client/worker"))
    );
    assert_eq!(records[0].method, "WorkflowService/StartWorkflowExecution");
    assert_eq!(records[0].workflow_id, "wf-1");
    assert!(!format!("{records:?}").contains(&t), "no token in a record");
}

#[tokio::test]
async fn a_client_starts_but_cannot_poll_or_leave_its_queues() {
    let f = fixture().await;
    let t = f.token(
        "temporal-client",
        Some("temporal-client"),
        time::Duration::minutes(10),
    );
    let (s, m) = f
        .call(
            "temporal-client",
            Some(&t),
            "StartWorkflowExecution",
            start("bulwark-default"),
        )
        .await;
    assert_eq!(s, UNAVAILABLE, "{m}");
    let (s, _) = f
        .call(
            "temporal-client",
            Some(&t),
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(s, PERMISSION_DENIED);
    let (s, _) = f
        .call(
            "temporal-client",
            Some(&t),
            "StartWorkflowExecution",
            start("outside-1"),
        )
        .await;
    assert_eq!(s, PERMISSION_DENIED);
}

#[tokio::test]
async fn a_token_is_useless_with_another_certificate() {
    let f = fixture().await;
    let worker = f.token(
        "temporal-worker",
        Some("client-worker"),
        time::Duration::minutes(10),
    );
    let (s, m) = f
        .call(
            "client-api",
            Some(&worker),
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(s, UNAUTHENTICATED, "{m}");
    assert!(m.contains("bound to"), "{m}");
    assert!(!m.contains(&worker));
    let unbound = f.token("temporal-worker", None, time::Duration::minutes(10));
    let (s, m) = f
        .call(
            "client-worker",
            Some(&unbound),
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(s, UNAUTHENTICATED, "{m}");
    assert!(m.contains("cnf"), "{m}");
}

#[tokio::test]
async fn bad_credentials_and_bad_requests_are_refused_with_reasons() {
    let f = fixture().await;
    let t = f.token(
        "temporal-worker",
        Some("client-worker"),
        time::Duration::minutes(10),
    );
    let (s, m) = f
        .call(
            "client-worker",
            None,
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(
        (s, m.contains("no bearer token")),
        (UNAUTHENTICATED, true),
        "{m}"
    );
    let expired = {
        let c = Claims::new(
            "t",
            "bulwark",
            "temporal",
            "temporal-worker",
            vec![],
            time::OffsetDateTime::now_utc() - time::Duration::hours(2),
            time::Duration::minutes(10),
        )
        .with_cnf(Confirmation::for_certificate(&der(&f.dir, "client-worker")).unwrap());
        f.key.sign(&c).unwrap()
    };
    let (s, _) = f
        .call(
            "client-worker",
            Some(&expired),
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(s, UNAUTHENTICATED);
    let too_long = f.token(
        "temporal-worker",
        Some("client-worker"),
        time::Duration::hours(48),
    );
    let (s, _) = f
        .call(
            "client-worker",
            Some(&too_long),
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(s, UNAUTHENTICATED);
    let (s, m) = f
        .call("client-worker", Some(&t), "NoSuchMethod", vec![])
        .await;
    assert_eq!(s, PERMISSION_DENIED, "{m}");
    assert!(m.contains("NoSuchMethod"), "{m}");
    let (s, _) = f
        .call_framed(
            "client-worker",
            Some(&t),
            "PollWorkflowTaskQueue",
            frame(1, &poll("bulwark-default")),
        )
        .await;
    assert_eq!(
        s, 12,
        "compressed without a known grpc-encoding: unimplemented"
    );
    let (s, _) = f
        .call_framed(
            "client-worker",
            Some(&t),
            "PollWorkflowTaskQueue",
            vec![0, 0, 0, 0, 9, 1],
        )
        .await;
    assert_eq!(s, 3, "truncated: invalid argument");
    let (s, _) = f
        .call_framed(
            "client-worker",
            Some(&t),
            "PollWorkflowTaskQueue",
            frame(0, &vec![0u8; 70 * 1024]),
        )
        .await;
    assert_eq!(s, 8, "oversized: resource exhausted");
}

#[tokio::test]
async fn a_policy_with_a_typo_is_refused_and_the_old_one_stays() {
    let f = fixture().await;
    let t = f.token(
        "temporal-worker",
        Some("client-worker"),
        time::Duration::minutes(10),
    );
    let good = std::fs::read_to_string(&f.policy).unwrap();
    std::fs::write(
        &f.policy,
        good.replacen("PollWorkflowTaskQueue", "PollWorkflowTaskQeue", 1),
    )
    .unwrap();
    let err = f.gate.policies.reload_if_changed().unwrap_err().to_string();
    let line = good
        .lines()
        .position(|l| l.contains("PollWorkflowTaskQueue"))
        .unwrap()
        + 1;
    assert!(
        err.contains("PollWorkflowTaskQeue") && err.contains(&format!(":{line}:")),
        "names the method and its line {line}: {err}"
    );
    let (s, _) = f
        .call(
            "client-worker",
            Some(&t),
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(s, UNAVAILABLE, "the previous policy still allows polling");
    // A valid change is taken: without polling in the worker role, polling is refused.
    std::fs::write(
        &f.policy,
        good.replacen("    \"PollWorkflowTaskQueue\",\n", "", 1),
    )
    .unwrap();
    assert!(f.gate.policies.reload_if_changed().unwrap());
    let (s, _) = f
        .call(
            "client-worker",
            Some(&t),
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
        )
        .await;
    assert_eq!(s, PERMISSION_DENIED);
}

#[tokio::test]
async fn gzip_requests_are_read_and_judged_like_plain_ones() {
    use std::io::Write;
    let f = fixture().await;
    let t = f.token(
        "temporal-worker",
        Some("client-worker"),
        time::Duration::minutes(10),
    );
    let gz = |m: Vec<u8>| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&m).unwrap();
        frame(1, &e.finish().unwrap())
    };
    for (method, message, want) in [
        (
            "PollWorkflowTaskQueue",
            poll("bulwark-default"),
            UNAVAILABLE,
        ),
        (
            "PollWorkflowTaskQueue",
            poll("outside-1"),
            PERMISSION_DENIED,
        ),
        (
            "StartWorkflowExecution",
            start("bulwark-default"),
            PERMISSION_DENIED,
        ),
    ] {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!(
                "/temporal.api.workflowservice.v1.WorkflowService/{method}"
            ))
            .header("content-type", "application/grpc")
            .header("grpc-encoding", "gzip")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::from(gz(message)))
            .unwrap();
        req.extensions_mut().insert(PeerCertificate(Arc::from(
            der(&f.dir, "client-worker").as_slice(),
        )));
        let res = proxy::app(f.gate.clone()).oneshot(req).await.unwrap();
        assert_eq!(
            res.headers()["grpc-status"],
            want.to_string().as_str(),
            "{method}"
        );
    }
}
