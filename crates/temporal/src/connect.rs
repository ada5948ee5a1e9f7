//! Connecting to Temporal's frontend over mutual TLS with a rotating bearer JWT.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bulwark_tls::{PemFiles, Reloading};
use bulwark_token_client::TokenManager;
use temporalio_client::{
    ClientOptions, Connection, ConnectionOptions, ResolvesClientCert, TlsOptions, Url,
};

use crate::client::Client;

/// How connection attempts are retried: jittered exponential backoff.
#[derive(Debug, Clone)]
pub struct ConnectRetry {
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Upper bound of one delay.
    pub max: Duration,
    /// Give up after this many attempts (`None`: keep trying until the future is dropped).
    pub max_attempts: Option<u32>,
}

impl Default for ConnectRetry {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            max_attempts: Some(10),
        }
    }
}

impl ConnectRetry {
    /// The delay after failed attempt number `attempt` (1-based): `initial * 2^(attempt-1)`
    /// capped at `max`, then a uniformly random fraction in [50%, 100%] of that.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        let capped = exp.min(self.max);
        let frac = 0.5 + 0.5 * random_unit();
        capped.mul_f64(frac)
    }
}

/// A uniformly distributed number in [0, 1) from the standard library's randomly keyed hasher.
fn random_unit() -> f64 {
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Where a client identity's certificate and key live.
#[derive(Debug, Clone)]
pub struct Identity {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Identity {
    /// `client-<name>.crt` / `client-<name>.key` in `certs_dir` (e.g. name `worker`).
    #[must_use]
    pub fn in_certs_dir(certs_dir: &Path, name: &str) -> Self {
        Self {
            cert: certs_dir.join(format!("client-{name}.crt")),
            key: certs_dir.join(format!("client-{name}.key")),
        }
    }

    /// The certificate and key, loaded into a holder that re-reads them when they change
    /// (once its watcher runs: [`connect`] starts one for the holder it is given). Give the
    /// same holder to the token manager (`TokenManagerBuilder::client_certificate`) and to
    /// [`ConnectOptions::certificate`], so tokens are bound to the certificate Temporal
    /// sees.
    pub fn load(&self) -> Result<Arc<Reloading>, bulwark_tls::Error> {
        Reloading::new(PemFiles::new(self.cert.clone(), self.key.clone()))
    }
}

/// Everything [`connect`] needs.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Frontend address, `host:port` (or a full `https://host:port` URL).
    pub address: String,
    /// Name the server certificate must carry (SNI and verification), e.g. `temporal`.
    pub server_name: String,
    /// CA bundle (PEM) trusted for the server certificate.
    pub ca_file: PathBuf,
    /// The client certificate and key presented for mTLS; re-read when they change on disk.
    pub identity: Identity,
    /// `identity` already loaded ([`Identity::load`]), when the caller shares the holder
    /// with its token manager; `None`: [`connect`] loads `identity` itself.
    pub certificate: Option<Arc<Reloading>>,
    /// Namespace the client works in.
    pub namespace: String,
    /// Identity string recorded by Temporal (pollers, history); e.g. `bulwark-worker@host`.
    pub client_identity: String,
    /// Supplies the bearer JWT; every refreshed token is applied to the live connection.
    pub tokens: TokenManager,
    /// How often the client certificate files are checked for replacement.
    pub cert_reload_interval: Duration,
    /// Retrying of failed connection attempts.
    pub retry: ConnectRetry,
    /// Timeout of one TCP+TLS connect.
    pub connect_timeout: Duration,
    /// How often the token manager checks the issuer's JWKS for the revocation of its
    /// token's key (then fetches a new token at once); `None` disables the check.
    pub jwks_watch_interval: Option<Duration>,
}

/// Environment variable for [`ConnectOptions::jwks_watch_interval`]: a duration such as
/// `10s`; `0` or `off` disables the watch.
pub const JWKS_WATCH_INTERVAL_ENV: &str = "BULWARK_JWKS_WATCH_INTERVAL";

/// Parses a [`JWKS_WATCH_INTERVAL_ENV`] value.
pub fn parse_jwks_watch_interval(value: &str) -> Result<Option<Duration>, String> {
    match value.trim() {
        "" => Ok(Some(bulwark_token_client::DEFAULT_JWKS_WATCH_INTERVAL)),
        "0" | "off" => Ok(None),
        v => match humantime::parse_duration(v) {
            Ok(d) if d.is_zero() => Ok(None),
            Ok(d) => Ok(Some(d)),
            Err(e) => Err(format!("{JWKS_WATCH_INTERVAL_ENV}={v:?}: {e}")),
        },
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("address", &self.address)
            .field("server_name", &self.server_name)
            .field("ca_file", &self.ca_file)
            .field("identity", &self.identity)
            .field(
                "certificate",
                &self.certificate.as_ref().map(|c| c.fingerprint()),
            )
            .field("namespace", &self.namespace)
            .field("client_identity", &self.client_identity)
            .field("tokens", &self.tokens.app())
            .field("cert_reload_interval", &self.cert_reload_interval)
            .field("retry", &self.retry)
            .field("jwks_watch_interval", &self.jwks_watch_interval)
            .finish_non_exhaustive()
    }
}

impl ConnectOptions {
    /// Options with defaults: the identity's `client-<identity>.crt/.key` and `ca.crt` in
    /// `certs_dir`, certificate re-checked every 30 s, 10 attempts, 10 s connect timeout,
    /// JWKS revocation watch every [`JWKS_WATCH_INTERVAL_ENV`] (default 10 s).
    #[must_use]
    pub fn new(
        address: impl Into<String>,
        server_name: impl Into<String>,
        certs_dir: &Path,
        identity: &str,
        namespace: impl Into<String>,
        tokens: TokenManager,
    ) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        let jwks_watch_interval =
            parse_jwks_watch_interval(&std::env::var(JWKS_WATCH_INTERVAL_ENV).unwrap_or_default())
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "ignoring an invalid setting; using the default");
                    Some(bulwark_token_client::DEFAULT_JWKS_WATCH_INTERVAL)
                });
        Self {
            address: address.into(),
            server_name: server_name.into(),
            ca_file: certs_dir.join("ca.crt"),
            identity: Identity::in_certs_dir(certs_dir, identity),
            certificate: None,
            namespace: namespace.into(),
            client_identity: format!("bulwark-{identity}@{host}:{}", std::process::id()),
            tokens,
            cert_reload_interval: Duration::from_secs(30),
            retry: ConnectRetry::default(),
            connect_timeout: Duration::from_secs(10),
            jwks_watch_interval,
        }
    }
}

