//! Command-line / environment configuration of the admin page. The PKI settings use the
//! same variables (and defaults) as `bulwark-init generate`, so a rotation here issues what
//! init would issue.

use std::{path::PathBuf, time::Duration};

use bulwark_pki::cli::PkiArgs;

use super::{AdminConfig, TemporalTarget};

/// A duration argument that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0} (examples: 35s, 15m, 24h)")]
pub struct BadDuration(#[from] humantime::DurationError);

fn std_duration(s: &str) -> Result<Duration, BadDuration> {
    Ok(humantime::parse_duration(s)?)
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
    /// Used only when the account does not exist yet; deleted once that account's password
    /// has been changed (a missing file is not an error).
    #[arg(long, env = "BULWARK_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    #[arg(long, env = "BULWARK_ADMIN_SESSION_IDLE", default_value = "30m", value_parser = std_duration)]
    pub session_idle: Duration,
    #[arg(long, env = "BULWARK_ADMIN_SESSION_MAX", default_value = "12h", value_parser = std_duration)]
    pub session_max: Duration,
    /// Failed logins of one user from one address after which that (user, address) pair
    /// waits 1 s, then 2 s, 4 s ... before its next try. Nothing locks the account itself:
    /// the same user from another address is not slowed down.
    #[arg(long, env = "BULWARK_ADMIN_BACKOFF_AFTER", default_value_t = 3)]
    pub backoff_after: u32,
    /// The longest wait of that backoff.
    #[arg(long, env = "BULWARK_ADMIN_BACKOFF_MAX", default_value = "15m", value_parser = std_duration)]
    pub backoff_max: Duration,
    /// Failed logins one address may make (any user) per 15 minutes.
    #[arg(long, env = "BULWARK_ADMIN_ADDRESS_LIMIT", default_value_t = 20)]
    pub address_limit: u32,
    /// Password hashes (argon2id, 19 MiB each) computed at once; further logins wait.
    /// Default: half the CPUs (at least one), so a login storm leaves the other half to the
    /// token endpoint.
    #[arg(long, env = "BULWARK_ADMIN_LOGIN_CONCURRENCY")]
    pub login_concurrency: Option<usize>,
    /// How long a login waits for a turn before it is answered 429 with Retry-After.
    #[arg(long, env = "BULWARK_ADMIN_LOGIN_QUEUE_WAIT", default_value = "1500ms", value_parser = std_duration)]
    pub login_queue_wait: Duration,
    /// Addresses and (user, address) pairs whose failures are remembered (each an LRU).
    #[arg(long, env = "BULWARK_ADMIN_LOGIN_TRACKED", default_value_t = 10_000)]
    pub login_tracked: usize,
    /// How long a login form (its CSRF token) stays valid.
    #[arg(long, env = "BULWARK_ADMIN_LOGIN_FORM_TTL", default_value = "10m", value_parser = std_duration)]
    pub login_form_ttl: Duration,
    /// Refused logins from one address within this window are written as one audit row
    /// (the first at once, the rest as a count when the window closes).
    #[arg(long, env = "BULWARK_ADMIN_AUDIT_REFUSAL_WINDOW", default_value = "5m", value_parser = std_duration)]
    pub audit_refusal_window: Duration,
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
        let mut s = self.pki.clone().into_settings(
            issuer.to_owned(),
            self.cli_temporal_address
                .clone()
                .or(self.temporal_address.clone()),
        )?;
        // The retirement rule (bulwark_pki::rotate::jwt::retire_after) must see the token
        // endpoint's lifetime: a retired key stays published until its tokens expired.
        s.access_token_ttl = access_token_ttl;
        let namespace = s
            .namespaces
            .first()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| "default".into());
        let mut cfg = AdminConfig::new(certs_dir, s);
        cfg.session_idle = self.session_idle;
        cfg.session_absolute = self.session_max;
        cfg.backoff_after = self.backoff_after.max(1);
        cfg.backoff_max = self.backoff_max;
        cfg.address_limit = self.address_limit.max(1);
        cfg.login_concurrency = self
            .login_concurrency
            .unwrap_or_else(super::default_login_concurrency)
            .clamp(1, super::MAX_LOGIN_CONCURRENCY);
        cfg.login_queue_wait = self.login_queue_wait;
        cfg.login_tracked = self.login_tracked.max(1);
        cfg.login_form_ttl = self.login_form_ttl;
        cfg.audit_refusal_window = self.audit_refusal_window;
        cfg.admin_user = self.admin_user.clone();
        cfg.admin_password_file = self.admin_password_file.clone();
        cfg.jwks_propagation = self.jwks_propagation;
        cfg.cert_propagation_timeout = self.cert_propagation_timeout;
        cfg.oauth_grace = self.oauth_grace;
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
