//! The JWT signing key, re-read from disk when it changes so a rotated key is used without
//! a restart, and the JWKS document published next to it.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime},
};

use bulwark_pki::jwt::SigningKey;

use crate::Error;

#[derive(Debug)]
struct Loaded {
    key: Arc<SigningKey>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// The current signing key from a PEM file.
#[derive(Debug)]
pub struct KeyFile {
    path: PathBuf,
    check_every: Duration,
    loaded: RwLock<Loaded>,
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn load(path: &Path) -> Result<SigningKey, Error> {
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| Error::Key(format!("{}: {e}", path.display())))?,
    );
    SigningKey::from_pem(&pem).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
}

impl KeyFile {
    pub fn open(path: impl Into<PathBuf>, check_every: Duration) -> Result<Self, Error> {
        let path = path.into();
        let m = modified(&path);
        let key = Arc::new(load(&path)?);
        Ok(KeyFile {
            path,
            check_every,
            loaded: RwLock::new(Loaded {
                key,
                modified: m,
                checked: Instant::now(),
            }),
        })
    }

    /// Re-read the key file now, whatever its modification time says: called right after
    /// this process itself replaced the key (a revoke must not leave it signing with the
    /// revoked key until the next check). A file that fails to load keeps the current key.
    pub fn reload_now(&self) {
        let mut l = match self.loaded.write() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        l.checked = Instant::now();
        let m = modified(&self.path);
        match load(&self.path) {
            Ok(k) => {
                if k.kid() != l.key.kid() {
                    tracing::info!(kid = k.kid(), "JWT signing key reloaded");
                }
                l.key = Arc::new(k);
                l.modified = m;
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWT signing key reload failed; keeping the current key")
            }
        }
    }

    /// The key to sign with. Checks the file at most every `check_every`; a file that fails
    /// to load keeps the previous key in service.
    pub fn current(&self) -> Arc<SigningKey> {
        let stale = match self.loaded.read() {
            Ok(l) if l.checked.elapsed() < self.check_every => return l.key.clone(),
            Ok(_) => true,
            Err(_) => true,
        };
        if stale {
            let mut l = match self.loaded.write() {
                Ok(l) => l,
                Err(p) => p.into_inner(),
            };
            l.checked = Instant::now();
            let m = modified(&self.path);
            if m != l.modified {
                match load(&self.path) {
                    Ok(k) => {
                        tracing::info!(kid = k.kid(), "JWT signing key reloaded");
                        l.key = Arc::new(k);
                        l.modified = m;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "JWT signing key reload failed; keeping the current key")
                    }
                }
            }
            return l.key.clone();
        }
        match self.loaded.read() {
            Ok(l) => l.key.clone(),
            Err(p) => p.into_inner().key.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bulwark_pki::jwt::JwtAlgorithm;

    use super::*;

    #[test]
    fn reload_now_takes_a_replaced_key_before_the_next_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let write = |k: &SigningKey| std::fs::write(&path, k.private_pem().expose()).unwrap();
        let (a, b) = (
            SigningKey::generate(JwtAlgorithm::Es256).unwrap(),
            SigningKey::generate(JwtAlgorithm::Es256).unwrap(),
        );
        write(&a);
        let file = KeyFile::open(&path, Duration::from_secs(3600)).unwrap();
        write(&b);
        // The periodic check is an hour away: still the old key...
        assert_eq!(file.current().kid(), a.kid());
        // ...until this process says it replaced it.
        file.reload_now();
        assert_eq!(file.current().kid(), b.kid());
        // A broken file keeps the key in service.
        std::fs::write(&path, "not a key").unwrap();
        file.reload_now();
        assert_eq!(file.current().kid(), b.kid());
    }
}
