//! The command-line and environment form of [`Settings`] (feature `clap`).
//!
//! `bulwark-init` issues the identity material and `bulwark-control` re-issues it on
//! rotation; both flatten [`PkiArgs`] so they read the same variables with the same
//! defaults. Two copies once drifted apart in review, and a drift shows up as every
//! rotation reporting "configuration changed".

use std::path::PathBuf;

use crate::{
    Settings,
    jwt::JwtAlgorithm,
    keys::KeyAlgorithm,
    names::{Identity, Namespace, San},
};

/// A `humantime` duration (`30d`, `24h`, `15m`) as a [`time::Duration`].
pub fn duration(s: &str) -> Result<time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30d, 24h, 15m)"))?;
    time::Duration::try_from(d).map_err(|e| e.to_string())
}

/// PKI settings shared by every issuer. The JWT issuer and the CLI profiles' Temporal
/// address are not here: each binary knows them under its own name.
#[derive(clap::Args, Debug, Clone)]
pub struct PkiArgs {
    /// Root CA lifetime.
    #[arg(long, env = "BULWARK_CA_LIFETIME", default_value = "3650d", value_parser = duration)]
    pub ca_lifetime: time::Duration,
    /// Issuing (intermediate) CA lifetime.
    #[arg(long, env = "BULWARK_INTERMEDIATE_LIFETIME", default_value = "1825d", value_parser = duration)]
    pub intermediate_lifetime: time::Duration,
    /// Leaf certificate lifetime.
    #[arg(long, env = "BULWARK_LEAF_LIFETIME", default_value = "30d", value_parser = duration)]
    pub leaf_lifetime: time::Duration,
    /// JWT signing key lifetime before it is rotated.
    #[arg(long, env = "BULWARK_JWT_KEY_LIFETIME", default_value = "90d", value_parser = duration)]
    pub jwt_key_lifetime: time::Duration,
    /// Static token lifetime.
    #[arg(long, env = "BULWARK_TOKEN_TTL", default_value = "24h", value_parser = duration)]
    pub token_ttl: time::Duration,
    /// Fraction of a lifetime after which an item is renewed.
    #[arg(long, env = "BULWARK_RENEW_AT", default_value_t = 2.0 / 3.0)]
    pub renew_at: f64,
    /// Certificate key algorithm: ecdsa-p256 or ecdsa-p384.
    #[arg(long, env = "BULWARK_KEY_ALGORITHM", default_value = "ecdsa-p256")]
    pub key_algorithm: KeyAlgorithm,
    /// JWT signing algorithm: ES256 or RS256.
    #[arg(long, env = "BULWARK_JWT_ALGORITHM", default_value = "ES256")]
    pub jwt_algorithm: JwtAlgorithm,
    /// Temporal frontend certificate SANs (DNS names or IPs).
    #[arg(
        long = "server-san",
        env = "BULWARK_SERVER_SANS",
        value_delimiter = ',',
        default_value = "temporal,temporal-server,localhost,127.0.0.1"
    )]
    pub server_sans: Vec<San>,
    /// Temporal internode certificate SANs.
    #[arg(
        long = "internode-san",
        env = "BULWARK_INTERNODE_SANS",
        value_delimiter = ',',
        default_value = "temporal-internode,localhost,127.0.0.1"
    )]
    pub internode_sans: Vec<San>,
    /// bulwark-control HTTPS certificate SANs.
    #[arg(
        long = "control-san",
        env = "BULWARK_CONTROL_SANS",
        value_delimiter = ',',
        default_value = "bulwark-control,localhost,127.0.0.1"
    )]
    pub control_sans: Vec<San>,
    /// bulwark-api HTTPS certificate SANs.
    #[arg(
        long = "api-san",
        env = "BULWARK_API_SANS",
        value_delimiter = ',',
        default_value = "bulwark-api,localhost,127.0.0.1"
    )]
    pub api_sans: Vec<San>,
    /// Client identities that get their own certificate.
    #[arg(
        long = "identity",
        env = "BULWARK_IDENTITIES",
        value_delimiter = ',',
        default_value = "api,worker,control,admin,ui"
    )]
    pub identities: Vec<Identity>,
    /// Temporal namespaces the worker and client tokens grant.
    #[arg(
        long = "namespace",
        env = "BULWARK_NAMESPACES",
        value_delimiter = ',',
        default_value = "default"
    )]
    pub namespaces: Vec<Namespace>,
    /// `aud` claim of minted tokens; Temporal's `authorization.audience` must match.
    #[arg(long, env = "BULWARK_JWT_AUDIENCE", default_value = "temporal")]
    pub audience: String,
    /// Trust domain in client certificate URI SANs (spiffe://<domain>/client/<identity>).
    #[arg(long, env = "BULWARK_TRUST_DOMAIN", default_value = "bulwark.local")]
    pub trust_domain: String,
    /// Name clients verify the frontend certificate against.
    #[arg(long, env = "BULWARK_TEMPORAL_SERVER_NAME", default_value = "temporal")]
    pub temporal_server_name: String,
    /// Absolute path under which the Temporal CLI sees the certs directory, written into the
    /// profiles of temporal.toml (default: the directory itself).
    #[arg(long, env = "BULWARK_CLI_CERTS_DIR")]
    pub cli_certs_dir: Option<PathBuf>,
}

impl PkiArgs {
    /// The settings, with `issuer` and the CLI profiles' Temporal address, validated.
    pub fn into_settings(
        self,
        issuer: String,
        cli_temporal_address: Option<String>,
    ) -> crate::Result<Settings> {
        let mut s = Settings::default();
        s.ca_lifetime = self.ca_lifetime;
        s.intermediate_lifetime = self.intermediate_lifetime;
        s.leaf_lifetime = self.leaf_lifetime;
        s.jwt_key_lifetime = self.jwt_key_lifetime;
        s.token_ttl = self.token_ttl;
        s.key_algorithm = self.key_algorithm;
        s.jwt_algorithm = self.jwt_algorithm;
        s.server_sans = dedup(self.server_sans);
        s.internode_sans = dedup(self.internode_sans);
        s.control_sans = dedup(self.control_sans);
        s.api_sans = dedup(self.api_sans);
        s.identities = dedup(self.identities);
        s.namespaces = dedup(self.namespaces);
        s.issuer = issuer;
        s.audience = self.audience;
        s.trust_domain = self.trust_domain;
        if let Some(a) = cli_temporal_address {
            s.temporal_address = a;
        }
        s.temporal_server_name = self.temporal_server_name;
        s.cli_certs_dir = self.cli_certs_dir;
        s.set_renew_fraction(self.renew_at)?;
        s.validate()?;
        Ok(s)
    }
}

fn dedup<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        pki: PkiArgs,
    }

    #[test]
    fn defaults_are_the_library_defaults() {
        let s = Cli::parse_from(["x"])
            .pki
            .into_settings("bulwark".into(), None)
            .unwrap();
        let mut d = Settings::default();
        for v in [
            &mut d.server_sans,
            &mut d.internode_sans,
            &mut d.control_sans,
            &mut d.api_sans,
        ] {
            v.sort();
        }
        d.identities.sort();
        d.namespaces.sort();
        assert_eq!(format!("{s:?}"), format!("{d:?}"));
    }

    #[test]
    fn a_relative_cli_certs_dir_is_refused() {
        let e = Cli::parse_from(["x", "--cli-certs-dir", "certs"])
            .pki
            .into_settings("bulwark".into(), None)
            .unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }
}
