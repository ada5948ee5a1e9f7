//! Resolution latency: cached resolve, and uncached resolve from the encrypted Postgres
//! store (needs `BULWARK_TEST_DATABASE_URL`; skipped without it).
//!
//! `cargo bench -p bulwark-secrets --bench resolve` prints p50/p90/p99 per case.
//! Targets on the 2-core reference machine: cached p50 < 20 µs, Postgres p50 < 2 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a panic is the failure report

use std::time::{Duration, Instant};

use bulwark_secrets::{
    EnvStore, MasterKey, MasterKeyring, PostgresConfig, PostgresStore, Resolver, Secret, SecretMap,
    basic_ref,
};

fn report(name: &str, mut samples: Vec<Duration>, target: Duration) -> bool {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    let p50 = pct(0.50);
    let ok = p50 < target;
    println!(
        "{name:<32} n={:<6} p50={:>10.2?} p90={:>10.2?} p99={:>10.2?} max={:>10.2?}  target p50<{target:?}: {}",
        samples.len(),
        p50,
        pct(0.90),
        pct(0.99),
        samples[samples.len() - 1],
        if ok { "met" } else { "MISSED" }
    );
    ok
}

async fn cached() -> bool {
    let r = Resolver::builder()
        .store(EnvStore::with_vars(
            "default",
            "BULWARK_",
            [
                ("BULWARK_GH__USERNAME", "bot"),
                ("BULWARK_GH__PASSWORD", "pw"),
            ],
        ))
        .cache_ttl(Duration::from_secs(3600))
        .build();
    let reference = basic_ref("gh");
    r.resolve(&reference).await.expect("warm-up resolve");
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        let c = r.resolve(&reference).await.expect("resolve");
        samples.push(t.elapsed());
        std::hint::black_box(c);
    }
    report("resolve (cached)", samples, Duration::from_micros(20))
}

async fn postgres(url: &str) -> bool {
    let schema = format!("bulwark_secrets_bench_{}", uuid::Uuid::new_v4().simple());
    let mut cfg = PostgresConfig::new(url);
    cfg.schema = Some(schema.clone());
    let key = MasterKey::generate().expect("key").0;
    let store =
        PostgresStore::connect_lazy("default", cfg, MasterKeyring::new(key)).expect("store");
    store.migrate().await.expect("migrate");
    let mut m = SecretMap::new();
    m.insert("username".into(), Secret::new("bot"));
    m.insert("password".into(), Secret::new("pw"));
    for _ in 0..3 {
        store.put_version("gh", &m).await.expect("put");
    }
    let pool = store.pool().clone();
    let r = Resolver::builder()
        .store(store)
        .cache_ttl(Duration::ZERO)
        .build();
    let reference = basic_ref("gh");
    for _ in 0..50 {
        r.resolve(&reference).await.expect("warm-up");
    }
    let mut samples = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let t = Instant::now();
        let c = r.resolve_uncached(&reference).await.expect("resolve");
        samples.push(t.elapsed());
        std::hint::black_box(c);
    }
    let ok = report(
        "resolve (uncached, postgres)",
        samples,
        Duration::from_millis(2),
    );
    let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&pool)
        .await;
    ok
}

fn main() {
    // `cargo test --benches` passes `--bench`-less args; run quickly either way.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        cached().await;
        match std::env::var("BULWARK_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                postgres(&url).await;
            }
            _ => println!(
                "resolve (uncached, postgres)     skipped: BULWARK_TEST_DATABASE_URL not set"
            ),
        }
    });
}
