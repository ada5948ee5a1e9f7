//! Cold `generate` (empty directory to a full set) against two baselines measured in the same
//! run: the crypto floor (issuing the same certificates and signing the same tokens in memory,
//! no checks, no files) and a warm no-op run. Target for cold: under 200 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bulwark_pki::{
    Mode, Settings,
    cert::{Profile, issue},
    generate,
    jwt::{Claims, JwtAlgorithm, Scope, SigningKey},
    keys::KeyAlgorithm,
    layout,
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use time::{Duration, OffsetDateTime};

fn crypto_floor(settings: &Settings) {
    let now = OffsetDateTime::now_utc();
    let root = issue(
        "root",
        &Profile::Root,
        KeyAlgorithm::EcdsaP256,
        Duration::days(3650),
        now,
        None,
    )
    .unwrap();
    let root_issuer = rcgen::Issuer::from_ca_cert_der(&root.cert_der, root.key).unwrap();
    let mut leaves = 0;
    for _ in 0..3 {
        let ca = issue(
            "ca",
            &Profile::Intermediate,
            KeyAlgorithm::EcdsaP256,
            Duration::days(1825),
            now,
            Some(&root_issuer),
        )
        .unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_der(&ca.cert_der, ca.key).unwrap();
        let n = layout::cert_specs(settings).len() - 4;
        while leaves < n {
            issue(
                "leaf",
                &Profile::Client {
                    uri: "spiffe://x/y".into(),
                },
                KeyAlgorithm::EcdsaP256,
                Duration::days(30),
                now,
                Some(&issuer),
            )
            .unwrap();
            leaves += 1;
        }
    }
    let key = SigningKey::generate(JwtAlgorithm::Es256).unwrap();
    for scope in Scope::ALL {
        let c = Claims::new(
            "s",
            "i",
            "a",
            scope.as_str(),
            scope.permissions(&settings.namespaces),
            now,
            Duration::hours(24),
        );
        key.sign(&c).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let settings = Settings::default();
    let mut g = c.benchmark_group("generate");
    g.sample_size(30);
    g.bench_function("baseline_crypto_floor_in_memory", |b| {
        b.iter(|| crypto_floor(&settings))
    });
    g.bench_function("cold", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |tmp| {
                generate(
                    &tmp.path().join("certs"),
                    &settings,
                    Mode::Missing,
                    OffsetDateTime::now_utc(),
                )
                .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    generate(&dir, &settings, Mode::Missing, OffsetDateTime::now_utc()).unwrap();
    g.bench_function("warm_noop", |b| {
        b.iter(|| generate(&dir, &settings, Mode::Missing, OffsetDateTime::now_utc()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
