#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Cost of a cached `get_access_token` against plain-lock baselines, in one run.
//!
//! The cached path never awaits, so each iteration polls the future once with
//! a no-op waker; that measures the manager itself rather than an executor.

#[path = "../tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bulwark_token_client::{AccessToken, MemorySource, TokenManager};
use criterion::{Criterion, criterion_group, criterion_main};

fn poll_ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("cached path must not wait"),
    }
}

fn cached(manager: &TokenManager) -> AccessToken {
    poll_ready(manager.get_access_token(false)).unwrap()
}

fn setup() -> (tokio::runtime::Runtime, support::TokenServer, TokenManager) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (server, manager) = rt.block_on(async {
        let server = support::TokenServer::start().await;
        server.add_client("bench-client", "bench-secret");
        let manager = TokenManager::builder(&server.url, "bench")
            .ca_bundle_pem(server.ca_pem.clone())
            .environment(Arc::new(
                MemorySource::new()
                    .with("BULWARK_BENCH_CLIENT_ID", "bench-client")
                    .with("BULWARK_BENCH_CLIENT_SECRET", "bench-secret"),
            ))
            .build()
            .unwrap();
        manager.get_access_token(false).await.unwrap();
        (server, manager)
    });
    (rt, server, manager)
}

fn bench(c: &mut Criterion) {
    let (_rt, server, manager) = setup();
    let token = cached(&manager).expose_secret().to_owned();
    let string_lock = RwLock::new(token.clone());
    let arc_lock: RwLock<Arc<str>> = RwLock::new(Arc::from(token.as_str()));

    let mut group = c.benchmark_group("cached_token");
    group.bench_function("get_access_token(false)", |b| {
        b.iter(|| black_box(cached(&manager)))
    });
    group.bench_function("authenticated_headers()", |b| {
        b.iter(|| black_box(poll_ready(manager.authenticated_headers()).unwrap()))
    });
    group.bench_function("baseline RwLock<String> read+clone", |b| {
        b.iter(|| black_box(string_lock.read().unwrap().clone()))
    });
    group.bench_function("baseline RwLock<Arc<str>> read+clone", |b| {
        b.iter(|| black_box(Arc::clone(&arc_lock.read().unwrap())))
    });
    group.finish();

    // A plain summary next to criterion's report, so the ratio is visible at a glance.
    const N: u32 = 2_000_000;
    let time = |f: &dyn Fn()| {
        for _ in 0..N / 10 {
            f();
        }
        let start = Instant::now();
        for _ in 0..N {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(N)
    };
    let manager_ns = time(&|| {
        black_box(cached(&manager));
    });
    let string_ns = time(&|| {
        black_box(string_lock.read().unwrap().clone());
    });
    let arc_ns = time(&|| {
        black_box(Arc::clone(&arc_lock.read().unwrap()));
    });
    println!(
        "summary: get_access_token(false) {manager_ns:.1} ns/op; \
         RwLock<String> read+clone {string_ns:.1} ns/op ({:.2}x); \
         RwLock<Arc<str>> read+clone {arc_ns:.1} ns/op ({:.2}x); \
         endpoint requests during the run: {}",
        manager_ns / string_ns,
        manager_ns / arc_ns,
        server.requests()
    );
    assert_eq!(
        server.requests(),
        1,
        "the benchmark must only hit the cache"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
