//! bulwark-gate: configuration and wiring; the proxy is in the library.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use bulwark_gate::{
    caller::{Binding, Keys, PeerCache},
    health,
    metrics::Metrics,
    proxy::{self, Gate},
    reload::{self, Policies},
    sink::AuditSink,
    upstream::Upstream,
};
use bulwark_tls::{PemFiles, Reloading};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "bulwark-gate",
    version,
    about = "Bulwark's gate: per-call authorization and audit in front of Temporal"
)]
struct Config {
    /// Where clients connect (the address they know as Temporal's).
    #[arg(long, env = "BULWARK_GATE_LISTEN", default_value = "127.0.0.1:7233")]
    listen: SocketAddr,
    /// Temporal's frontend, which trusts only the gate's certificate.
    #[arg(
        long,
        env = "BULWARK_TEMPORAL_UPSTREAM_ADDRESS",
        default_value = "127.0.0.1:7237"
    )]
    upstream: String,
    /// The name the frontend's certificate carries (also the name the gate serves).
    #[arg(long, env = "BULWARK_TEMPORAL_SERVER_NAME", default_value = "temporal")]
    server_name: String,
    /// Directory with temporal-server.crt/.key, client-trust.pem, gate-client.crt/.key, ca.crt, jwks.json.
    #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
    certs_dir: PathBuf,
    /// The per-call policy (TOML).
    #[arg(
        long,
        env = "BULWARK_GATE_POLICY",
        default_value = "config/gate-policy.toml"
    )]
    policy: PathBuf,
    /// Plain-HTTP listener for /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "BULWARK_GATE_HEALTH_LISTEN",
        default_value = "127.0.0.1:9103"
    )]
    health_listen: SocketAddr,
    /// A file holding the Postgres URL where mutating calls are audited (none: log only).
    #[arg(long, env = "BULWARK_GATE_DATABASE_URL_FILE")]
    database_url_file: Option<PathBuf>,
    /// How a token must be bound to its certificate.
    #[arg(
        long,
        env = "BULWARK_GATE_BINDING",
        value_enum,
        default_value = "identity"
    )]
    binding: Binding,
    /// Longest accepted token lifetime (`exp - iat`): the static tokens' 24 h.
    #[arg(long, env = "BULWARK_GATE_MAX_TOKEN_LIFETIME", default_value = "24h", value_parser = humantime::parse_duration)]
    max_token_lifetime: Duration,
    /// The audience Temporal's tokens carry.
    #[arg(long, env = "BULWARK_JWT_AUDIENCE", default_value = "temporal")]
    audience: String,
    /// How often the policy, JWKS, client trust and certificates are checked for changes.
    #[arg(long, env = "BULWARK_GATE_RELOAD_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    reload_interval: Duration,
    /// Largest request message (bytes). Temporal's own limit for a request is 4 MiB.
    #[arg(long, env = "BULWARK_GATE_MAX_REQUEST_BYTES", default_value_t = 4 << 20)]
    max_request_bytes: usize,
    /// HTTP/2 streams open at once per client connection (each long poll holds one).
    #[arg(long, env = "BULWARK_GATE_MAX_STREAMS", default_value_t = 256)]
    max_streams: u32,
    #[command(flatten)]
    log: bulwark_process::cli::LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    cfg.log.init("info");
    let max_lifetime = time::Duration::try_from(cfg.max_token_lifetime)
        .context("BULWARK_GATE_MAX_TOKEN_LIFETIME")?;

    let policies = Policies::load(&cfg.policy).context("loading the gate policy")?;
    let keys = Keys::load(cfg.certs_dir.join("jwks.json"), &cfg.audience, max_lifetime)
        .map_err(anyhow::Error::msg)
        .context("loading the JWKS")?;
    let serving = Reloading::new(PemFiles::new(
        cfg.certs_dir.join("temporal-server.crt"),
        cfg.certs_dir.join("temporal-server.key"),
    ))
    .context("the gate's serving certificate")?;
    serving.spawn_watcher(cfg.reload_interval);
    let identity = Reloading::new(PemFiles::new(
        cfg.certs_dir.join("gate-client.crt"),
        cfg.certs_dir.join("gate-client.key"),
    ))
    .context("the gate's client certificate (gate-client; run bulwark-init generate)")?;
    identity.spawn_watcher(cfg.reload_interval);
    let trust = bulwark_tls::ClientTrust::new(
        cfg.certs_dir.join("client-trust.pem"),
        bulwark_tls::ClientAuth::Required,
    )
    .context("the client trust")?;

    let upstream = Upstream {
        address: cfg.upstream.clone(),
        server_name: cfg.server_name.clone(),
        roots: bulwark_tls::load_roots(&cfg.certs_dir.join("ca.crt"))?,
        identity: identity.clone(),
        connect_timeout: Duration::from_secs(5),
    }
    .channel()?;

    let metrics = Arc::new(Metrics::default());
    let store = match &cfg.database_url_file {
        Some(file) => {
            let store = bulwark_gate::store::AuditStore::connect(file)
                .await
                .context("connecting to the audit database")?;
            let (tx, rx) = tokio::sync::mpsc::channel(10_000);
            store.spawn_writer(rx);
            Some(tx)
        }
        None => {
            tracing::warn!(
                "BULWARK_GATE_DATABASE_URL_FILE not set: mutating calls are audited in the log only"
            );
            None
        }
    };
    let gate = Arc::new(Gate {
        keys,
        policies,
        peers: PeerCache::default(),
        binding: cfg.binding,
        upstream,
        audit: AuditSink::new(metrics.clone(), store),
        max_request_bytes: cfg.max_request_bytes,
        body_timeout: Duration::from_secs(10),
        body_reads: tokio::sync::Semaphore::new(256),
    });
    let _reload = reload::spawn(gate.clone(), trust.clone(), cfg.reload_interval);
    let upstream_health = Arc::new(health::Upstream::default());
    let _probe = health::spawn_probe(
        gate.clone(),
        upstream_health.clone(),
        Duration::from_secs(5),
    );

    let health_listener = tokio::net::TcpListener::bind(cfg.health_listen)
        .await
        .with_context(|| format!("binding {}", cfg.health_listen))?;
    let health_app = health::app(gate.clone(), upstream_health);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(health_listener, health_app).await {
            tracing::error!(error = %e, "health listener failed");
        }
    });

    let mut tls = bulwark_tls::server_config_with_client_trust(serving.clone(), trust)?;
    // gRPC is HTTP/2 only.
    tls.alpn_protocols = vec![b"h2".to_vec()];

    let mut limits = bulwark_serve::Limits {
        h2_max_concurrent_streams: cfg.max_streams,
        ..bulwark_serve::Limits::default()
    };
    // Long polls wait up to 70 s for a task: the request timeout must not cut them, and a
    // draining connection gives them that long to finish.
    limits.request_timeout = Duration::from_secs(90);
    limits.drain_timeout = Duration::from_secs(75);
    limits.idle_timeout = Duration::from_secs(300);
    let stats = Arc::new(bulwark_serve::Stats::new("gate"));
    metrics.add_listener(stats.clone());
    let listener = bulwark_serve::bind(cfg.listen).await?;
    tracing::info!(
        listen = %cfg.listen,
        upstream = %cfg.upstream,
        policy = %cfg.policy.display(),
        binding = ?cfg.binding,
        serving = %serving.fingerprint(),
        identity = %identity.fingerprint(),
        "bulwark-gate serving gRPC"
    );
    bulwark_serve::serve(
        listener,
        Arc::new(tls),
        proxy::app(gate),
        limits,
        stats,
        bulwark_process::shutdown_signal(),
    )
    .await
    .context("serving")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        super::Config::command().debug_assert();
    }
}
