//! [`Secret`]: a string that never prints itself.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// What every redacting formatter and serializer in this crate prints instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A secret string.
///
/// * `Debug`, `Display` and serde `Serialize` print [`REDACTED`], never the value, so a
///   `Secret` (or any struct holding one) is safe to log, to format into an error and to
///   serialize for structured logs. Serializing is therefore *lossy* on purpose: it is for
///   logs, not for storage.
/// * The buffer is zeroized when the `Secret` is dropped (best effort: copies that the
///   allocator, a parser or the network stack made before the value was wrapped are out of
///   reach).
/// * The only way to read the value is the explicitly named [`Secret::expose`].
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value. The `String` is moved, not copied.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// Reads the secret value. Call this only at the point of use (building an HTTP
    /// header, a TLS config, a database URL); never to log or format.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.as_str()
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

    /// True for the empty string.
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