/// Why [`connect`] gave up. Messages name the address and the cause, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Local configuration is unusable (bad address, unreadable certificate or CA).
    #[error("Temporal client configuration for {address}: {reason}")]
    Config {
        /// The frontend address.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// No bearer token could be obtained.
    #[error("connecting to Temporal at {address}: no access token: {source}")]
    Token {
        /// The frontend address.
        address: String,
        /// The token manager's (redacting) error.
        #[source]
        source: bulwark_token_client::AuthError,
    },
    /// Every attempt failed; the last cause is given.
    #[error(
        "connecting to Temporal at {address} (server name `{server_name}`) failed after {attempts} attempt(s): {cause}"
    )]
    Unreachable {
        /// The frontend address.
        address: String,
        /// Expected server name.
        server_name: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        cause: String,
    },
}

/// Formats an error and its sources on one line.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// The channel URL. TLS is always done by the SDK's dynamic-certificate connector (which
/// wraps every TCP connection in rustls with our resolver), and tonic refuses an `https` URI
/// on a channel without its own TLS config, so the channel URL uses `http`.
fn target_url(address: &str) -> Result<Url, String> {
    let host_port = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .unwrap_or(address)
        .trim_end_matches('/');
    if host_port.contains("://") {
        return Err("invalid address: unsupported scheme".into());
    }
    let url =
        Url::parse(&format!("http://{host_port}")).map_err(|e| format!("invalid address: {e}"))?;
    if url.port().is_none() {
        return Err("invalid address: a port is required (host:port)".into());
    }
    Ok(url)
}

