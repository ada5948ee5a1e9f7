//! Validated names: subject alternative names, Temporal namespaces and client identities.
//!
//! Each type can only be built by parsing, so code that holds one never re-checks it.

use std::{fmt, net::IpAddr, str::FromStr};

use crate::error::Error;

/// A subject alternative name for a server certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl FromStr for San {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let invalid = |reason| Error::InvalidInput {
            what: "subject alternative name",
            value: s.to_owned(),
            reason,
        };
        if s.starts_with("*.") {
            return Err(invalid("wildcard names are not issued"));
        }
        // A string that looks numeric but failed to parse as an IP is a typo, not a host name.
        if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(invalid("neither a valid IP address nor a DNS name"));
        }
        rustls_pki_types::DnsName::try_from(s)
            .map_err(|_| invalid("not a valid DNS name or IP address"))?;
        Ok(San::Dns(s.to_ascii_lowercase()))
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(d) => f.write_str(d),
            San::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A Temporal namespace name usable in a `<namespace>:<role>` permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace(String);

impl Namespace {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Namespace {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| Error::InvalidInput {
            what: "namespace",
            value: s.to_owned(),
            reason,
        };
        if s.is_empty() || s.len() > 255 {
            return Err(invalid("must be 1 to 255 characters"));
        }
        // `:` separates namespace from role in a permission, so it can never be allowed here;
        // `temporal-system` is the cluster itself and is granted only through the system token.
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(
                "only letters, digits, '-', '_' and '.' are allowed",
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(invalid("must start with a letter or digit"));
        }
        if s == "temporal-system" {
            return Err(invalid("temporal-system is reserved for the cluster"));
        }
        Ok(Namespace(s.to_owned()))
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a client identity (`api`, `worker`, ...), used in file names, the certificate
/// CN and its URI SAN, so it is restricted to a conservative alphabet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity(String);

impl Identity {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Identity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Identity(s.to_owned()))
        } else {
            Err(Error::InvalidInput {
                what: "identity",
                value: s.to_owned(),
                reason: "use 1-63 lowercase letters, digits or '-', starting with a letter",
            })
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_parse() {
        assert_eq!(
            "127.0.0.1".parse::<San>().unwrap(),
            San::Ip([127, 0, 0, 1].into())
        );
        assert_eq!(
            "Temporal".parse::<San>().unwrap(),
            San::Dns("temporal".into())
        );
        assert!("::1".parse::<San>().is_ok());
        for bad in ["", "bad name", "*.example.com", "300.1.1.1", "a..b", "-x-"] {
            assert!(bad.parse::<San>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn namespaces_parse() {
        assert!("default".parse::<Namespace>().is_ok());
        assert!("team-a.prod".parse::<Namespace>().is_ok());
        for bad in ["", "a:b", "temporal-system", "-x", "with space", "ns/1"] {
            let err = bad.parse::<Namespace>().unwrap_err().to_string();
            assert!(err.contains("namespace"), "{err}");
        }
    }

    #[test]
    fn identities_parse() {
        assert!("worker-2".parse::<Identity>().is_ok());
        for bad in ["", "API", "2x", "a_b", "../etc"] {
            assert!(bad.parse::<Identity>().is_err(), "{bad} accepted");
        }
    }
}
