//! Private key material: algorithm choice and a PEM wrapper that never prints itself.

use std::{fmt, str::FromStr};

use bulwark_secret::Secret;

use crate::error::Error;

/// Key algorithm for certificate keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    #[default]
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlgorithm {
    pub(crate) fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }

    pub(crate) fn generate(self) -> Result<rcgen::KeyPair, Error> {
        rcgen::KeyPair::generate_for(self.rcgen()).map_err(|e| Error::Generate {
            what: format!("{self} key"),
            reason: e.to_string(),
        })
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa-p256" | "p256" | "p-256" => Ok(KeyAlgorithm::EcdsaP256),
            "ecdsa-p384" | "p384" | "p-384" => Ok(KeyAlgorithm::EcdsaP384),
            _ => Err(Error::InvalidInput {
                what: "key algorithm",
                value: s.to_owned(),
                reason: "expected ecdsa-p256 or ecdsa-p384",
            }),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
        })
    }
}

/// A PEM-encoded private key. Zeroized on drop (the buffer is the workspace's one
/// [`Secret`] type); `Debug` shows `"..."`.
#[derive(Clone)]
pub struct PrivateKeyPem(Secret);

impl PrivateKeyPem {
    pub fn new(pem: String) -> Self {
        PrivateKeyPem(Secret::new(pem))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(\"...\")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_debug_is_redacted() {
        let k = PrivateKeyPem::new("-----BEGIN PRIVATE KEY-----SECRET".into());
        assert_eq!(format!("{k:?}"), "PrivateKeyPem(\"...\")");
        assert!(
            k.expose().ends_with("SECRET"),
            "the value is kept for the point of use"
        );
    }

    #[test]
    fn algorithms_parse() {
        assert_eq!(
            "ECDSA-P384".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::EcdsaP384
        );
        assert!("rsa-512".parse::<KeyAlgorithm>().is_err());
    }
}
