//! End to end against the running stack (`scripts/up.sh`): starts the worker binary on a unique
//! task queue, starts each reference workflow with the `bulwark-temporal` client (as identity
//! `api`), and checks results, fast non-retryable credential failures, readiness (200 while
//! polling, 503 when the worker cannot authenticate) and graceful shutdown on SIGTERM.
//!
//! Skips (with a printed reason) when `BULWARK_ENV_FILE` / `.bulwark/env` is absent; fails
//! instead when `BULWARK_REQUIRE_STACK=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use bulwark_secrets::{FileStore, SecretStore};
use bulwark_temporal::{
    Client, ClientError, ConnectOptions, StartWorkflow, StoreCredentialSource, WorkflowOutcome,
    WorkflowStatus,
};
use bulwark_token_client::TokenManager;
use bulwark_workflows::{failure_type, workflow};
use serde_json::json;
use sha2::{Digest, Sha256};

const ECHO_BODY: &str = "bulwark e2e endpoint says hello\n";
const PLANTED_API_KEY: &str = "e2e-planted-api-key-7f3a9c";

fn env_file() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BULWARK_ENV_FILE") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.bulwark/env");
    p.exists().then_some(p)
}

fn load_env() -> Option<HashMap<String, String>> {
    let Some(path) = env_file() else {
        let msg = "no stack env file (BULWARK_ENV_FILE or .bulwark/env): run scripts/up.sh";
        if std::env::var("BULWARK_REQUIRE_STACK").as_deref() == Ok("1") {
            panic!("BULWARK_REQUIRE_STACK=1 but {msg}");
        }
        println!("SKIP worker e2e: {msg}");
        return None;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    Some(
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
            .collect(),
    )
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A worker process, terminated (SIGTERM) on drop if still running.
struct WorkerProc {
    child: Child,
    listen: SocketAddr,
    log: PathBuf,
}

impl WorkerProc {
    fn start(env: &HashMap<String, String>, extra: &[(&str, String)], log: PathBuf) -> Self {
        let listen = free_addr();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulwark-worker"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("BULWARK_DEPLOYMENT_SECRETS", deployment_file(env, "worker"))
            .env("BULWARK_WORKER_LISTEN", listen.to_string())
            .env("BULWARK_WORKER_READY_INTERVAL", "1")
            .env("BULWARK_LOG_FORMAT", "json")
            .env_remove("BULWARK_WORKER_CLIENT_ID")
            .env_remove("BULWARK_WORKER_CLIENT_SECRET");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        let child = cmd.spawn().expect("spawn bulwark-worker");
        Self { child, listen, log }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "worker did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.listen)).await;
        match r {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// Polls `/readyz` until `want` (or panics after `timeout` with the last answer and log).
    async fn wait_ready(&self, want: u16, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = (0, String::new());
        while Instant::now() < deadline {
            last = self.get("/readyz").await;
            if last.0 == want {
                return last.1;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("readyz never answered {want}; last {last:?}\nworker log:\n{log}");
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.terminate();
        }
    }
}

/// A `basic` credential for `demo`: from the stack's components (`BULWARK_COMPONENTS_DIR`,
/// credential `demo-db` in store `default`), else an e2e-only role provisioned as superuser.
async fn demo_db_credential(env: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(dir) = env.get("BULWARK_COMPONENTS_DIR") {
        // As the worker loads them (its default BULWARK_APP_ID), so `scopes:` apply.
        let resolver = bulwark_secrets::Resolver::from_components_dir_for_app(dir, "worker")
            .await
            .unwrap()
            .build();
        let c = resolver
            .resolve(&bulwark_secrets::basic_ref("demo-db"))
            .await
            .unwrap();
        let b = c.as_basic().unwrap();
        return Some((b.username.clone(), b.password.expose().to_owned()));
    }
    let pw_file = env.get("BULWARK_PG_SUPERUSER_PASSWORD_FILE")?;
    let su_pw = std::fs::read_to_string(pw_file).ok()?.trim().to_owned();
    let host = env
        .get("BULWARK_PG_HOST")
        .cloned()
        .unwrap_or("127.0.0.1".into());
    let port: u16 = env
        .get("BULWARK_PG_PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(15432);
    let su = |db: &str| {
        sqlx::postgres::PgConnectOptions::new()
            .host(&host)
            .port(port)
            .username("postgres")
            .password(&su_pw)
            .database(db)
    };
    use sqlx::{ConnectOptions, Executor};
    let mut c = su("postgres").connect().await.unwrap();
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = 'demo'")
        .fetch_optional(&mut c)
        .await
        .unwrap();
    if exists.is_none() {
        c.execute("CREATE DATABASE demo").await.unwrap();
    }
    let password = uuid::Uuid::new_v4().simple().to_string();
    let mut d = su("demo").connect().await.unwrap();
    d.execute(
        "CREATE TABLE IF NOT EXISTS public.inventory(id serial PRIMARY KEY, item text NOT NULL, quantity integer NOT NULL)",
    )
    .await
    .unwrap();
    d.execute(
        "INSERT INTO public.inventory(item, quantity) SELECT * FROM (VALUES ('bolts', 120), ('nuts', 80), ('washers', 45)) v \
         WHERE NOT EXISTS (SELECT 1 FROM public.inventory)",
    )
    .await
    .unwrap();
    d.execute(
        format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_reader_e2e') THEN \
             CREATE ROLE bulwark_reader_e2e LOGIN PASSWORD '{password}'; ELSE \
             ALTER ROLE bulwark_reader_e2e LOGIN PASSWORD '{password}'; END IF; END $$"
        )
        .as_str(),
    )
    .await
    .unwrap();
    d.execute(
        "GRANT CONNECT ON DATABASE demo TO bulwark_reader_e2e; GRANT USAGE ON SCHEMA public TO bulwark_reader_e2e; \
         GRANT SELECT ON public.inventory TO bulwark_reader_e2e",
    )
    .await
    .unwrap();
    Some(("bulwark_reader_e2e".into(), password))
}

async fn direct_summary(env: &HashMap<String, String>, user: &str, pw: &str) -> (i64, i64) {
    use sqlx::ConnectOptions;
    let mut c = sqlx::postgres::PgConnectOptions::new()
        .host(
            env.get("BULWARK_PG_HOST")
                .map(String::as_str)
                .unwrap_or("127.0.0.1"),
        )
        .port(
            env.get("BULWARK_PG_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(15432),
        )
        .username(user)
        .password(pw)
        .database("demo")
        .connect()
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT count(*)::bigint, coalesce(sum(quantity), 0)::bigint FROM public.inventory",
    )
    .fetch_one(&mut c)
    .await
    .unwrap()
}

/// An HTTPS endpoint (certificate `api-server`, from our CA) that wants either the planted API
/// key in `X-API-Key` or a bearer JWT.
async fn start_echo_server(certs: &Path) -> SocketAddr {
    let cert = bulwark_tls::Reloading::new(bulwark_tls::PemFiles::new(
        certs.join("api-server.crt"),
        certs.join("api-server.key"),
    ))
    .unwrap();
    let config = bulwark_tls::server_config(cert, None).unwrap();
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(|headers: HeaderMap| async move {
            let key_ok = headers
                .get("x-api-key")
                .is_some_and(|v| v.as_bytes() == PLANTED_API_KEY.as_bytes());
            let bearer_ok = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| t.split('.').count() == 3);
            if key_ok || bearer_ok {
                (StatusCode::OK, ECHO_BODY)
            } else {
                (StatusCode::UNAUTHORIZED, "no\n")
            }
        }),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, rustls)
            .serve(app.into_make_service())
            .await
            .unwrap();
    });
    addr
}

/// A service's own deployment secret store, as `bulwark-init database` wrote it.
fn deployment_file(env: &HashMap<String, String>, client: &str) -> PathBuf {
    PathBuf::from(&env["BULWARK_DEPLOYMENT_SECRETS_DIR"])
        .join(bulwark_token_issuer::deployment_secrets_file(client))
}

async fn api_client(env: &HashMap<String, String>) -> Client {
    let certs = PathBuf::from(&env["BULWARK_CERTS_DIR"]);
    let cert = bulwark_temporal::Identity::in_certs_dir(&certs, "api")
        .load()
        .unwrap();
    let store: Arc<dyn SecretStore> =
        Arc::new(FileStore::new("deployment", deployment_file(env, "api")));
    let tokens =
        TokenManager::builder(format!("{}/oauth/token", env["BULWARK_CONTROL_URL"]), "api")
            .ca_bundle_file(certs.join("ca.crt"))
            // Temporal tokens are bound to the certificate presented for them.
            .client_certificate(cert.clone())
            .environment(Arc::new(bulwark_token_client::MemorySource::new()))
            .secret_store(Arc::new(StoreCredentialSource(store)))
            .build()
            .unwrap();
    let mut opts = ConnectOptions::new(
        env["BULWARK_TEMPORAL_ADDRESS"].clone(),
        env["BULWARK_TEMPORAL_SERVER_NAME"].clone(),
        &certs,
        "api",
        "default",
        tokens,
    );
    opts.certificate = Some(cert);
    bulwark_temporal::connect(opts).await.unwrap()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn run(client: &Client, tq: &str, wf: &str, input: serde_json::Value) -> WorkflowOutcome {
    let started = client
        .start_workflow(StartWorkflow::new(wf, input).task_queue(tq))
        .await
        .unwrap();
    client
        .result(
            &started.workflow_id,
            Some(&started.run_id),
            Duration::from_secs(60),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_workflows_end_to_end() {
    let Some(env) = load_env() else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = PathBuf::from(&env["BULWARK_CERTS_DIR"]);
    let tmp = tempfile::tempdir().unwrap();

    // App secret store for this run: demo-db, an OAuth client (the operator's, against
    // control's token endpoint), a planted API key and a wrong one.
    let deployment: serde_json::Value =
        serde_json::from_slice(&std::fs::read(deployment_file(&env, "worker")).unwrap()).unwrap();
    let operator: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&env["BULWARK_OPERATOR_CREDENTIALS"]).unwrap())
            .unwrap();
    let Some((db_user, db_pw)) = demo_db_credential(&env).await else {
        panic!(
            "no demo-db credential: set BULWARK_COMPONENTS_DIR or BULWARK_PG_SUPERUSER_PASSWORD_FILE in the env file"
        );
    };
    let secrets = json!({
        "demo-db": {"username": db_user, "password": db_pw},
        // An API-audience client: Temporal-audience tokens are bound to a client certificate,
        // which an HttpCall credential does not have.
        "control-oauth": {
            "client_id": operator["client_id"],
            "client_secret": operator["client_secret"],
            "token_url": format!("{}/oauth/token", env["BULWARK_CONTROL_URL"]),
        },
        "e2e-api-key": {"api_key": PLANTED_API_KEY},
        "e2e-wrong-key": {"api_key": "not-the-key"},
        // Bound to a port nothing listens on: never sent to the echo server.
        "e2e-pinned-key": {"api_key": PLANTED_API_KEY, "allowed_hosts": ["127.0.0.1:1"]},
    });
    std::fs::write(tmp.path().join("app-secrets.json"), secrets.to_string()).unwrap();
    let components = tmp.path().join("components");
    std::fs::create_dir(&components).unwrap();
    std::fs::write(
        components.join("default.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: default\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n    - name: secretsFile\n      value: ../app-secrets.json\n",
    )
    .unwrap();

    let tq = format!("bulwark-e2e-{}", uuid::Uuid::new_v4().simple());
    let mut worker = WorkerProc::start(
        &env,
        &[
            ("BULWARK_TASK_QUEUE", tq.clone()),
            ("BULWARK_COMPONENTS_DIR", components.display().to_string()),
        ],
        tmp.path().join("worker.log"),
    );
    worker.wait_ready(200, Duration::from_secs(60)).await;
    assert_eq!(worker.get("/healthz").await.0, 200);

    let client = api_client(&env).await;
    let echo = start_echo_server(&certs).await;

    // Greeting.
    let out = run(&client, &tq, workflow::GREETING, json!({"name": "Ada"})).await;
    match &out {
        WorkflowOutcome::Completed { result } => {
            assert!(
                result["greeting"].as_str().unwrap().contains("Ada"),
                "{result}"
            )
        }
        other => panic!("Greeting: {other:?}"),
    }

    // DatabaseQuery.
    let (rows, total) = direct_summary(&env, &db_user, &db_pw).await;
    let out = run(
        &client,
        &tq,
        workflow::DATABASE_QUERY,
        json!({"credential": {"name": "demo-db", "credential_type": "basic"},
               "database": "demo", "query": "inventory_summary"}),
    )
    .await;
    match &out {
        WorkflowOutcome::Completed { result } => {
            assert_eq!(result["row_count"], json!(rows), "{result}");
            assert_eq!(result["total_quantity"], json!(total), "{result}");
        }
        other => panic!("DatabaseQuery: {other:?}"),
    }

    // HttpCall with oauth_client and with api_key.
    let url = format!("https://127.0.0.1:{}/echo", echo.port());
    for cred in [
        json!({"name": "control-oauth", "credential_type": "oauth_client"}),
        json!({"name": "e2e-api-key", "credential_type": "api_key"}),
    ] {
        let out = run(
            &client,
            &tq,
            workflow::HTTP_CALL,
            json!({"credential": cred, "url": url}),
        )
        .await;
        match &out {
            WorkflowOutcome::Completed { result } => {
                assert_eq!(result["status"], json!(200), "{result}");
                assert_eq!(
                    result["body_sha256"],
                    json!(sha256_hex(ECHO_BODY)),
                    "{result}"
                );
            }
            other => panic!("HttpCall {cred}: {other:?}"),
        }
    }

    // A refused key: Unauthorized, not retried.
    let out = run(
        &client,
        &tq,
        workflow::HTTP_CALL,
        json!({"credential": {"name": "e2e-wrong-key", "credential_type": "api_key"}, "url": url}),
    )
    .await;
    match &out {
        WorkflowOutcome::Failed { failure } => {
            assert_eq!(
                failure.failure_type.as_deref(),
                Some(failure_type::UNAUTHORIZED),
                "{failure:?}"
            );
            assert!(failure.non_retryable);
        }
        other => panic!("wrong key: {other:?}"),
    }

    // A key bound to other hosts: DestinationNotAllowed, not retried, naming the host.
    let out = run(
        &client,
        &tq,
        workflow::HTTP_CALL,
        json!({"credential": {"name": "e2e-pinned-key", "credential_type": "api_key"}, "url": url}),
    )
    .await;
    match &out {
        WorkflowOutcome::Failed { failure } => {
            assert_eq!(
                failure.failure_type.as_deref(),
                Some(failure_type::DESTINATION_NOT_ALLOWED),
                "{failure:?}"
            );
            assert!(failure.non_retryable);
            assert!(
                format!("{failure:?}").contains(&format!("127.0.0.1:{}", echo.port())),
                "{failure:?}"
            );
        }
        other => panic!("pinned key: {other:?}"),
    }

    // Credential not found: fails fast, non-retryable, names the reference.
    let t0 = Instant::now();
    let out = run(
        &client,
        &tq,
        workflow::DATABASE_QUERY,
        json!({"credential": {"name": "no-such-credential-e2e", "credential_type": "basic"},
               "database": "demo", "query": "inventory_summary"}),
    )
    .await;
    match &out {
        WorkflowOutcome::Failed { failure } => {
            assert_eq!(
                failure.failure_type.as_deref(),
                Some(failure_type::CREDENTIAL_NOT_FOUND),
                "{failure:?}"
            );
            assert!(failure.non_retryable);
            assert!(
                failure
                    .cause
                    .as_deref()
                    .unwrap_or_default()
                    .contains("no-such-credential-e2e"),
                "{failure:?}"
            );
        }
        other => panic!("not found: {other:?}"),
    }
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "not-found took {:?}",
        t0.elapsed()
    );

    // Invalid input fails the workflow (not its tasks) with InvalidInput.
    let out = run(&client, &tq, workflow::GREETING, json!({"nom": "x"})).await;
    match &out {
        WorkflowOutcome::Failed { failure } => {
            assert_eq!(
                failure.failure_type.as_deref(),
                Some(failure_type::INVALID_INPUT),
                "{failure:?}"
            )
        }
        other => panic!("invalid input: {other:?}"),
    }

    // No outcome carries a planted secret.
    let all = format!("{out:?}");
    assert!(!all.contains(PLANTED_API_KEY) && !all.contains(&db_pw));

    // Client surface: existing id, describe, list, cancel (on a queue nobody polls).
    let idle_tq = format!("{tq}-idle");
    let id = format!("e2e-dup-{}", uuid::Uuid::new_v4().simple());
    let mut start = StartWorkflow::new(workflow::GREETING, json!({"name": "x"}))
        .id(&id)
        .task_queue(&idle_tq);
    start.execution_timeout = Some(Duration::from_secs(60));
    let first = client.start_workflow(start.clone()).await.unwrap();
    match client.start_workflow(start).await {
        Err(ClientError::AlreadyStarted {
            workflow_id,
            run_id,
        }) => {
            assert_eq!(workflow_id, id);
            assert_eq!(run_id, first.run_id);
        }
        other => panic!("duplicate start: {other:?}"),
    }
    let d = client.describe(&id, None).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Running);
    assert_eq!(d.workflow_type, workflow::GREETING);
    assert!(d.start_time.is_some() && d.close_time.is_none());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = client
            .list(
                Some(WorkflowStatus::Running),
                Some(workflow::GREETING),
                1000,
                None,
            )
            .await
            .unwrap();
        if page.workflows.iter().any(|w| w.workflow_id == id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "started workflow never listed as running"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        client
            .result(&id, None, Duration::from_millis(500))
            .await
            .unwrap(),
        WorkflowOutcome::Running
    );
    client.cancel(&id, None, "e2e").await.unwrap();
    assert!(matches!(
        client.describe("e2e-never-started-xyz", None).await,
        Err(ClientError::NotFound { .. })
    ));

    // Metrics.
    let (code, metrics) = worker.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("bulwark_worker_activities_total{activity=\"greet\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bulwark_worker_credential_resolutions_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bulwark_worker_credential_resolutions_total{result=\"failed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bulwark_worker_token_refreshes_total"),
        "{metrics}"
    );

    // Graceful shutdown: SIGTERM → exit 0, and no planted secret in its log.
    let status = worker.terminate();
    assert!(status.success(), "worker exit status {status:?}");
    let log = std::fs::read_to_string(&worker.log).unwrap();
    assert!(
        !log.contains(PLANTED_API_KEY),
        "planted API key in worker log"
    );
    assert!(!log.contains(&db_pw), "database password in worker log");
    let worker_secret = deployment["worker_client_secret"].as_str().unwrap();
    assert!(
        !log.contains(worker_secret),
        "worker client secret in worker log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_red_when_the_worker_cannot_authenticate() {
    let Some(env) = load_env() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let deployment: serde_json::Value =
        serde_json::from_slice(&std::fs::read(deployment_file(&env, "worker")).unwrap()).unwrap();
    let wrong = "wrong-secret-planted-e2e-41b7";
    let tq = format!("e2e-noauth-{}", uuid::Uuid::new_v4().simple());
    let mut worker = WorkerProc::start(
        &env,
        &[
            ("BULWARK_TASK_QUEUE", tq),
            (
                "BULWARK_WORKER_CLIENT_ID",
                deployment["worker_client_id"].as_str().unwrap().to_owned(),
            ),
            ("BULWARK_WORKER_CLIENT_SECRET", wrong.to_owned()),
        ],
        tmp.path().join("worker.log"),
    );
    // Alive, but not ready, with a reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    while worker.get("/healthz").await.0 != 200 {
        assert!(Instant::now() < deadline, "healthz never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = worker.wait_ready(503, Duration::from_secs(10)).await;
    // Wait until the refused refresh is what readiness reports.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut body = body;
    while !body.contains("cannot authenticate") {
        assert!(Instant::now() < deadline, "readyz reason: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        body = worker.get("/readyz").await.1;
    }
    assert!(!body.contains(wrong));
    // Stays red (never becomes ready) for a few checks.
    for _ in 0..5 {
        assert_eq!(worker.get("/readyz").await.0, 503);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let status = worker.terminate();
    assert!(status.success(), "exit status {status:?}");
    let log = std::fs::read_to_string(&worker.log).unwrap();
    assert!(!log.contains(wrong), "wrong secret leaked to the log");
}
