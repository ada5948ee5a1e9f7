//! A string that must not leak through logs, errors or `Debug` output: the workspace's one
//! secret-string type from `bulwark-secret`, under the name this crate has always used.

pub use bulwark_secret::Secret;

/// A secret value (client secret, access token): the same type as [`Secret`].
///
/// `Debug`, `Display` and `Serialize` print `[REDACTED]`, so the value only leaves it
/// through an explicit [`Secret::expose_secret`] (or [`Secret::expose`]) call that is easy
/// to find in review. The heap buffer is wiped on drop.
pub type SecretString = Secret;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(s.expose_secret(), "hunter2");
    }
}
