//! The command-line and environment form of a token client (feature `clap`).
//!
//! `bulwark-api` and `bulwark-worker` both flatten [`TokenClientArgs`]: the same variables
//! name bulwark-control and the deployment secret store for either.

use std::path::PathBuf;

use crate::{TokenManager, TokenManagerBuilder};

/// Where tokens come from and where the client's own credentials are kept.
#[derive(clap::Args, Debug, Clone)]
pub struct TokenClientArgs {
    /// bulwark-control's base URL; tokens come from `<url>/oauth/token`.
    #[arg(
        long,
        env = "BULWARK_CONTROL_URL",
        default_value = "https://127.0.0.1:8443"
    )]
    pub control_url: String,
    /// The deployment secret store (a JSON file) holding `<identity>_client_id` /
    /// `<identity>_client_secret`.
    #[arg(long, env = "BULWARK_DEPLOYMENT_SECRETS")]
    pub deployment_secrets: Option<PathBuf>,
}

impl TokenClientArgs {
    /// control's token endpoint, `<control-url>/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.control_url.trim_end_matches('/'))
    }

    /// A token manager for `app` at [`Self::token_url`], trusting the CA bundle `ca_file`.
    /// The credential store is the caller's to add: the deployment secret store's format
    /// belongs to `bulwark-secrets`, which this crate does not depend on.
    pub fn builder(
        &self,
        app: impl Into<String>,
        ca_file: impl Into<PathBuf>,
    ) -> TokenManagerBuilder {
        TokenManager::builder(self.token_url(), app).ca_bundle_file(ca_file)
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
        t: TokenClientArgs,
    }

    /// Operators' env files, scripts/up.sh and the compose files set these variables.
    #[test]
    fn flags_env_names_and_defaults() {
        let cmd = Cli::command();
        let got: Vec<_> = cmd
            .get_arguments()
            .map(|a| {
                (
                    a.get_long().unwrap().to_owned(),
                    a.get_env().unwrap().to_str().unwrap().to_owned(),
                    a.get_default_values()
                        .first()
                        .map(|d| d.to_str().unwrap().to_owned()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "control-url".to_owned(),
                    "BULWARK_CONTROL_URL".to_owned(),
                    Some("https://127.0.0.1:8443".to_owned())
                ),
                (
                    "deployment-secrets".to_owned(),
                    "BULWARK_DEPLOYMENT_SECRETS".to_owned(),
                    None
                ),
            ]
        );
        let t = Cli::parse_from(["x"]).t;
        assert_eq!(t.token_url(), "https://127.0.0.1:8443/oauth/token");
        assert_eq!(t.deployment_secrets, None);
    }

    #[test]
    fn token_url_tolerates_a_trailing_slash() {
        let t = Cli::parse_from(["x", "--control-url", "https://control:8443/"]).t;
        assert_eq!(t.token_url(), "https://control:8443/oauth/token");
    }

    #[test]
    fn builder_wires_the_token_url_and_the_ca_file() {
        let t = Cli::parse_from(["x"]).t;
        // The CA file is read at build time: its error proves it was handed over.
        let e = t
            .builder("worker", "/nonexistent/bulwark-ca.crt")
            .build()
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/bulwark-ca.crt"), "{e}");
        // The URL is checked before the CA: plain HTTP is refused, so the URL got there too.
        let plain = Cli::parse_from(["x", "--control-url", "http://control:8443"]).t;
        let e = plain
            .builder("worker", "/nonexistent/bulwark-ca.crt")
            .build()
            .err()
            .unwrap();
        assert!(e.to_string().contains("https"), "{e}");
    }
}
