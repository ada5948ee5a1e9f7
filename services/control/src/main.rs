//! bulwark-control: wiring and configuration only; see the library for the handlers.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use bulwark_control::{AppState, app, metrics::Metrics};
use bulwark_oauth::{ClientStore, IssuerSettings, TokenIssuer, signer::KeyFile};
use bulwark_tls::{PemFiles, Reloading, server_config};
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
    #[arg(long, env = "BULWARK_RATE_PER_CLIENT", default_value_t = 50.0)]
    rate_per_client: f64,
    #[arg(long, env = "BULWARK_RATE_PER_ADDRESS", default_value_t = 100.0)]
    rate_per_address: f64,
    /// How often certificates and the signing key are re-read from disk.
    #[arg(long, env = "BULWARK_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    reload_interval: Duration,
    /// How long start-up keeps retrying the database (it may still be starting, e.g. right
    /// after `docker compose up`) before giving up.
    #[arg(long, env = "BULWARK_DATABASE_CONNECT_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    database_connect_timeout: Duration,
    #[arg(long, env = "BULWARK_LOG_FORMAT", default_value = "text")]
    log_format: bulwark_process::LogFormat,
    #[command(flatten)]
    admin: bulwark_control::admin::config::AdminArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    bulwark_process::init_logging(cfg.log_format, "info,sqlx=warn");

    let url = zeroize::Zeroizing::new(
        std::fs::read_to_string(&cfg.database_url_file)
            .with_context(|| format!("reading {}", cfg.database_url_file.display()))?,
    );
    let pool = bulwark_oauth::connect_with_retry(url.trim(), 16, cfg.database_connect_timeout)
        .await
        .context(
            "connecting to the Bulwark database (check the URL file and that Postgres runs)",
        )?;
    let key = Arc::new(KeyFile::open(
        cfg.certs_dir.join("temporal-jwt-private.key"),
        cfg.reload_interval,
    )?);
    let ttl = time::Duration::try_from(cfg.access_token_ttl).context("token TTL")?;
    let issuer = TokenIssuer::new(
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
    );
    let cert = Reloading::new(PemFiles::new(
        cfg.certs_dir.join("control-server.crt"),
        cfg.certs_dir.join("control-server.key"),
    ))?;
    cert.spawn_watcher(cfg.reload_interval);
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server_config(
        cert.clone(),
        None,
    )?));
    let admin = if cfg.admin.admin_disabled {
        tracing::info!("admin page disabled");
        None
    } else {
        Some(admin_state(&cfg, pool.clone(), ttl).await?)
    };
    let state = AppState {
        issuer: Arc::new(issuer),
        certs_dir: cfg.certs_dir.clone(),
        base_url: cfg.url.trim_end_matches('/').to_owned(),
        metrics: Arc::new(Metrics::default()),
    };
    let router = match &admin {
        Some(a) => {
            bulwark_control::admin::spawn_background(a);
            app(state).merge(bulwark_control::admin::router(a.clone()))
        }
        None => app(state),
    };
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    tokio::spawn(async move {
        bulwark_process::shutdown_signal().await;
        shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    tracing::info!(listen = %cfg.listen, fingerprint = %cert.fingerprint(), "bulwark-control serving HTTPS");
    axum_server::bind_rustls(cfg.listen, tls)
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
        .context("serving")?;
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
    // while the account does not exist; never logged.
    let password = match std::env::var("BULWARK_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => Some(zeroize::Zeroizing::new(p)),
        _ => match &cfg.admin.admin_password_file {
            Some(path) => Some(zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_owned(),
            )),
            None => None,
        },
    };
    match password {
        Some(p) => {
            if auth::ensure_admin(&admin.pool, &cfg.admin.admin_user, &p).await? {
                tracing::info!(user = %cfg.admin.admin_user, "admin account created");
            }
        }
        None => tracing::warn!(
            "no BULWARK_ADMIN_PASSWORD_FILE: the admin account is not bootstrapped (existing accounts still work)"
        ),
    }
    let n = jobs::fail_interrupted(&admin.pool).await?;
    if n > 0 {
        tracing::warn!(
            jobs = n,
            "rotation jobs interrupted by the last shutdown were marked failed"
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
