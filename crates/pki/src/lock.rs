//! The certs directory's cross-process write lock.
//!
//! bulwark-init and bulwark-control both write the certs directory (init at start-up and from
//! the command line, control from the admin page and its renewal task). Each write is atomic
//! per file set, but a run reads the directory, plans and then writes: two runs interleaved
//! would each plan against material the other is replacing. Every writer in this crate
//! therefore holds an advisory `flock` on `<certs>/.lock` for the whole read-plan-write run.
//! Readers ([`crate::verify::verify_dir`], services loading their certificates) never take it:
//! renames are atomic, so a reader sees either the old file or the new one.
//!
//! The lock file is empty, mode 0600, and not part of the inventory, so `verify` ignores it.
//! It is released when the [`DirLock`] is dropped (closing the descriptor releases the
//! `flock`), also when the holder dies, so a crashed writer never leaves the directory locked.

use std::{
    fs::{File, OpenOptions},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    error::{Error, Result},
    fs::SECRET_MODE,
};

/// Name of the lock file inside the certs directory.
pub const LOCK_FILE: &str = ".lock";

/// How long a writer waits for another to finish before giving up. A full `generate` with
/// RSA keys takes a few seconds; a JWT rotation holds the lock only around its writes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(25);

/// An exclusive hold on a certs directory. Writers take it with [`DirLock::acquire`];
/// functions that need it while their caller already holds it take `&DirLock`.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    // Held only for its descriptor: the flock lives as long as the open file.
    _file: File,
}

impl DirLock {
    /// Lock `dir` (which must exist), waiting up to [`DEFAULT_TIMEOUT`].
    pub fn acquire(dir: &Path) -> Result<Self> {
        Self::acquire_timeout(dir, DEFAULT_TIMEOUT)
    }

    /// Lock `dir`, waiting up to `timeout`; [`Error::Locked`] names the lock file when another
    /// process keeps it longer.
    pub fn acquire_timeout(dir: &Path, timeout: Duration) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(SECRET_MODE)
            .open(&path)
            .map_err(|source| Error::Io {
                action: "opening the lock file",
                path: path.clone(),
                source,
            })?;
        let deadline = Instant::now() + timeout;
        let mut logged = false;
        loop {
            // Fully qualified: std's inherent `File::try_lock` needs a newer toolchain than
            // the workspace's rust-version.
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => {
                    return Ok(DirLock {
                        dir: dir.to_owned(),
                        _file: file,
                    });
                }
                Err(fs4::TryLockError::WouldBlock) => {}
                Err(fs4::TryLockError::Error(source)) => {
                    return Err(Error::Io {
                        action: "locking",
                        path,
                        source,
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Locked {
                    path,
                    waited_secs: timeout.as_secs(),
                });
            }
            if !logged {
                tracing::info!(lock = %path.display(), "waiting for another writer of the certs directory");
                logged = true;
            }
            std::thread::sleep(POLL);
        }
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{os::unix::fs::PermissionsExt, sync::mpsc};

    #[test]
    fn second_writer_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(LOCK_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let (tx, rx) = mpsc::channel();
        let path = dir.path().to_owned();
        let waiter = std::thread::spawn(move || {
            let second = DirLock::acquire_timeout(&path, Duration::from_secs(20));
            tx.send(()).unwrap();
            second.map(|_| ())
        });
        // Still blocked while the first holds the lock.
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        drop(first);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the second writer gets the lock once the first releases it");
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn timeout_names_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire_timeout(dir.path(), Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }));
        assert!(
            err.to_string()
                .contains(&dir.path().join(LOCK_FILE).display().to_string()),
            "{err}"
        );
    }
}
