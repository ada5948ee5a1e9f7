//! Command-line / environment configuration of the admin page. The PKI settings use the
//! same variables (and defaults) as `bulwark-init generate`, so a rotation here issues what
//! init would issue.

use std::{path::PathBuf, time::Duration};

use bulwark_pki::{
    Settings,
    jwt::JwtAlgorithm,
    keys::KeyAlgorithm,
    names::{Identity, Namespace, San},
};

use super::{AdminConfig, TemporalTarget};

fn std_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 35s, 15m, 24h)"))
}

fn pki_duration(s: &str) -> Result<time::Duration, String> {
    let d = std_duration(s)?;
    time::Duration::try_from(d).map_err(|e| e.to_string())
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
    #[arg(long, env = "BULWARK_OAUTH_GRACE", default_value = "24h", value_parser = pki_duration)]
    pub oauth_grace: time::Duration,
    /// How often the automatic renewal runs; 0s disables it.
    #[arg(long, env = "BULWARK_RENEW_INTERVAL", default_value = "10m", value_parser = std_duration)]
    pub renew_interval: Duration,
    /// Temporal frontend for propagation checks (host:port); unset skips them.
    #[arg(long, env = "BULWARK_TEMPORAL_ADDRESS")]
    pub temporal_address: Option<String>,
    /// The deployment secret store file; rotated OAuth secrets of clients listed there are
    /// written back to it.
    #[arg(long, env = "BULWARK_DEPLOYMENT_SECRETS")]
    pub deployment_secrets: Option<PathBuf>,
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

    // --- the same PKI settings as `bulwark-init generate` ---
    #[arg(long, env = "BULWARK_CA_LIFETIME", default_value = "3650d", value_parser = pki_duration)]
    pub ca_lifetime: time::Duration,
    #[arg(long, env = "BULWARK_INTERMEDIATE_LIFETIME", default_value = "1825d", value_parser = pki_duration)]
    pub intermediate_lifetime: time::Duration,
    #[arg(long, env = "BULWARK_LEAF_LIFETIME", default_value = "30d", value_parser = pki_duration)]
    pub leaf_lifetime: time::Duration,
    #[arg(long, env = "BULWARK_JWT_KEY_LIFETIME", default_value = "90d", value_parser = pki_duration)]
    pub jwt_key_lifetime: time::Duration,
    /// Static token lifetime.
    #[arg(long, env = "BULWARK_TOKEN_TTL", default_value = "24h", value_parser = pki_duration)]
    pub static_token_ttl: time::Duration,
    #[arg(long, env = "BULWARK_RENEW_AT", default_value_t = 2.0 / 3.0)]
    pub renew_at: f64,
    #[arg(long, env = "BULWARK_KEY_ALGORITHM", default_value = "ecdsa-p256")]
    pub key_algorithm: KeyAlgorithm,
    #[arg(long, env = "BULWARK_JWT_ALGORITHM", default_value = "ES256")]
    pub jwt_algorithm: JwtAlgorithm,
    #[arg(
        long = "server-san",
        env = "BULWARK_SERVER_SANS",
        value_delimiter = ',',
        default_value = "temporal,temporal-server,localhost,127.0.0.1"
    )]
    pub server_sans: Vec<San>,
    #[arg(
        long = "internode-san",
        env = "BULWARK_INTERNODE_SANS",
        value_delimiter = ',',
        default_value = "temporal-internode,localhost,127.0.0.1"
    )]
    pub internode_sans: Vec<San>,
    #[arg(
        long = "control-san",
        env = "BULWARK_CONTROL_SANS",
        value_delimiter = ',',
        default_value = "bulwark-control,localhost,127.0.0.1"
    )]
    pub control_sans: Vec<San>,
    #[arg(
        long = "api-san",
        env = "BULWARK_API_SANS",
        value_delimiter = ',',
        default_value = "bulwark-api,localhost,127.0.0.1"
    )]
    pub api_sans: Vec<San>,
    #[arg(
        long = "identity",
        env = "BULWARK_IDENTITIES",
        value_delimiter = ',',
        default_value = "api,worker,control,admin,ui"
    )]
    pub identities: Vec<Identity>,
    #[arg(
        long = "namespace",
        env = "BULWARK_NAMESPACES",
        value_delimiter = ',',
        default_value = "default"
    )]
    pub namespaces: Vec<Namespace>,
    #[arg(long, env = "BULWARK_JWT_AUDIENCE", default_value = "temporal")]
    pub audience: String,
    #[arg(long, env = "BULWARK_TRUST_DOMAIN", default_value = "bulwark.local")]
    pub trust_domain: String,
    /// Frontend address written into the Temporal CLI profiles (as `bulwark-init generate`
    /// was given); defaults to the Temporal address.
    #[arg(long, env = "BULWARK_CLI_TEMPORAL_ADDRESS")]
    pub cli_temporal_address: Option<String>,
    #[arg(long, env = "BULWARK_TEMPORAL_SERVER_NAME", default_value = "temporal")]
    pub temporal_server_name: String,
}

fn dedup<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

impl AdminArgs {
    /// The admin configuration; `issuer` and `access_token_ttl` come from the token settings.
    pub fn into_config(
        self,
        certs_dir: PathBuf,
        issuer: &str,
        access_token_ttl: time::Duration,
    ) -> anyhow::Result<AdminConfig> {
        let mut s = Settings::default();
        s.ca_lifetime = self.ca_lifetime;
        s.intermediate_lifetime = self.intermediate_lifetime;
        s.leaf_lifetime = self.leaf_lifetime;
        s.jwt_key_lifetime = self.jwt_key_lifetime;
        s.token_ttl = self.static_token_ttl;
        s.key_algorithm = self.key_algorithm;
        s.jwt_algorithm = self.jwt_algorithm;
        s.server_sans = dedup(self.server_sans);
        s.internode_sans = dedup(self.internode_sans);
        s.control_sans = dedup(self.control_sans);
        s.api_sans = dedup(self.api_sans);
        s.identities = dedup(self.identities);
        s.namespaces = dedup(self.namespaces);
        s.issuer = issuer.to_owned();
        s.audience = self.audience;
        s.trust_domain = self.trust_domain;
        if let Some(a) = self
            .cli_temporal_address
            .clone()
            .or(self.temporal_address.clone())
        {
            s.temporal_address = a;
        }
        s.temporal_server_name = self.temporal_server_name.clone();
        s.set_renew_fraction(self.renew_at)?;
        s.validate()?;
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
        cfg.deployment_secrets = self.deployment_secrets;
        cfg.temporal = self.temporal_address.map(|address| TemporalTarget {
            address,
            server_name: self.temporal_server_name,
            namespace,
        });
        Ok(cfg)
    }
}
