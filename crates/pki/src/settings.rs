//! Everything `generate` can be told: lifetimes, algorithms, names.

use time::Duration;

use crate::{
    error::Error,
    jwt::JwtAlgorithm,
    keys::KeyAlgorithm,
    names::{Identity, Namespace, San},
};

/// The identities that get a client certificate by default.
pub const DEFAULT_IDENTITIES: [&str; 5] = ["api", "worker", "control", "admin", "ui"];

/// Inputs to [`crate::generate`]. Build with [`Settings::default`] and override fields.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ca_lifetime: Duration,
    pub intermediate_lifetime: Duration,
    pub leaf_lifetime: Duration,
    pub jwt_key_lifetime: Duration,
    /// Static token lifetime.
    pub token_ttl: Duration,
    /// Lifetime of the access tokens bulwark-control's token endpoint mints with the same
    /// signing key. A retired key stays published until the longer of the two has passed
    /// ([`crate::rotate::jwt::retire_after`]).
    pub access_token_ttl: Duration,
    renew_fraction: f64,
    pub key_algorithm: KeyAlgorithm,
    pub jwt_algorithm: JwtAlgorithm,
    pub server_sans: Vec<San>,
    pub internode_sans: Vec<San>,
    /// SANs of bulwark-control's HTTPS certificate.
    pub control_sans: Vec<San>,
    /// SANs of bulwark-api's HTTPS certificate.
    pub api_sans: Vec<San>,
    pub identities: Vec<Identity>,
    pub namespaces: Vec<Namespace>,
    pub issuer: String,
    pub audience: String,
    /// Authority part of the `spiffe://` URI SAN in client certificates.
    pub trust_domain: String,
    /// Written into the Temporal CLI profiles.
    pub temporal_address: String,
    /// Where the Temporal CLI will find the certs directory, written into its profiles;
    /// `None` means where it is being written. Set it when the CLI runs elsewhere (the host
    /// of a compose stack sees the certs volume under another path).
    pub cli_certs_dir: Option<std::path::PathBuf>,
    pub temporal_server_name: String,
}

fn parse_all<T: std::str::FromStr<Err = Error>>(items: &[&str]) -> Vec<T> {
    // Only used with the compile-time defaults below, which are valid.
    items.iter().filter_map(|s| s.parse().ok()).collect()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ca_lifetime: Duration::days(3650),
            intermediate_lifetime: Duration::days(1825),
            leaf_lifetime: Duration::days(30),
            jwt_key_lifetime: Duration::days(90),
            token_ttl: Duration::hours(24),
            access_token_ttl: Duration::minutes(15),
            renew_fraction: 2.0 / 3.0,
            key_algorithm: KeyAlgorithm::default(),
            jwt_algorithm: JwtAlgorithm::default(),
            server_sans: parse_all(&["temporal", "temporal-server", "localhost", "127.0.0.1"]),
            internode_sans: parse_all(&["temporal-internode", "localhost", "127.0.0.1"]),
            control_sans: parse_all(&["bulwark-control", "localhost", "127.0.0.1"]),
            api_sans: parse_all(&["bulwark-api", "localhost", "127.0.0.1"]),
            identities: parse_all(&DEFAULT_IDENTITIES),
            namespaces: parse_all(&["default"]),
            issuer: "bulwark".into(),
            audience: "temporal".into(),
            trust_domain: "bulwark.local".into(),
            temporal_address: "localhost:7233".into(),
            cli_certs_dir: None,
            temporal_server_name: "temporal".into(),
        }
    }
}

impl Settings {
    pub fn renew_fraction(&self) -> f64 {
        self.renew_fraction
    }

    /// Set the point in a lifetime (0 < f < 1) after which an item is renewed.
    pub fn set_renew_fraction(&mut self, f: f64) -> Result<(), Error> {
        if f > 0.0 && f < 1.0 {
            self.renew_fraction = f;
            Ok(())
        } else {
            Err(Error::InvalidInput {
                what: "renewal fraction",
                value: f.to_string(),
                reason: "must be strictly between 0 and 1",
            })
        }
    }

    /// Reject combinations that would produce unusable material.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = |what, d: Duration| {
            if d.is_positive() {
                Ok(())
            } else {
                Err(Error::InvalidInput {
                    what,
                    value: d.to_string(),
                    reason: "must be positive",
                })
            }
        };
        if let Some(d) = self.cli_certs_dir.as_ref().filter(|d| !d.is_absolute()) {
            // The CLI would resolve it against whatever directory it is started in.
            return Err(Error::InvalidInput {
                what: "CLI certs directory",
                value: d.display().to_string(),
                reason: "must be an absolute path",
            });
        }
        positive("CA lifetime", self.ca_lifetime)?;
        positive("intermediate lifetime", self.intermediate_lifetime)?;
        positive("leaf lifetime", self.leaf_lifetime)?;
        positive("JWT key lifetime", self.jwt_key_lifetime)?;
        positive("token TTL", self.token_ttl)?;
        positive("access token TTL", self.access_token_ttl)?;
        if self.leaf_lifetime > self.intermediate_lifetime
            || self.intermediate_lifetime > self.ca_lifetime
        {
            return Err(Error::InvalidInput {
                what: "lifetimes",
                value: format!(
                    "ca={} intermediate={} leaf={}",
                    self.ca_lifetime, self.intermediate_lifetime, self.leaf_lifetime
                ),
                reason: "a certificate cannot outlive its issuer",
            });
        }
        for (what, list) in [
            ("server SANs", self.server_sans.is_empty()),
            ("internode SANs", self.internode_sans.is_empty()),
            ("control SANs", self.control_sans.is_empty()),
            ("api SANs", self.api_sans.is_empty()),
            ("namespaces", self.namespaces.is_empty()),
        ] {
            if list {
                return Err(Error::InvalidInput {
                    what,
                    value: String::new(),
                    reason: "at least one is required",
                });
            }
        }
        if self.trust_domain.is_empty()
            || !self
                .trust_domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        {
            return Err(Error::InvalidInput {
                what: "trust domain",
                value: self.trust_domain.clone(),
                reason: "use letters, digits, '-' and '.'",
            });
        }
        Ok(())
    }
}
