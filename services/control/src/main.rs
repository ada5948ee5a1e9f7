//! bulwark-control: wiring and configuration only; see the library for the handlers.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use bulwark_control::{AppState, app, metrics::Metrics};
use bulwark_serve::Stats;
use bulwark_tls::{
    ClientTrust, PemFiles, Reloading, server_config, server_config_with_client_trust,
};
use bulwark_token_issuer::{ClientStore, IssuerSettings, TokenIssuer, signer::KeyFile};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "bulwark-control",
    version,
    about = "Bulwark control plane: OAuth2 token endpoint and JWKS"
)]
struct Config {
    #[arg(long, env = "BULWARK_CONTROL_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Public base URL of this service, for the metadata document.
    #[arg(
        long,
        env = "BULWARK_CONTROL_URL",
        default_value = "https://127.0.0.1:8443"
    )]
    url: String,
    /// The admin page's own listener (internal: never publish it beside the token endpoint).
    #[arg(long, env = "BULWARK_ADMIN_LISTEN", default_value = "127.0.0.1:8445")]
    admin_listen: SocketAddr,
    #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
    certs_dir: PathBuf,
    /// File holding the Bulwark database URL (it contains a password, so never a flag).
    #[arg(long, env = "BULWARK_DATABASE_URL_FILE")]
    database_url_file: PathBuf,
    /// `iss` of minted tokens.
    #[arg(long, env = "BULWARK_JWT_ISSUER", default_value = "bulwark")]
    issuer: String,
    /// Access token lifetime.
    #[arg(long, env = "BULWARK_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    access_token_ttl: Duration,
    /// Tokens per second one authenticated client may get (burst: twice this).
    #[arg(long, env = "BULWARK_RATE_PER_CLIENT", default_value_t = 50.0)]
    rate_per_client: f64,
    /// Token requests per second one address may send, authenticated or not (burst: twice).
    #[arg(long, env = "BULWARK_RATE_PER_ADDRESS", default_value_t = 100.0)]
    rate_per_address: f64,
    /// Failed authentications one (client id, address) pair may make before 429...
    #[arg(long, env = "BULWARK_RATE_FAILURE_BURST", default_value_t = 10)]
    rate_failure_burst: u32,
    /// ...and how many per second come back.
    #[arg(long, env = "BULWARK_RATE_FAILURES_PER_SECOND", default_value_t = 0.1)]
    rate_failures_per_second: f64,
    /// Failed authentications one address may make, for any client ids, before 429...
    #[arg(long, env = "BULWARK_RATE_ADDRESS_FAILURE_BURST", default_value_t = 50)]
    rate_address_failure_burst: u32,
    /// ...and how many per second come back.
    #[arg(
        long,
        env = "BULWARK_RATE_ADDRESS_FAILURES_PER_SECOND",
        default_value_t = 1.0
    )]
    rate_address_failures_per_second: f64,
    /// Keys each token-endpoint rate limiter holds (least recently used evicted first).
    #[arg(long, env = "BULWARK_RATE_LIMITER_CAPACITY", default_value_t = 10_000)]
    rate_limiter_capacity: usize,
    /// How often certificates and the signing key are re-read from disk.
    #[arg(long, env = "BULWARK_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    reload_interval: Duration,
    /// How long start-up keeps retrying the database (it may still be starting, e.g. right
    /// after `docker compose up`) before giving up.
    #[arg(long, env = "BULWARK_DATABASE_CONNECT_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    database_connect_timeout: Duration,
    #[command(flatten)]
    log: bulwark_process::cli::LogArgs,
    #[command(flatten)]
    admin: bulwark_control::admin::config::AdminArgs,
    #[command(flatten)]
    http: bulwark_serve::cli::ListenerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    cfg.log.init("info,sqlx=warn");

    let url = zeroize::Zeroizing::new(
        std::fs::read_to_string(&cfg.database_url_file)
            .with_context(|| format!("reading {}", cfg.database_url_file.display()))?,
    );
    let pool = bulwark_db::connect_with_retry(url.trim(), 16, cfg.database_connect_timeout)
        .await
        .context(
            "connecting to the Bulwark database (check the URL file and that Postgres runs)",
        )?;
    let key = Arc::new(KeyFile::open(
        cfg.certs_dir.join("temporal-jwt-private.key"),
        cfg.reload_interval,
    )?);
    let state_key = key.clone();
    let ttl = time::Duration::try_from(cfg.access_token_ttl).context("token TTL")?;
    let issuer = TokenIssuer::with_throttle(
        ClientStore::new(pool.clone()),
        key,
        IssuerSettings {
            issuer: cfg.issuer.clone(),
            ttl,
            per_client_per_second: cfg.rate_per_client,
            per_client_burst: (cfg.rate_per_client * 2.0) as u32,
            per_address_per_second: cfg.rate_per_address,
            per_address_burst: (cfg.rate_per_address * 2.0) as u32,
        },
        &bulwark_token_issuer::ThrottleSettings {
            failure_burst: cfg.rate_failure_burst,
            failures_per_second: cfg.rate_failures_per_second,
            address_failure_burst: cfg.rate_address_failure_burst,
            address_failures_per_second: cfg.rate_address_failures_per_second,
            capacity: cfg.rate_limiter_capacity,
        },
    );
    let cert = Reloading::new(PemFiles::new(
        cfg.certs_dir.join("control-server.crt"),
        cfg.certs_dir.join("control-server.key"),
    ))?;
    cert.spawn_watcher(cfg.reload_interval);
    // Both listeners serve the control-server certificate (reloaded on rotation). The public
    // one also asks for an optional client certificate (client-trust.pem, re-read on an
    // issuing-CA rotation): tokens for Temporal are bound to it. The admin page asks for none.
    let tls = Arc::new(server_config(cert.clone(), None)?);
    let client_trust = ClientTrust::optional(cfg.certs_dir.join("client-trust.pem"))?;
    client_trust.spawn_watcher(cfg.reload_interval);
    let public_tls = Arc::new(server_config_with_client_trust(cert.clone(), client_trust)?);
    let admin = if cfg.admin.admin_disabled {
        tracing::info!("admin page disabled");
        None
    } else {
        Some(admin_state(&cfg, pool.clone(), ttl).await?)
    };
    if let Some(a) = &admin {
        // The page's rotations and revokes make the token endpoint re-read the key at once.
        let _ = a.signer.set(state_key.clone());
    }
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        issuer: Arc::new(issuer),
        certs_dir: cfg.certs_dir.clone(),
        base_url: cfg.url.trim_end_matches('/').to_owned(),
        metrics: metrics.clone(),
    };
    let limits = cfg.http.limits();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        bulwark_process::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // The public listener: token endpoint, JWKS, metadata, health, metrics. The admin page
    // is not here (not even as 404-behind-login): only the admin listener routes /admin.
    let public_stats = Arc::new(Stats::new("public"));
    metrics.add_listener(public_stats.clone());
    let public = bulwark_serve::bind(cfg.listen).await?;
    tracing::info!(listen = %cfg.listen, fingerprint = %cert.fingerprint(), "bulwark-control serving HTTPS (public)");
    let public = bulwark_serve::serve(
        public,
        public_tls,
        app(state),
        limits.clone(),
        public_stats,
        stopped(stopping.clone()),
    );
    let admin_server = async {
        let Some(a) = &admin else {
            return Ok(());
        };
        bulwark_control::admin::spawn_background(a);
        let stats = Arc::new(Stats::new("admin"));
        metrics.add_listener(stats.clone());
        let router = bulwark_control::admin::router(a.clone())
            .route("/healthz", axum::routing::get(|| async { "ok\n" }));
        let listener = bulwark_serve::bind(cfg.admin_listen).await?;
        tracing::info!(listen = %cfg.admin_listen, "bulwark-control serving HTTPS (admin page)");
        bulwark_serve::serve(
            listener,
            tls.clone(),
            router,
            limits.clone(),
            stats,
            stopped(stopping.clone()),
        )
        .await
    };
    tokio::try_join!(public, admin_server).context("serving")?;
    // Refused logins still counted in memory become their audit rows before the process ends.
    // Bounded: with the database gone each row could wait for a connection, and a stop
    // grace period would kill the process anyway.
    if let Some(a) = &admin {
        let flush = bulwark_control::admin::auth::flush_on_shutdown(a);
        if tokio::time::timeout(Duration::from_secs(5), flush)
            .await
            .is_err()
        {
            tracing::warn!("refused-login counts not written at shutdown (database too slow)");
        }
    }
    Ok(())
}

