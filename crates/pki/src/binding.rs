//! Certificate-bound tokens: the `cnf` claim of RFC 7800 carrying the certificate
//! thumbprint of RFC 8705 (`x5t#S256`), plus the leaf's URI SAN.
//!
//! A bound token is only worth something next to the certificate it names: bulwark-gate
//! compares the caller's TLS leaf with `cnf` (by default the URI SAN, which survives a
//! certificate renewal; optionally the thumbprint). The thumbprint is SHA-256 over the DER
//! of the leaf alone, base64url without padding, exactly as RFC 8705 section 3.1 defines it
//! (`openssl x509 -outform der | openssl dgst -sha256 -binary | basenc --base64url`, minus `=`).

use base64::Engine;
use serde::{Deserialize, Serialize};

/// The `cnf` claim: which client certificate the token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// [`thumbprint_s256`] of the leaf the token was issued for.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
    /// The leaf's first URI SAN (its identity, `spiffe://<trust domain>/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// Why a certificate cannot be the anchor of a bound token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    NotACertificate(String),
    /// The certificate has no URI SAN, so there is no identity to bind to (every Bulwark
    /// client certificate has one; a certificate without one was not issued for a client).
    #[error("the certificate has no URI subject alternative name to bind a token to")]
    NoUriSan,
}

/// RFC 8705 `x5t#S256`: SHA-256 over the DER certificate, base64url without padding.
pub fn thumbprint_s256(der: &[u8]) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

/// The first URI SAN of a DER certificate, or `None` if it has none or does not parse.
pub fn uri_san(der: &[u8]) -> Option<String> {
    parse_uri_san(der).ok().flatten()
}

fn parse_uri_san(der: &[u8]) -> Result<Option<String>, BindingError> {
    use x509_parser::prelude::*;
    let (_, x) =
        X509Certificate::from_der(der).map_err(|e| BindingError::NotACertificate(e.to_string()))?;
    let san = x
        .subject_alternative_name()
        .map_err(|e| BindingError::NotACertificate(e.to_string()))?;
    Ok(san.and_then(|ext| {
        ext.value.general_names.iter().find_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
    }))
}

impl Confirmation {
    /// The confirmation for a token issued to the holder of `der` (the client's leaf).
    /// [`BindingError::NotACertificate`] for bytes that are not a certificate,
    /// [`BindingError::NoUriSan`] for a certificate without an identity.
    pub fn for_certificate(der: &[u8]) -> Result<Confirmation, BindingError> {
        let uri = parse_uri_san(der)?.ok_or(BindingError::NoUriSan)?;
        Ok(Confirmation {
            x5t_s256: thumbprint_s256(der),
            uri: Some(uri),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_is_unpadded_base64url_sha256() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1, in base64url.
        assert_eq!(
            thumbprint_s256(b"abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn not_a_certificate() {
        assert_eq!(uri_san(b"nope"), None);
        assert!(matches!(
            Confirmation::for_certificate(b"nope"),
            Err(BindingError::NotACertificate(_))
        ));
    }

    #[test]
    fn serde_shape_and_old_form() {
        let c = Confirmation {
            x5t_s256: "abc".into(),
            uri: None,
        };
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"x5t#S256":"abc"}"#);
        let back: Confirmation =
            serde_json::from_str(r#"{"x5t#S256":"abc","uri":"spiffe://x/y"}"#).unwrap();
        assert_eq!(back.uri.as_deref(), Some("spiffe://x/y"));
    }
}
