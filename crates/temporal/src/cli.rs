//! The command-line and environment form of a Temporal connection (feature `clap`).
//!
//! `bulwark-api` and `bulwark-worker` both flatten [`TemporalArgs`], so an env file that
//! points one of them at Temporal points the other at the same frontend, server name and
//! namespace.

use std::{path::Path, time::Duration};

use bulwark_token_client::TokenManager;

use crate::{ConnectOptions, connect::parse_jwks_watch_interval};

/// Where and how to reach Temporal. The certs directory and the client identity are not
/// here: every binary uses the directory for more than Temporal, and names its identity
/// its own way.
#[derive(clap::Args, Debug, Clone)]
pub struct TemporalArgs {
    /// Temporal frontend address (host:port).
    #[arg(
        long,
        env = "BULWARK_TEMPORAL_ADDRESS",
        default_value = "127.0.0.1:7233"
    )]
    pub temporal_address: String,
    /// Name on Temporal's server certificate.
    #[arg(long, env = "BULWARK_TEMPORAL_SERVER_NAME", default_value = "temporal")]
    pub temporal_server_name: String,
    /// Temporal namespace the client works in.
    #[arg(long, env = "BULWARK_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// How often control's JWKS is checked for the revocation of our token's signing key
    /// (then a new token is fetched at once); 0 or `off` disables the check.
    #[arg(long, env = crate::connect::JWKS_WATCH_INTERVAL_ENV, default_value = "10s", value_parser = jwks_watch_interval)]
    pub jwks_watch_interval: JwksWatchInterval,
}

/// A parsed `--jwks-watch-interval`: `None` when the watch is off. A newtype so clap does
/// not take the `Option` for "flag may be absent".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksWatchInterval(pub Option<Duration>);

fn jwks_watch_interval(s: &str) -> Result<JwksWatchInterval, String> {
    parse_jwks_watch_interval(s).map(JwksWatchInterval)
}

impl TemporalArgs {
    /// [`ConnectOptions::new`] for `identity`'s client certificate in `certs_dir`, with this
    /// address, server name, namespace and JWKS watch.
    pub fn connect_options(
        &self,
        certs_dir: &Path,
        identity: &str,
        tokens: TokenManager,
    ) -> ConnectOptions {
        let mut o = ConnectOptions::new(
            &self.temporal_address,
            &self.temporal_server_name,
            certs_dir,
            identity,
            &self.namespace,
            tokens,
        );
        o.jwks_watch_interval = self.jwks_watch_interval.0;
        o
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        t: TemporalArgs,
    }

    /// Operators' env files and the compose files set these; a rename breaks deployments.
    #[test]
    fn flags_env_names_and_defaults() {
        let cmd = Cli::command();
        let want = [
            (
                "temporal-address",
                "BULWARK_TEMPORAL_ADDRESS",
                "127.0.0.1:7233",
            ),
            (
                "temporal-server-name",
                "BULWARK_TEMPORAL_SERVER_NAME",
                "temporal",
            ),
            ("namespace", "BULWARK_NAMESPACE", "default"),
            ("jwks-watch-interval", "BULWARK_JWKS_WATCH_INTERVAL", "10s"),
        ];
        let got: Vec<_> = cmd
            .get_arguments()
            .map(|a| {
                (
                    a.get_long().unwrap().to_owned(),
                    a.get_env().unwrap().to_str().unwrap().to_owned(),
                    a.get_default_values()[0].to_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<_> = want
            .iter()
            .map(|(l, e, d)| ((*l).to_owned(), (*e).to_owned(), (*d).to_owned()))
            .collect();
        assert_eq!(got, want);

        let t = Cli::parse_from(["x"]).t;
        assert_eq!(
            t.jwks_watch_interval.0,
            Some(bulwark_token_client::DEFAULT_JWKS_WATCH_INTERVAL)
        );
    }

    #[test]
    fn jwks_watch_can_be_turned_off_and_refuses_nonsense() {
        let t = Cli::parse_from(["x", "--jwks-watch-interval", "off"]).t;
        assert_eq!(t.jwks_watch_interval, JwksWatchInterval(None));
        let t = Cli::parse_from(["x", "--jwks-watch-interval", "30s"]).t;
        assert_eq!(
            t.jwks_watch_interval.0,
            Some(std::time::Duration::from_secs(30))
        );
        let e = Cli::try_parse_from(["x", "--jwks-watch-interval", "soon"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("BULWARK_JWKS_WATCH_INTERVAL"), "{e}");
    }

    #[test]
    fn connect_options_carry_the_flags() {
        let tokens = TokenManager::builder("https://control.invalid/oauth/token", "api")
            .build()
            .unwrap();
        let t = Cli::parse_from([
            "x",
            "--temporal-address",
            "temporal:7233",
            "--temporal-server-name",
            "frontend",
            "--namespace",
            "prod",
            "--jwks-watch-interval",
            "0",
        ])
        .t;
        let o = t.connect_options(Path::new("/certs"), "worker", tokens);
        assert_eq!(o.address, "temporal:7233");
        assert_eq!(o.server_name, "frontend");
        assert_eq!(o.namespace, "prod");
        assert_eq!(o.ca_file, Path::new("/certs/ca.crt"));
        assert_eq!(o.jwks_watch_interval, None);
        // `connect` loads the identity itself unless the caller shares its holder.
        assert!(o.certificate.is_none());
        assert!(o.client_identity.starts_with("bulwark-worker@"));
    }
}