/// The admin page's state: configuration, the bootstrap account, the optional secret store.
async fn admin_state(
    cfg: &Config,
    pool: sqlx::PgPool,
    ttl: time::Duration,
) -> anyhow::Result<bulwark_control::admin::AdminState> {
    use bulwark_control::admin::{Admin, auth, jobs};
    let admin_cfg = cfg
        .admin
        .clone()
        .into_config(cfg.certs_dir.clone(), &cfg.issuer, ttl)?;
    let secrets = match &cfg.admin.secret_store_master_key_file {
        Some(path) => {
            let key = bulwark_secrets::store::MasterKey::from_file(path)
                .with_context(|| format!("secret store master key {}", path.display()))?;
            let ns = cfg.admin.secret_store_namespace.clone();
            let store = bulwark_secrets::store::PostgresStore::from_pool(
                ns.clone(),
                ns.clone(),
                pool.clone(),
                bulwark_secrets::store::MasterKeyring::new(key),
            );
            Some((store, ns))
        }
        None => None,
    };
    let admin = Admin::new(admin_cfg, pool, secrets)?;
    // The initial password: BULWARK_ADMIN_PASSWORD, else the file init wrote. Only used
    // while the account does not exist; never logged; a missing file is fine (it is deleted
    // once the password has been changed).
    auth::bootstrap(&admin, std::env::var("BULWARK_ADMIN_PASSWORD").ok()).await?;
    let n = jobs::mark_interrupted(&admin.pool).await?;
    if n > 0 {
        tracing::warn!(
            jobs = n,
            "rotation jobs interrupted by the last shutdown were marked interrupted (resumable)"
        );
    }
    Ok(admin)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap checks argument uniqueness only when parsing; a clash between our flags and the
    /// flattened PKI settings must fail here, not at start-up.
    #[test]
    fn arguments_are_consistent() {
        super::Config::command().debug_assert();
    }
}
