//! Workflow starts per second and start latency through bulwark-api (HTTPS + bearer token +
//! validation + Temporal) against starting directly with the Rust client (mTLS + JWT) in the
//! same run, plus the idle memory of the api and worker processes. Runs against the stack
//! described by `.bulwark/env` (`scripts/up.sh`); prints a skip line without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use bulwark_secrets::FileStore;
use bulwark_temporal::{ConnectOptions, StartWorkflow, StoreCredentialSource, connect};
use bulwark_token_client::TokenManager;

const STARTS: usize = 400;
const CONCURRENCY: usize = 8;
/// A queue no worker polls: the measurement is the start path, not execution.
const QUEUE: &str = "bench-start-only";

fn env() -> Option<HashMap<String, String>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var("BULWARK_ENV_FILE")
        .map(PathBuf::from)
        .unwrap_or(root.join(".bulwark/env"));
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

fn stats(mut lat: Vec<Duration>, wall: Duration) -> (f64, Duration, Duration) {
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    (lat.len() as f64 / wall.as_secs_f64(), p(0.5), p(0.99))
}

async fn run<F, Fut>(f: F) -> (f64, Duration, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in (w..STARTS).step_by(CONCURRENCY) {
                let t = Instant::now();
                f(i).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    stats(all, start.elapsed())
}

fn rss_kib(pid_file: &std::path::Path) -> Option<u64> {
    let pid = std::fs::read_to_string(pid_file).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let Some(env) = env() else {
        println!("start_throughput: skipped (no .bulwark/env; run scripts/up.sh)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let certs = PathBuf::from(&env["BULWARK_CERTS_DIR"]);
        let control = env["BULWARK_CONTROL_URL"].clone();
        let store = Arc::new(StoreCredentialSource(Arc::new(FileStore::new("deployment", PathBuf::from(&env["BULWARK_DEPLOYMENT_SECRETS_DIR"]).join(bulwark_token_issuer::deployment_secrets_file("api"))))));
        let tokens = TokenManager::builder(format!("{control}/oauth/token"), "api")
            .ca_bundle_file(certs.join("ca.crt"))
            .secret_store(store)
            .build()
            .unwrap();
        let client = Arc::new(
            connect(ConnectOptions::new(&env["BULWARK_TEMPORAL_ADDRESS"], &env["BULWARK_TEMPORAL_SERVER_NAME"], &certs, "api", "default", tokens))
                .await
                .unwrap(),
        );

        let op: serde_json::Value = serde_json::from_slice(&std::fs::read(&env["BULWARK_OPERATOR_CREDENTIALS"]).unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.crt")).unwrap()).unwrap())
            .tls_built_in_root_certs(false)
            .use_rustls_tls()
            .build()
            .unwrap();
        let tok: serde_json::Value = http
            .post(format!("{control}/oauth/token"))
            .basic_auth(op["client_id"].as_str().unwrap(), op["client_secret"].as_str())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = tok["access_token"].as_str().unwrap().to_owned();
        let api = env["BULWARK_API_URL"].clone();
        let run_id = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis());

        let direct = {
            let (client, run_id) = (client.clone(), run_id.clone());
            run(move |i| {
                let (client, id) = (client.clone(), format!("bench-direct-{run_id}-{i}"));
                async move {
                    client
                        .start_workflow(StartWorkflow::new("Greeting", serde_json::json!({"name": "bench"})).id(id).task_queue(QUEUE))
                        .await
                        .unwrap();
                }
            })
            .await
        };
        let via_api = {
            let run_id = run_id.clone();
            run(move |i| {
                let (http, api, bearer) = (http.clone(), api.clone(), bearer.clone());
                let body = serde_json::json!({"workflow_type": "Greeting", "workflow_id": format!("bench-api-{run_id}-{i}"), "task_queue": QUEUE, "input": {"name": "bench"}});
                async move {
                    let r = http.post(format!("{api}/api/v1/workflows")).bearer_auth(bearer).json(&body).send().await.unwrap();
                    assert_eq!(r.status(), 201);
                }
            })
            .await
        };
        println!("start_throughput: {STARTS} starts, {CONCURRENCY} concurrent, task queue {QUEUE}");
        println!("  direct (Rust client)   {:>7.0} starts/s   p50 {:>9.2?}  p99 {:>9.2?}", direct.0, direct.1, direct.2);
        println!("  through bulwark-api    {:>7.0} starts/s   p50 {:>9.2?}  p99 {:>9.2?}", via_api.0, via_api.1, via_api.2);
        let overhead = via_api.1.as_secs_f64() / direct.1.as_secs_f64() - 1.0;
        println!("  p50 overhead of the API: {:+.1}% (goal <= 10%)", overhead * 100.0);
        let run_dir = PathBuf::from(env.get("BULWARK_LOGS_DIR").cloned().unwrap_or_default()).join("../run");
        for svc in ["bulwark-api", "bulwark-worker"] {
            match rss_kib(&run_dir.join(format!("{svc}.pid"))) {
                Some(k) => println!("  {svc} RSS {:.1} MiB", k as f64 / 1024.0),
                None => println!("  {svc} RSS unknown (not started by scripts/up.sh)"),
            }
        }
    });
}
