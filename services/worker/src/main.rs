//! bulwark-worker: runs Bulwark's reference workflows on Temporal over mTLS + JWT, resolving
//! credential references through the configured secret stores at run time.
#![forbid(unsafe_code)]

mod activities;
mod failures;
mod health;
mod workflows;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bulwark_secrets::{FileStore, Resolver, SecretStore};
use bulwark_temporal::{ConnectRetry, Identity, StoreCredentialSource, cli::TemporalArgs};
use bulwark_token_client::cli::TokenClientArgs;
use clap::Parser;
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::activities::{Activities, DatabaseTarget, HttpCallPolicy};
use crate::health::{Health, Metrics, PollerCheck};

#[derive(Debug, Parser)]
#[command(version, about = "Bulwark's Temporal worker")]
struct Args {
    #[command(flatten)]
    temporal: TemporalArgs,
    /// Directory with ca.crt and client-<identity>.crt/.key.
    #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
    certs_dir: PathBuf,
    #[arg(long, env = "BULWARK_TASK_QUEUE", default_value = bulwark_workflows::DEFAULT_TASK_QUEUE)]
    task_queue: String,
    /// Client certificate identity: uses client-<identity>.crt/.key; also the OAuth app name.
    #[arg(long, env = "BULWARK_WORKER_IDENTITY", default_value = "worker")]
    identity: String,
    // Without `--deployment-secrets` the credentials come from the components' `deployment`
    // store.
    #[command(flatten)]
    token_client: TokenClientArgs,
    /// Directory of secret-store component files (stores `default`, `deployment`, ...).
    #[arg(long, env = "BULWARK_COMPONENTS_DIR")]
    components_dir: Option<PathBuf>,
    /// App id for the components' Dapr `scopes:` (a scoped component is loaded only when
    /// it lists this id).
    #[arg(long, env = "BULWARK_APP_ID", default_value = "worker")]
    app_id: String,
    /// Most response-body bytes an HttpCall reads; more fails it `ResponseTooLarge`.
    #[arg(long, env = "BULWARK_WORKER_HTTP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    http_max_body_bytes: u64,
    /// Whole-call timeout of an HttpCall (seconds).
    #[arg(long, env = "BULWARK_WORKER_HTTP_TIMEOUT_SECS", default_value_t = 20)]
    http_timeout_secs: u64,
    /// Refuse HttpCall credentials without `allowed_hosts` (recommended in production).
    #[arg(
        long,
        env = "BULWARK_WORKER_REQUIRE_ALLOWED_HOSTS",
        default_value_t = false
    )]
    require_allowed_hosts: bool,
    /// Health/metrics listen address.
    #[arg(long, env = "BULWARK_WORKER_LISTEN", default_value = "127.0.0.1:9102")]
    listen: SocketAddr,
    /// Maximum concurrent activity executions.
    #[arg(long, env = "BULWARK_WORKER_MAX_ACTIVITIES", default_value_t = 50)]
    max_concurrent_activities: usize,
    /// Maximum concurrent workflow tasks.
    #[arg(long, env = "BULWARK_WORKER_MAX_WORKFLOW_TASKS", default_value_t = 20)]
    max_concurrent_workflow_tasks: usize,
    /// Maximum concurrent pollers per task type.
    #[arg(long, env = "BULWARK_WORKER_MAX_POLLERS", default_value_t = 4)]
    max_pollers: usize,
    /// Postgres host for DatabaseQuery.
    #[arg(long, env = "BULWARK_PG_HOST", default_value = "127.0.0.1")]
    pg_host: String,
    #[arg(long, env = "BULWARK_PG_PORT", default_value_t = 15432)]
    pg_port: u16,
    /// Databases DatabaseQuery may name (comma separated).
    #[arg(
        long,
        env = "BULWARK_WORKER_DATABASES",
        default_value = "demo",
        value_delimiter = ','
    )]
    databases: Vec<String>,
    /// How often pollers are checked for readiness (seconds).
    #[arg(long, env = "BULWARK_WORKER_READY_INTERVAL", default_value_t = 5)]
    ready_interval_secs: u64,
    #[command(flatten)]
    log: bulwark_process::cli::LogArgs,
}

