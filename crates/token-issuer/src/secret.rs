//! Client secrets: generated, shown once, stored only as a hash.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bulwark_secret::Secret;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A client secret in the clear. Exists only between generation and hand-over, or while a
/// request is being authenticated. `Debug` prints `"..."`; the zeroizing buffer is the
/// workspace's one [`Secret`] type, this wrapper adds generation and hashing.
#[derive(Clone)]
pub struct ClientSecret(Secret);

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(\"...\")")
    }
}

impl ClientSecret {
    /// 256 random bits, base64url. High entropy is what makes a fast hash (SHA-256) safe
    /// here; argon2 is for human-chosen passwords.
    pub fn generate() -> Result<Self, crate::Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| crate::Error::Random)?;
        Ok(ClientSecret(Secret::new(
            URL_SAFE_NO_PAD.encode(&bytes[..]),
        )))
    }

    pub fn from_presented(s: &str) -> Self {
        ClientSecret(Secret::new(s))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0.expose().as_bytes()).into())
    }
}

/// SHA-256 of a client secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(SecretHash)
    }

    /// Constant-time comparison, so timing does not reveal how much of a guess was right.
    pub fn matches(&self, presented: &ClientSecret) -> bool {
        presented.hash().0.ct_eq(&self.0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_distinct_and_verify() {
        let a = ClientSecret::generate().unwrap();
        let b = ClientSecret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        assert!(a.hash().matches(&a));
        assert!(!a.hash().matches(&b));
        assert_eq!(format!("{a:?}"), "ClientSecret(\"...\")");
    }
}