/// Connects to Temporal with mTLS and a bearer JWT, retrying failures with jittered backoff.
///
/// * The client certificate is served by a [`Reloading`] resolver (the caller's
///   [`ConnectOptions::certificate`], else `identity` loaded here) polled every
///   `cert_reload_interval`: a certificate replaced on disk is used for the next TLS handshake
///   without restart, by this connection and by a token manager sharing the holder.
/// * The token manager's background refresh is started (idempotent); the first token is
///   fetched before connecting, and every refreshed token is applied to the live connection
///   with `set_api_key` (no reconnect).
/// * With `jwks_watch_interval`, the token manager's revocation watch is started: a token
///   whose signing key left the issuer's JWKS is replaced on the live connection within one
///   interval.
/// * Each failure is logged with the address and cause; [`ConnectError`] carries the last one.
pub async fn connect(options: ConnectOptions) -> Result<Client, ConnectError> {
    let address = options.address.clone();
    let config_err = |reason: String| ConnectError::Config {
        address: address.clone(),
        reason,
    };
    let url = target_url(&options.address).map_err(&config_err)?;
    let ca = std::fs::read(&options.ca_file)
        .map_err(|e| config_err(format!("CA bundle {}: {e}", options.ca_file.display())))?;
    let cert = match &options.certificate {
        Some(c) => c.clone(),
        None => options
            .identity
            .load()
            .map_err(|e| config_err(format!("client certificate: {e}")))?,
    };
    let watcher = cert.spawn_watcher(options.cert_reload_interval);
    let resolver: Arc<dyn ResolvesClientCert> = cert.clone();

    options
        .tokens
        .start_background_refresh()
        .map_err(|source| ConnectError::Token {
            address: address.clone(),
            source,
        })?;

    let mut attempt = 0u32;
    let connection = loop {
        attempt += 1;
        let result = async {
            let token = options
                .tokens
                .get_access_token(false)
                .await
                .map_err(|e| format!("no access token: {e}"))?;
            let tls = TlsOptions::builder()
                .server_root_ca_cert(ca.clone())
                .domain(options.server_name.clone())
                .client_cert_resolver(resolver.clone())
                .build();
            let conn_opts = ConnectionOptions::new(url.clone())
                .identity(options.client_identity.clone())
                .tls_options(tls)
                .api_key(token.expose_secret().to_owned())
                .connect_timeout(options.connect_timeout)
                .client_name("bulwark")
                // The SDK enables DNS load balancing for host names, and refuses a client
                // certificate resolver with it; the resolver is what makes certificate
                // rotation work without a restart, so it wins.
                .dns_load_balancing(None)
                .build();
            Connection::connect(conn_opts)
                .await
                .map_err(|e| describe_connect_error(&e))
        }
        .await;
        match result {
            Ok(c) => break c,
            Err(cause) => {
                let exhausted = options.retry.max_attempts.is_some_and(|m| attempt >= m);
                if exhausted {
                    watcher.abort();
                    return Err(ConnectError::Unreachable {
                        address: address.clone(),
                        server_name: options.server_name.clone(),
                        attempts: attempt,
                        cause,
                    });
                }
                let delay = options.retry.delay(attempt);
                tracing::warn!(
                    address = %address,
                    server_name = %options.server_name,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    cause = %cause,
                    "connecting to Temporal failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
    };

    // Every refreshed token goes to the live connection (called at once with the current one).
    let hook_conn = connection.clone();
    options.tokens.on_refresh(Arc::new(move |t| {
        hook_conn.set_api_key(Some(t.expose_secret().to_owned()));
    }));
    // A revoked signing key: the manager fetches a new token, and the hook above applies it.
    if let Some(interval) = options.jwks_watch_interval {
        options
            .tokens
            .start_revocation_watch(interval)
            .map_err(|source| ConnectError::Token {
                address: address.clone(),
                source,
            })?;
    }

    let client = temporalio_client::Client::new(
        connection,
        ClientOptions::new(options.namespace.clone()).build(),
    )
    .map_err(|e| config_err(format!("client: {}", chain(&e))))?;
    tracing::info!(
        address = %address,
        server_name = %options.server_name,
        namespace = %options.namespace,
        certificate = %cert.fingerprint(),
        "connected to Temporal"
    );
    Ok(Client::new(
        client,
        options.namespace,
        options.client_identity,
        options.tokens,
        cert,
        watcher,
    ))
}

/// A one-line cause for a failed connection, with a hint for the common cases.
fn describe_connect_error(e: &temporalio_client::errors::ClientConnectError) -> String {
    use temporalio_client::errors::ClientConnectError as E;
    match e {
        E::SystemInfoCallError(status) => {
            let hint = match status.code() {
                tonic_code::Unauthenticated | tonic_code::PermissionDenied => {
                    " (the bearer token was refused: check the client's permissions)"
                }
                tonic_code::Unavailable => " (server unreachable or TLS handshake refused)",
                _ => "",
            };
            format!("{:?}: {}{hint}", status.code(), status.message())
        }
        other => chain(other),
    }
}

use temporalio_client::tonic::Code as tonic_code;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn jwks_watch_interval_setting() {
        let d = bulwark_token_client::DEFAULT_JWKS_WATCH_INTERVAL;
        assert_eq!(parse_jwks_watch_interval(""), Ok(Some(d)));
        assert_eq!(
            parse_jwks_watch_interval("30s"),
            Ok(Some(Duration::from_secs(30)))
        );
        assert_eq!(parse_jwks_watch_interval("0"), Ok(None));
        assert_eq!(parse_jwks_watch_interval("off"), Ok(None));
        assert_eq!(parse_jwks_watch_interval("0s"), Ok(None));
        let e = parse_jwks_watch_interval("soon").unwrap_err();
        assert!(e.contains(JWKS_WATCH_INTERVAL_ENV), "{e}");
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let r = ConnectRetry {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_attempts: None,
        };
        for _ in 0..50 {
            let d1 = r.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = r.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d30 = r.delay(30);
            assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_secs(1));
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| r.delay(5)).collect();
        assert!(distinct.len() > 1, "delays are jittered");
    }

    #[test]
    fn identity_load_names_the_missing_file() {
        let e = Identity::in_certs_dir(Path::new("/nonexistent"), "api")
            .load()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/client-api.crt"), "{e}");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            target_url("127.0.0.1:7233").unwrap().as_str(),
            "http://127.0.0.1:7233/"
        );
        assert_eq!(
            target_url("https://temporal:7233").unwrap().as_str(),
            "http://temporal:7233/"
        );
        assert!(target_url("temporal").is_err());
        assert!(target_url("ftp://x:1").is_err());
        assert!(target_url("::::").is_err());
    }
}