/// Stops the SDK worker currently running (the one rebuilt last).
type StopHandle = Box<dyn Fn() + Send + Sync>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.log.init("info");
    let _ = rustls::crypto::ring::default_provider().install_default();

    // Secret stores.
    let builder = match &args.components_dir {
        Some(dir) => Resolver::from_components_dir_for_app(dir, &args.app_id)
            .await
            .with_context(|| format!("loading secret-store components from {}", dir.display()))?,
        None => {
            tracing::warn!(
                "BULWARK_COMPONENTS_DIR is not set: no secret stores; only Greeting can succeed"
            );
            Resolver::builder()
        }
    };
    let resolver = builder.build();
    let secrets_file = args.token_client.deployment_secrets.as_ref();
    let deployment_store: Option<Arc<dyn SecretStore>> = match secrets_file {
        Some(path) => Some(Arc::new(FileStore::new("deployment", path))),
        None => resolver.store("deployment").cloned(),
    };

    // Token manager for this worker's own OAuth client. It presents the same certificate
    // holder as the Temporal connection: control binds the worker's Temporal token to it.
    let ca_file = args.certs_dir.join("ca.crt");
    let client_cert = Identity::in_certs_dir(&args.certs_dir, &args.identity)
        .load()
        .context("loading the client certificate")?;
    let mut tb = args
        .token_client
        .builder(args.identity.clone(), &ca_file)
        .client_certificate(client_cert.clone());
    if let Some(store) = deployment_store {
        tb = tb.secret_store(Arc::new(StoreCredentialSource(store)));
    }
    let tokens = tb.build().context("configuring the token manager")?;
    tokens
        .start_background_refresh()
        .context("starting token refresh")?;

    // Health endpoints first, so a worker that cannot connect still answers (503 + reason).
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health {
        metrics: metrics.clone(),
        running: AtomicBool::new(false),
        shutting_down: AtomicBool::new(false),
        tokens: tokens.clone(),
        client: Mutex::new(None),
        pollers: Mutex::new(PollerCheck::default()),
        task_queue: args.task_queue.clone(),
        poll_freshness: Duration::from_secs(120),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding health listener {}", args.listen))?;
    tracing::info!(listen = %args.listen, "health endpoints listening");
    let app = health::router(health.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health server failed");
        }
    });
    tokio::spawn(
        health
            .clone()
            .watch_pollers(Duration::from_secs(args.ready_interval_secs.max(1))),
    );

    let shutdown = Arc::new(tokio::sync::Notify::new());
    {
        let shutdown = shutdown.clone();
        let health = health.clone();
        tokio::spawn(async move {
            bulwark_process::shutdown_signal().await;
            tracing::info!("shutdown requested: stopping polling, finishing in-flight tasks");
            health.shutting_down.store(true, Ordering::Release);
            shutdown.notify_one();
        });
    }

    let mut opts = args
        .temporal
        .connect_options(&args.certs_dir, &args.identity, tokens.clone());
    // `connect` starts the holder's reload watcher, for the token manager too.
    opts.certificate = Some(client_cert);
    opts.retry = ConnectRetry {
        max_attempts: None,
        ..ConnectRetry::default()
    };
    let client = tokio::select! {
        c = bulwark_temporal::connect(opts) => c.context("connecting to Temporal")?,
        () = shutdown.notified() => {
            tracing::info!("shut down before connecting");
            return Ok(());
        }
    };
    *health
        .client
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(client.clone());

    let runtime = Runtime::from_current_tokio(Default::default())
        .map_err(|e| anyhow::anyhow!("creating the Temporal runtime: {e}"))?;
    // The SDK ends a worker at the first poll refused as unauthenticated or unauthorized. Such
    // a refusal is transient here: after an emergency key revoke the gate refuses the old
    // token at once while the new one is on its way, and Temporal may refuse the new one
    // until its next JWKS refresh. So a failed worker is rebuilt after a pause (the process,
    // its health endpoint and its token manager stay), and /readyz says not ready meanwhile.
    let stop_current: Arc<std::sync::Mutex<Option<StopHandle>>> =
        Arc::new(std::sync::Mutex::new(None));
    {
        let stop_current = stop_current.clone();
        tokio::spawn(async move {
            shutdown.notified().await;
            if let Some(stop) = stop_current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
            {
                stop();
            }
        });
    }
    let mut pause = Duration::from_secs(2);
    loop {
        let acts = Activities::new(
            resolver.clone(),
            metrics.clone(),
            DatabaseTarget {
                host: args.pg_host.clone(),
                port: args.pg_port,
                allowed: args.databases.clone(),
            },
            ca_file.clone(),
            HttpCallPolicy {
                max_body_bytes: args.http_max_body_bytes.max(1),
                timeout: Duration::from_secs(args.http_timeout_secs.max(1)),
                require_allowed_hosts: args.require_allowed_hosts,
            },
        )?;
        let tuner = TunerHolder::builder()
            .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(
                args.max_concurrent_workflow_tasks.max(2),
            ))
            .activity_task_slot_supplier(FixedSizeSlotSupplier::new(
                args.max_concurrent_activities.max(1),
            ))
            .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(
                args.max_concurrent_activities.max(1),
            ))
            .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
            .build();
        let worker_options = WorkerOptions::new(args.task_queue.clone())
            .register_workflow::<workflows::Greeting>()?
            .register_workflow::<workflows::DatabaseQuery>()?
            .register_workflow::<workflows::HttpCall>()?
            .register_activities(acts)
            .tuner(tuner)
            .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(args.max_pollers.max(2)))
            .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(args.max_pollers.max(1)))
            .build();
        let mut worker = Worker::new(&runtime, client.sdk_client().clone(), worker_options)
            .map_err(|e| anyhow::anyhow!("creating the worker: {e}"))?;
        *stop_current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Box::new(worker.shutdown_handle()));
        if health.shutting_down.load(Ordering::Acquire) {
            return Ok(());
        }

        tracing::info!(
            task_queue = %args.task_queue,
            namespace = %args.temporal.namespace,
            identity = %client.identity(),
            "worker polling"
        );
        health.running.store(true, Ordering::Release);
        let result = worker.run().await;
        health.running.store(false, Ordering::Release);
        match result {
            Ok(()) => {
                tracing::info!("worker stopped");
                return Ok(());
            }
            Err(_) if health.shutting_down.load(Ordering::Acquire) => return Ok(()),
            Err(e) => {
                tracing::error!(error = %e, retry_in_s = pause.as_secs(), "worker failed; rebuilding it after a pause");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap checks argument uniqueness only when parsing; a clash between our flags and the
    /// flattened Temporal, token-client and log groups must fail here, not at start-up.
    #[test]
    fn arguments_are_consistent() {
        super::Args::command().debug_assert();
    }
}
