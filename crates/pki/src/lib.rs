//! Bulwark's identity material: a root CA with separate internode, client and server
//! issuing CAs, leaf certificates, the JWT signing key and JWKS, scoped static tokens and the
//! inventory (`manifest.json`) that describes them.
//!
//! The certs directory is the unit of work: [`generate`] creates or renews it atomically,
//! [`verify::verify_dir`] checks it independently of how it was made, and
//! [`manifest::Manifest`] describes it.
#![forbid(unsafe_code)]

pub mod binding;
pub mod cert;
#[cfg(feature = "clap")]
pub mod cli;
pub mod error;
pub mod fs;
pub mod generate;
pub mod jwt;
pub mod keys;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod names;
pub mod rotate;
pub mod settings;
pub mod trust;
pub mod verify;

pub use error::{Error, Result, TokenError};
pub use generate::{
    Change, Mode, Report, Revocation, generate, generate_locked, revoke_jwt_key,
    revoke_jwt_key_locked,
};
pub use settings::Settings;

/// The one fingerprint of Bulwark's inventory: SHA-256 of the bytes (a certificate's DER, a
/// public key's PEM, a token, a bundle), lowercase hex. Every fingerprint shown, stored in
/// `manifest.json` or compared is computed here.
pub fn fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
