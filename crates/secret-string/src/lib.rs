//! [`Secret`]: the workspace's one string type that never prints itself.
//!
//! Every crate that holds a password, client secret, token or private key in the clear
//! either stores it as a [`Secret`] or wraps one (a domain type with extra meaning, such as
//! a client secret that can hash itself, keeps its own name and `Debug` but delegates the
//! zeroizing and the explicit read to the `Secret` inside). Keeping a single implementation
//! means a single place to review for redaction and wiping.
//!
//! ```
//! use bulwark_secret::{REDACTED, Secret};
//!
//! let s = Secret::new("hunter2");
//! assert_eq!(format!("{s:?} {s}"), format!("{REDACTED} {REDACTED}"));
//! assert_eq!(s.expose(), "hunter2");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// What every redacting formatter and serializer prints instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A secret string.
///
/// * `Debug`, `Display` and serde `Serialize` print [`REDACTED`], never the value, so a
///   `Secret` (or any struct holding one) is safe to log, to format into an error and to
///   serialize for structured logs. Serializing is therefore *lossy* on purpose: it is for
///   logs, not for storage.
/// * `Deserialize` reads a plain string, so configuration and secret-store documents can
///   hold a `Secret` field directly.
/// * The buffer is zeroized when the `Secret` is dropped (best effort: copies that the
///   allocator, a parser or the network stack made before the value was wrapped are out of
///   reach).
/// * The only way to read the value is the explicitly named [`Secret::expose`] (or its
///   older spelling [`Secret::expose_secret`]), so every read is easy to find in review.
/// * There is deliberately no `PartialEq`: comparing secrets belongs to the caller, who
///   knows whether it must be constant-time (compare hashes with `subtle`, as the token
///   issuer does).
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value. A `String` is moved, not copied.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// Reads the secret value. Call this only at the point of use (building an HTTP
    /// header, a TLS config, a database URL); never to log or format.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// The same as [`Secret::expose`]: the name the token client's callers were written
    /// against when this type was its `SecretString`.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.expose()
    }

    /// True when the value is empty or only whitespace; such values count as missing when
    /// a credential is parsed.
    #[must_use]
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// Length in bytes (safe to log: it tells nothing useful about a random secret, but
    /// avoid logging it for low-entropy values such as PINs).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string (callers treat it as "not configured").
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// Wipes the value now rather than at drop; the `Secret` is then empty.
impl Zeroize for Secret {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// The inner `Zeroizing` wipes the buffer when the `Secret` is dropped.
impl ZeroizeOnDrop for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use super::*;

    const PLANTED: &str = "PLANTED-7e1d-hunter2";

    #[derive(Debug, Serialize, Deserialize)]
    struct Login {
        user: String,
        password: Secret,
    }

    #[test]
    fn debug_display_and_serialize_are_redacted() {
        let s = Secret::new(PLANTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s:#?}"), REDACTED);
        assert_eq!(s.to_string(), REDACTED);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{REDACTED}\"")
        );
    }

    #[test]
    fn a_struct_holding_a_secret_is_redacted_in_debug_and_json() {
        let login = Login {
            user: "bot".into(),
            password: Secret::new(PLANTED),
        };
        let json = serde_json::to_string(&login).unwrap();
        assert_eq!(json, format!(r#"{{"user":"bot","password":"{REDACTED}"}}"#));
        let debug = format!("{login:?} {login:#?}");
        assert!(!debug.contains(PLANTED), "{debug}");
        assert!(debug.contains(REDACTED), "{debug}");
    }

    #[test]
    fn expose_returns_the_value_and_deserialize_keeps_it() {
        let s = Secret::from(PLANTED);
        assert_eq!(s.expose(), PLANTED);
        assert_eq!(s.expose_secret(), PLANTED);
        assert_eq!(s.len(), PLANTED.len());
        let login: Login =
            serde_json::from_str(&format!(r#"{{"user":"u","password":"{PLANTED}"}}"#)).unwrap();
        assert_eq!(login.password.expose(), PLANTED);
        // Round-tripping through Serialize is lossy on purpose.
        let back: Login = serde_json::from_str(&serde_json::to_string(&login).unwrap()).unwrap();
        assert_eq!(back.password.expose(), REDACTED);
    }

    #[test]
    fn clone_is_independent_and_zeroize_wipes() {
        fn wipes_on_drop<T: ZeroizeOnDrop>(_: &T) {}
        let mut s = Secret::new(String::from(PLANTED));
        wipes_on_drop(&s);
        let copy = s.clone();
        s.zeroize();
        assert_eq!(s.expose(), "");
        assert!(s.is_empty() && s.is_blank());
        assert_eq!(copy.expose(), PLANTED, "the clone owns its own buffer");
    }

    #[test]
    fn blank_and_empty() {
        assert!(Secret::default().is_empty());
        assert!(Secret::new(" \t\n").is_blank());
        assert!(!Secret::new(" \t\n").is_empty());
        assert!(!Secret::new("x").is_blank());
    }
}
