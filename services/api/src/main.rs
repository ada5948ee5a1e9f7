//! bulwark-api: configuration and wiring; the HTTP surface is in the library.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use bulwark_api::{AppState, Metrics, app, auth::Verifier, temporal_backend::TemporalBackend};
use bulwark_secrets::FileStore;
use bulwark_temporal::{Identity, StoreCredentialSource, cli::TemporalArgs, connect};
use bulwark_tls::{PemFiles, Reloading, server_config};
use bulwark_token_client::cli::TokenClientArgs;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "bulwark-api",
    version,
    about = "Bulwark public API: start and track workflows",
    // The worker may find its credentials in a component store instead; the API has only
    // this file, so here it is required (a parse error, as before the flag was shared).
    mut_arg("deployment_secrets", |a| a.required(true))
)]
struct Config {
    #[arg(long, env = "BULWARK_API_LISTEN", default_value = "127.0.0.1:8444")]
    listen: SocketAddr,
    /// Directory with ca.crt, client-api.crt/.key, api-server.crt/.key and jwks.json.
    #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
    certs_dir: PathBuf,
    #[command(flatten)]
    temporal: TemporalArgs,
    #[command(flatten)]
    token_client: TokenClientArgs,
    /// Longest a result request may wait.
    #[arg(long, env = "BULWARK_API_MAX_WAIT", default_value = "60s", value_parser = humantime::parse_duration)]
    max_wait: Duration,
    #[command(flatten)]
    log: bulwark_process::cli::LogArgs,
    #[command(flatten)]
    http: bulwark_serve::cli::ListenerArgs,
    /// Longest accepted bearer-token lifetime (`exp - iat`); longer tokens are refused.
    #[arg(long, env = "BULWARK_MAX_TOKEN_LIFETIME", default_value = "1h", value_parser = humantime::parse_duration)]
    max_token_lifetime: Duration,
    /// Control's access-token TTL (same variable as control's), checked against the maximum.
    #[arg(long, env = "BULWARK_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    access_token_ttl: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    cfg.log.init("info");
    bulwark_api::auth::check_max_lifetime(cfg.max_token_lifetime, cfg.access_token_ttl)
        .map_err(anyhow::Error::msg)
        .context("BULWARK_MAX_TOKEN_LIFETIME")?;

    // Required by `mut_arg` above, so clap has refused to start without it.
    let secrets = cfg
        .token_client
        .deployment_secrets
        .as_ref()
        .context("BULWARK_DEPLOYMENT_SECRETS is required")?;
    let store = Arc::new(StoreCredentialSource(Arc::new(FileStore::new(
        "deployment",
        secrets,
    ))));
    // One holder of the client certificate for the token manager and the Temporal
    // connection: control binds the API's Temporal token to the certificate it presents.
    let client_cert = Identity::in_certs_dir(&cfg.certs_dir, "api")
        .load()
        .context("loading the client certificate")?;
    let tokens = cfg
        .token_client
        .builder("api", cfg.certs_dir.join("ca.crt"))
        .client_certificate(client_cert.clone())
        .secret_store(store)
        .build()
        .context("configuring the token manager")?;
    // `connect` starts the token manager's background refresh and hooks it to the connection,
    // and the certificate holder's reload watcher.
    let mut options = cfg.temporal.connect_options(&cfg.certs_dir, "api", tokens);
    options.certificate = Some(client_cert);
    let client = connect(options).await.context("connecting to Temporal")?;

    let cert = Reloading::new(PemFiles::new(
        cfg.certs_dir.join("api-server.crt"),
        cfg.certs_dir.join("api-server.key"),
    ))?;
    cert.spawn_watcher(Duration::from_secs(10));
    let tls = Arc::new(server_config(cert.clone(), None)?);
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        backend: Arc::new(TemporalBackend { client }),
        verifier: Arc::new(
            Verifier::new(cfg.certs_dir.join("jwks.json"), "bulwark-api")
                .with_max_lifetime(cfg.max_token_lifetime),
        ),
        metrics: metrics.clone(),
        max_wait: cfg.max_wait,
    };
    let mut limits = cfg.http.limits();
    // `/result` legitimately waits up to `max_wait` before answering: the request timeout
    // must not cut it short.
    let floor = cfg.max_wait + Duration::from_secs(10);
    if limits.request_timeout < floor {
        tracing::info!(request_timeout = ?floor, "request timeout raised above BULWARK_API_MAX_WAIT");
        limits.request_timeout = floor;
    }
    let stats = Arc::new(bulwark_serve::Stats::new("api"));
    metrics.add_listener(stats.clone());
    let listener = bulwark_serve::bind(cfg.listen).await?;
    tracing::info!(listen = %cfg.listen, fingerprint = %cert.fingerprint(), "bulwark-api serving HTTPS");
    bulwark_serve::serve(
        listener,
        tls,
        app(state),
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
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use clap::CommandFactory;

    /// Clap checks argument uniqueness only when parsing; a clash between our flags and the
    /// flattened listener limits must fail here, not at start-up.
    #[test]
    fn arguments_are_consistent() {
        super::Config::command().debug_assert();
    }

    /// The shared token-client group leaves the secrets file optional (the worker has a
    /// fallback); the API has none and must refuse to start without it.
    #[test]
    fn deployment_secrets_are_required() {
        use clap::Parser;
        let e = super::Config::try_parse_from(["bulwark-api"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--deployment-secrets"), "{e}");
        let c = super::Config::try_parse_from(["bulwark-api", "--deployment-secrets", "d.json"])
            .unwrap();
        assert_eq!(
            c.token_client.deployment_secrets.as_deref(),
            Some(std::path::Path::new("d.json"))
        );
    }
}
