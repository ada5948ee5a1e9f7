//! Tokens per second from `/oauth/token` over HTTPS with keep-alive, against the same
//! server's `/healthz` over the same connections as the baseline (TLS + HTTP + routing cost
//! without authentication, database and signing). Needs BULWARK_TEST_DATABASE_URL.
//! Target: at least 2,000 tokens/s on a 2-core machine. A third run repeats the token
//! measurement while three other loopback addresses flood wrong secrets for the same client:
//! the real client's throughput should hardly move, since the flood is refused from memory
//! after each (client, address) pair's failure budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bulwark_token_issuer::IssuerSettings;

const CONCURRENCY: usize = 32;
const DURATION: Duration = Duration::from_secs(4);
/// Concurrent flooding connections from each of the three attacking addresses.
const FLOOD_PER_ADDRESS: usize = 8;

async fn measure(h: Arc<support::Harness>, token: bool) -> (f64, Duration, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + DURATION;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (h, done) = (h.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let secret = h.secret("worker");
            while Instant::now() < deadline {
                let t = Instant::now();
                let status = if token {
                    h.token_basic("worker", &secret, &[]).await.status()
                } else {
                    h.http
                        .get(format!("{}/healthz", h.url))
                        .send()
                        .await
                        .unwrap()
                        .status()
                };
                assert!(status.is_success(), "{status}");
                lat.push(t.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (
        done.load(Ordering::Relaxed) as f64 / DURATION.as_secs_f64(),
        p(0.5),
        p(0.99),
    )
}

/// Wrong secrets for `worker` from `source` until the deadline; returns (sent, 429s).
async fn flood(h: Arc<support::Harness>, source: [u8; 4], until: Instant) -> (u64, u64) {
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(h.certs.join("ca.crt")).unwrap()).unwrap();
    let port: u16 = h.url.rsplit(':').next().unwrap().parse().unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .use_rustls_tls()
        .local_address(std::net::IpAddr::from(source))
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let (mut sent, mut throttled) = (0, 0);
    while Instant::now() < until {
        let r = http
            .post(format!("{}/oauth/token", h.url))
            .basic_auth("worker", Some("not-the-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        sent += 1;
        throttled += u64::from(r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS);
    }
    (sent, throttled)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let settings = IssuerSettings {
            per_client_per_second: 1e9,
            per_client_burst: u32::MAX,
            per_address_per_second: 1e9,
            per_address_burst: u32::MAX,
            ..IssuerSettings::default()
        };
        let Some(h) = support::start(settings).await else {
            println!("token_throughput: skipped (BULWARK_TEST_DATABASE_URL not set)");
            return;
        };
        let h = Arc::new(h);
        // Warm up connections and the database pool.
        measure(h.clone(), true).await;
        let (base, b50, b99) = measure(h.clone(), false).await;
        let (tok, t50, t99) = measure(h.clone(), true).await;
        println!(
            "token_throughput: {CONCURRENCY} concurrent keep-alive HTTPS clients, {}s each",
            DURATION.as_secs()
        );
        println!(
            "  baseline GET /healthz      {base:>8.0} req/s   p50 {b50:>9.2?}  p99 {b99:>9.2?}"
        );
        println!(
            "  POST /oauth/token          {tok:>8.0} tok/s   p50 {t50:>9.2?}  p99 {t99:>9.2?}"
        );
        println!("  token/baseline throughput  {:.2}", tok / base);
        let until = Instant::now() + DURATION;
        let floods: Vec<_> = [[127, 0, 0, 2], [127, 0, 0, 3], [127, 0, 0, 4]]
            .into_iter()
            .flat_map(|source| std::iter::repeat_n(source, FLOOD_PER_ADDRESS))
            .map(|source| tokio::spawn(flood(h.clone(), source, until)))
            .collect();
        let (ftok, f50, f99) = measure(h.clone(), true).await;
        let (mut sent, mut throttled) = (0, 0);
        for f in floods {
            let (s, t) = f.await.unwrap();
            sent += s;
            throttled += t;
        }
        println!(
            "  same, under a flood        {ftok:>8.0} tok/s   p50 {f50:>9.2?}  p99 {f99:>9.2?}   ({:.0} wrong-secret req/s from 3 addresses x {FLOOD_PER_ADDRESS} connections, {throttled} of {sent} refused with 429)",
            sent as f64 / DURATION.as_secs_f64()
        );
        println!(
            "  target >= 2000 tok/s: {}",
            if tok >= 2000.0 { "met" } else { "NOT met" }
        );
    });
}
