//! Command-line / environment configuration of the admin page. The PKI settings use the
//! same variables (and defaults) as `bulwark-init generate`, so a rotation here issues what
//! init would issue.

use std::{path::PathBuf, time::Duration};

use bulwark_pki::cli::PkiArgs;

use super::{AdminConfig, TemporalTarget};

fn std_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 35s, 15m, 24h)"))
}

#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// Disable the admin page entirely (token endpoint only).
    #[arg(long, env = "BULWARK_ADMIN_DISABLED", default_value_t = false)]
    pub admin_disabled: bool,
    /// Name of the bootstrapped admin account.
    #[arg(long, env = "BULWARK_ADMIN_USER", default_value = "admin")]
    pub admin_user: String,
    /// File holding the initial admin password (written 0600 by `bulwark-init database`).
    /// Used only when the account does not exist yet.
    #[arg(long, env = "BULWARK_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    #[arg(long, env = "BULWARK_ADMIN_SESSION_IDLE", default_value = "30m", value_parser = std_duration)]
    pub session_idle: Duration,
    #[arg(long, env = "BULWARK_ADMIN_SESSION_MAX", default_value = "12h", value_parser = std_duration)]
    pub session_max: Duration,
    /// Failed logins in a row that lock an account.
    #[arg(long, env = "BULWARK_ADMIN_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,
    #[arg(long, env = "BULWARK_ADMIN_LOCKOUT", default_value = "15m", value_parser = std_duration)]
    pub lockout: Duration,
    /// Failed logins one address may make per 15 minutes.
    #[arg(long, env = "BULWARK_ADMIN_ADDRESS_LIMIT", default_value_t = 20)]
    pub address_limit: u32,
    /// Temporal's JWKS refresh interval plus margin: how long a new key is published before
    /// it signs.
    #[arg(long, env = "BULWARK_JWKS_PROPAGATION", default_value = "35s", value_parser = std_duration)]
    pub jwks_propagation: Duration,
    /// How long to wait for a rotated server certificate to show on a fresh handshake
    /// (Temporal's TLS refreshInterval plus margin).
    #[arg(long, env = "BULWARK_CERT_PROPAGATION_TIMEOUT", default_value = "150s", value_parser = std_duration)]
    pub cert_propagation_timeout: Duration,
    /// Default grace window of a rotated OAuth client secret.
    #[arg(long, env = "BULWARK_OAUTH_GRACE", default_value = "24h", value_parser = bulwark_pki::cli::duration)]
    pub oauth_grace: time::Duration,
    /// How often the automatic renewal runs; 0s disables it.
    #[arg(long, env = "BULWARK_RENEW_INTERVAL", default_value = "10m", value_parser = std_duration)]
    pub renew_interval: Duration,
    /// Temporal frontend for propagation checks (host:port); unset skips them.
    #[arg(long, env = "BULWARK_TEMPORAL_ADDRESS")]
    pub temporal_address: Option<String>,
    /// The directory of the services' deployment secret stores (one file per OAuth client,
    /// `deployment-secrets-<client>.json`, as `bulwark-init database` writes them); a rotated
    /// client secret is written back to its client's file when that file exists.
    #[arg(long, env = "BULWARK_DEPLOYMENT_SECRETS_DIR")]
    pub deployment_secrets_dir: Option<PathBuf>,
    /// Master key file of the encrypted Postgres secret store; unset hides stored credentials.
    #[arg(long, env = "BULWARK_SECRET_STORE_MASTER_KEY_FILE")]
    pub secret_store_master_key_file: Option<PathBuf>,
    /// Partition of the secret table (the component's storeNamespace; default its name).
    #[arg(
        long,
        env = "BULWARK_SECRET_STORE_NAMESPACE",
        default_value = "default"
    )]
    pub secret_store_namespace: String,

    /// The same PKI settings as `bulwark-init generate`.
    #[command(flatten)]
    pub pki: PkiArgs,
    /// Frontend address written into the Temporal CLI profiles (as `bulwark-init generate`
    /// was given); defaults to the Temporal address.
    #[arg(long, env = "BULWARK_CLI_TEMPORAL_ADDRESS")]
    pub cli_temporal_address: Option<String>,
}

impl AdminArgs {
    /// The admin configuration; `issuer` and `access_token_ttl` come from the token settings.
    pub fn into_config(
        self,
        certs_dir: PathBuf,
        issuer: &str,
        access_token_ttl: time::Duration,
    ) -> anyhow::Result<AdminConfig> {
        let s = self.pki.clone().into_settings(
            issuer.to_owned(),
            self.cli_temporal_address
                .clone()
                .or(self.temporal_address.clone()),
        )?;
        let namespace = s
            .namespaces
            .first()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| "default".into());
        let mut cfg = AdminConfig::new(certs_dir, s);
        cfg.session_idle = self.session_idle;
        cfg.session_absolute = self.session_max;
        cfg.lockout_threshold = self.lockout_threshold.max(1);
        cfg.lockout_duration = self.lockout;
        cfg.address_limit = self.address_limit.max(1);
        cfg.jwks_propagation = self.jwks_propagation;
        cfg.cert_propagation_timeout = self.cert_propagation_timeout;
        cfg.oauth_grace = self.oauth_grace;
        cfg.access_token_ttl = access_token_ttl;
        cfg.renew_interval = (!self.renew_interval.is_zero()).then_some(self.renew_interval);
        cfg.deployment_secrets_dir = self.deployment_secrets_dir;
        cfg.temporal = self.temporal_address.map(|address| TemporalTarget {
            address,
            server_name: cfg.pki.temporal_server_name.clone(),
            namespace,
        });
        Ok(cfg)
    }
}
