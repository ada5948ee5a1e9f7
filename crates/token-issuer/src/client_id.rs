//! A registered OAuth client id, parsed once at the edge: 1-63 lowercase ASCII letters,
//! digits, `_` or `-`, starting with a letter. Anything holding a [`ClientId`] can rely on
//! that shape, so a key built from one is at most 63 bytes and safe to log or label with.

use std::{fmt, str::FromStr};

use crate::Error;

/// The longest client id that can be registered (and so the longest one worth looking up).
pub const MAX_CLIENT_ID_LEN: usize = 63;

/// A syntactically valid client id. It says nothing about whether the client exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// `None` unless `s` has the registered-id shape. The length is checked first, so an
    /// oversized input is refused without being scanned or copied.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= MAX_CLIENT_ID_LEN
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
        ok.then(|| ClientId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClientId {
    type Err = Error;

    /// For operator input (init, the admin page): the error names the id, which an
    /// operator typed. Request handling uses [`ClientId::parse`], which copies nothing.
    fn from_str(s: &str) -> Result<Self, Error> {
        ClientId::parse(s).ok_or_else(|| Error::InvalidClientId(s.to_owned()))
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_registered_shape() {
        for ok in [
            "worker",
            "api",
            "a",
            "bulwark-api",
            "app_2",
            &"a".repeat(63),
        ] {
            assert_eq!(
                ClientId::parse(ok).map(|c| c.to_string()).as_deref(),
                Some(ok)
            );
        }
        for bad in [
            "",
            "Worker",
            "2worker",
            "-worker",
            "_worker",
            "work er",
            "worker\n",
            "wörker",
            "worker%00",
            "worker:x",
            &"a".repeat(64),
            &"a".repeat(60_000),
        ] {
            assert!(ClientId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(matches!(
            "Bad".parse::<ClientId>(),
            Err(Error::InvalidClientId(s)) if s == "Bad"
        ));
    }
}
