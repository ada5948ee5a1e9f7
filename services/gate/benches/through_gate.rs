//! The gate's cost, measured against a running stack (`scripts/up.sh`): the same calls, with
//! the same token, straight to Temporal's frontend (with the gate's own certificate, the only
//! one it trusts) and through the gate, in one run, side by side.
//!
//!   cargo bench -p bulwark-gate --bench through_gate            # 2,000 calls per case
//!   BULWARK_BENCH_CALLS=10000 BULWARK_BENCH_CONCURRENCY=16 cargo bench -p bulwark-gate --bench through_gate
//!
//! Prints p50 / p99 latency, calls per second and the gate's CPU time per call (from
//! /proc/<pid>/stat of the running bulwark-gate), and the ratios.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_gate::upstream::Upstream;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use prost::Message;
use temporalio_common::protos::temporal::api::{
    common::v1::WorkflowType,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{DescribeNamespaceRequest, StartWorkflowExecutionRequest},
};
use tower::ServiceExt;

fn env_file() -> HashMap<String, String> {
    let path = std::env::var("BULWARK_ENV_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.bulwark/env"));
    let mut env = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(&path) {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                if !k.starts_with('#') {
                    env.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
    }
    env
}

fn channel(address: &str, certs: &Path, identity: &str) -> tonic::transport::Channel {
    Upstream {
        address: address.to_owned(),
        server_name: "temporal".into(),
        roots: bulwark_tls::load_roots(&certs.join("ca.crt")).unwrap(),
        identity: bulwark_tls::Reloading::new(bulwark_tls::PemFiles::new(
            certs.join(format!("{identity}.crt")),
            certs.join(format!("{identity}.key")),
        ))
        .unwrap(),
        connect_timeout: Duration::from_secs(5),
    }
    .channel()
    .unwrap()
}

fn frame(message: &[u8]) -> Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

async fn call(
    ch: &tonic::transport::Channel,
    method: &str,
    token: &str,
    body: Bytes,
) -> Result<(), String> {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!(
            "/temporal.api.workflowservice.v1.WorkflowService/{method}"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(tonic::body::Body::new(Full::new(body)))
        .unwrap();
    let res = ch.clone().oneshot(req).await.map_err(|e| e.to_string())?;
    let head_status = res
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let collected = res.into_body().collect().await.map_err(|e| e.to_string())?;
    let status = head_status.or_else(|| {
        collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    match status.as_deref() {
        Some("0") => Ok(()),
        other => Err(format!("grpc-status {other:?}")),
    }
}

fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

struct Figures {
    p50: Duration,
    p99: Duration,
    per_second: f64,
    errors: usize,
    gate_cpu_per_call_us: Option<f64>,
}

async fn run(
    ch: &tonic::transport::Channel,
    method: &'static str,
    token: Arc<str>,
    calls: usize,
    concurrency: usize,
    make: Arc<dyn Fn(usize) -> Bytes + Send + Sync>,
    gate_pid: Option<&str>,
) -> Figures {
    // Warm the connection (and the gate's caches) outside the measurement.
    for i in 0..20 {
        let _ = call(ch, method, &token, make(usize::MAX - i)).await;
    }
    let cpu_before = gate_pid.and_then(cpu_ticks);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (ch, token, next, make) = (ch.clone(), token.clone(), next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= calls {
                    break;
                }
                let t = Instant::now();
                if call(&ch, method, &token, make(i)).await.is_err() {
                    errors += 1;
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu_after = gate_pid.and_then(cpu_ticks);
    lat.sort();
    let tick_us = 1_000_000.0 / 100.0; // USER_HZ is 100 on Linux
    Figures {
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
        per_second: calls as f64 / elapsed.as_secs_f64(),
        errors,
        gate_cpu_per_call_us: cpu_before
            .zip(cpu_after)
            .map(|(b, a)| (a - b) as f64 * tick_us / calls as f64),
    }
}

#[tokio::main]
async fn main() {
    let env = env_file();
    let (Some(gate), Some(upstream), Some(certs)) = (
        env.get("BULWARK_TEMPORAL_ADDRESS"),
        env.get("BULWARK_TEMPORAL_UPSTREAM_ADDRESS"),
        env.get("BULWARK_CERTS_DIR"),
    ) else {
        println!("through_gate: skipped (no running stack with a gate: run scripts/up.sh)");
        return;
    };
    let certs = PathBuf::from(certs);
    let ns = env
        .get("BULWARK_NAMESPACES")
        .and_then(|n| n.split(',').next().map(str::to_owned))
        .unwrap_or_else(|| "default".into());
    let calls: usize = std::env::var("BULWARK_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let concurrency: usize = std::env::var("BULWARK_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let token: Arc<str> = std::fs::read_to_string(certs.join("client-token.jwt"))
        .unwrap()
        .trim()
        .into();
    let gate_pid = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.bulwark/run/bulwark-gate.pid"),
    )
    .ok()
    .map(|s| s.trim().to_owned());

    let direct = channel(upstream, &certs, "gate-client");
    let through = channel(gate, &certs, "temporal-client");
    let describe: Arc<dyn Fn(usize) -> Bytes + Send + Sync> = {
        let ns = ns.clone();
        Arc::new(move |_| {
            frame(
                &DescribeNamespaceRequest {
                    namespace: ns.clone(),
                    ..Default::default()
                }
                .encode_to_vec(),
            )
        })
    };
    let run_id = uuid_like();
    let start: Arc<dyn Fn(usize) -> Bytes + Send + Sync> = {
        let ns = ns.clone();
        Arc::new(move |i| {
            frame(
                &StartWorkflowExecutionRequest {
                    namespace: ns.clone(),
                    workflow_id: format!("bench-{run_id}-{i}"),
                    workflow_type: Some(WorkflowType {
                        name: "BenchNoop".into(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: "bulwark-bench".into(),
                        ..Default::default()
                    }),
                    // Nobody polls bulwark-bench: each run times out after a second and is gone.
                    workflow_execution_timeout: Some(prost_types_duration(1)),
                    request_id: format!("bench-{run_id}-{i}"),
                    ..Default::default()
                }
                .encode_to_vec(),
            )
        })
    };

    println!("through_gate: {calls} calls per case, {concurrency} concurrent, namespace {ns}");
    println!("| call | path | p50 | p99 | calls/s | errors | gate CPU/call |");
    println!("|---|---|---|---|---|---|---|");
    for (name, make, method) in [
        ("DescribeNamespace", describe, "DescribeNamespace"),
        ("StartWorkflowExecution", start, "StartWorkflowExecution"),
    ] {
        let d = run(
            &direct,
            method,
            token.clone(),
            calls,
            concurrency,
            make.clone(),
            None,
        )
        .await;
        let g = run(
            &through,
            method,
            token.clone(),
            calls,
            concurrency,
            make.clone(),
            gate_pid.as_deref(),
        )
        .await;
        for (path, f) in [("direct", &d), ("gate", &g)] {
            println!(
                "| {name} | {path} | {:.2} ms | {:.2} ms | {:.0} | {} | {} |",
                f.p50.as_secs_f64() * 1e3,
                f.p99.as_secs_f64() * 1e3,
                f.per_second,
                f.errors,
                f.gate_cpu_per_call_us
                    .map_or("-".into(), |us| format!("{us:.0} us")),
            );
        }
        println!(
            "| {name} | gate vs direct | +{:.2} ms | | {:.2}x | | |",
            (g.p50.as_secs_f64() - d.p50.as_secs_f64()) * 1e3,
            g.per_second / d.per_second
        );
    }
}

fn prost_types_duration(seconds: i64) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration { seconds, nanos: 0 }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
