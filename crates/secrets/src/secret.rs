//! [`Secret`]: a string that never prints itself. The type lives in `bulwark-secret`, the
//! workspace's one secret-string crate; this module keeps `bulwark_secrets::Secret` and
//! `bulwark_secrets::REDACTED` the paths callers already use.

pub use bulwark_secret::{REDACTED, Secret};
