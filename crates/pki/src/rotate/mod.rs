//! Rotation verbs: the one home of every multi-step change to the certs directory.
//!
//! Modelled on SPIRE's CA rotator: each rotation is a small set of verbs that can be run
//! apart, with waits (propagation checks, an operator's go-ahead) between them, and a clock
//! injected so the time-dependent rules are tested without waiting.
//!
//! * [`jwt`]: the JWT signing key, `prepare` (publish the next key) / `activate` (switch) /
//!   `prune` (retire), plus the emergency `revoke`;
//! * [`ca`]: an issuing CA's trust overlap, `begin_overlap` / `end_overlap`;
//! * [`reissue`]: leaves, the static tokens and the renewal of whatever is due.
//!
//! Every verb takes a held [`DirLock`](crate::lock::DirLock): the caller holds the
//! cross-process lock for the whole multi-step change (e.g. a switch and the token re-issue
//! that must follow it). Verbs are synchronous; async callers run them on a blocking pool.
//! Each verb writes its files together ([`crate::fs::write_all`]), so a failure leaves the
//! previous material in service.

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::{
    error::{Error, Result},
    fs::{self as pfs, PUBLIC_MODE, PendingFile, SECRET_MODE},
    manifest::{MANIFEST_FILE, Manifest},
};

pub mod ca;
pub mod jwt;
pub mod reissue;

/// Where the verbs get the time from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The system's wall clock (UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told to. Clones share the same time, so a test can hand one
/// to the code under test and advance it from outside.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    pub fn new(now: OffsetDateTime) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    pub fn set(&self, now: OffsetDateTime) {
        // A panic while holding this lock cannot leave a torn timestamp: take it anyway.
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The manifest, strictly: a multi-step change must not rebuild the inventory from guesses
/// (that is `generate`'s job), so a missing or unreadable manifest is an error.
pub(crate) fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = pfs::read_optional(&path)?.ok_or_else(|| Error::Corrupt {
        path: path.clone(),
        reason: "missing; run `bulwark-init generate` first".into(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        path,
        reason: e.to_string(),
    })
}

pub(crate) fn secret_file(name: &str, contents: impl Into<Vec<u8>>) -> PendingFile {
    PendingFile {
        name: name.to_owned(),
        contents: Zeroizing::new(contents.into()),
        mode: SECRET_MODE,
    }
}

pub(crate) fn public_file(name: &str, contents: impl Into<Vec<u8>>) -> PendingFile {
    PendingFile {
        name: name.to_owned(),
        contents: Zeroizing::new(contents.into()),
        mode: PUBLIC_MODE,
    }
}

pub(crate) fn manifest_file(m: &Manifest) -> PendingFile {
    public_file(MANIFEST_FILE, m.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_the_time() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let clock = ManualClock::new(t0);
        let handed_out = clock.clone();
        clock.advance(Duration::hours(2));
        assert_eq!(handed_out.now(), t0 + Duration::hours(2));
        handed_out.set(t0);
        assert_eq!(clock.now(), t0);
    }
}
