//! Decode + decide cost per call, the gate's per-request overhead on top of proxying.
//! Target: < 20 us each for a ~1 KB StartWorkflowExecution and a PollWorkflowTaskQueue.

use std::hint::black_box;
use std::time::Instant;

use bulwark_gate_policy::{Caller, Catalog, Policy};
use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message as _;
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads, WorkflowType};
use temporalio_common::protos::temporal::api::enums::v1::TaskQueueKind;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1 as wf;

const POLICY: &str = include_str!("../../../config/gate-policy.toml");

fn start_bytes() -> Vec<u8> {
    wf::StartWorkflowExecutionRequest {
        namespace: "bulwark".into(),
        workflow_id: "order-42".into(),
        workflow_type: Some(WorkflowType {
            name: "ProcessOrder".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "bulwark-orders".into(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }),
        input: Some(Payloads {
            payloads: vec![Payload {
                metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                data: vec![b'x'; 850],
                ..Default::default()
            }],
        }),
        identity: "api@host".into(),
        request_id: "8d3c8a5e-5b43-4c5e-9f43-1f6f0b9d1d7a".into(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn poll_bytes() -> Vec<u8> {
    wf::PollWorkflowTaskQueueRequest {
        namespace: "bulwark".into(),
        task_queue: Some(TaskQueue {
            name: "worker-host:1234-5678".into(),
            kind: TaskQueueKind::Sticky as i32,
            normal_name: "bulwark-orders".into(),
        }),
        identity: "1234@worker-host".into(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn bench(c: &mut Criterion) {
    let policy = match Policy::parse(POLICY, "config/gate-policy.toml") {
        Ok(p) => p,
        Err(e) => panic!("shipped policy: {e}"),
    };
    let cases = [
        (
            "start_workflow_execution",
            "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
            start_bytes(),
            "api",
            "temporal-client",
        ),
        (
            "poll_workflow_task_queue",
            "/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue",
            poll_bytes(),
            "worker",
            "temporal-worker",
        ),
    ];
    for (label, path, bytes, identity, scope) in cases {
        let scopes = vec!["openid".to_string(), scope.to_string()];
        let caller = Caller {
            identity,
            scopes: &scopes,
        };
        let run = || {
            let method = Catalog::lookup(black_box(path)).ok_or("unknown method")?;
            let facts = method.facts(black_box(&bytes)).map_err(|_| "decode")?;
            let decision = policy.decide(&caller, method, &facts);
            Ok::<_, &str>(decision.allowed)
        };
        assert_eq!(run(), Ok(true), "{label} must be allowed");
        // A plain figure besides criterion's report, for the README and the PR.
        let n = 200_000u32;
        let t = Instant::now();
        for _ in 0..n {
            let _ = black_box(run());
        }
        println!(
            "{label}: message {} bytes, lookup+decode+decide {:.2} us/call",
            bytes.len(),
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        );
        c.bench_function(&format!("decide/{label}"), |b| b.iter(|| black_box(run())));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
