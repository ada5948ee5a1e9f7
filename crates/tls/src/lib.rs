//! rustls configuration for Bulwark services.
//!
//! Obtaining a certificate is separate from serving it: a [`CertSource`] produces a
//! [`CertifiedKey`]; a [`Reloading`] holder keeps the current one and swaps it when the source
//! changes (a rotated file on disk), and implements rustls' server and client resolver traits.
//! A failed reload keeps the previous certificate in service.
#![forbid(unsafe_code)]

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    client::ResolvesClientCert,
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Why TLS material could not be loaded. Names the file, never its contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("building TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The crypto provider every Bulwark TLS endpoint uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid {
            path: path.to_owned(),
            reason: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::Invalid {
            path: path.to_owned(),
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// A root store holding every certificate of a PEM bundle as a trust anchor.
pub fn load_roots(path: &Path) -> Result<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    for cert in load_certs(path)? {
        store.add(cert).map_err(|e| Error::Invalid {
            path: path.to_owned(),
            reason: format!("not usable as a trust anchor: {e}"),
        })?;
    }
    Ok(Arc::new(store))
}

/// Where a certificate and its key come from.
pub trait CertSource: Send + Sync + fmt::Debug + 'static {
    /// Load the current certificate and key.
    fn load(&self) -> Result<CertifiedKey>;
    /// A cheap token that changes when the material changes (e.g. file modification times).
    fn version(&self) -> Option<SystemTime>;
}

/// A certificate chain and private key in two PEM files.
#[derive(Debug, Clone)]
pub struct PemFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl PemFiles {
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        PemFiles {
            cert: cert.into(),
            key: key.into(),
        }
    }
}

impl CertSource for PemFiles {
    fn load(&self) -> Result<CertifiedKey> {
        let chain = load_certs(&self.cert)?;
        let key_bytes = std::fs::read(&self.key).map_err(|source| Error::Read {
            path: self.key.clone(),
            source,
        })?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| Error::Invalid {
            path: self.key.clone(),
            reason: format!("bad private key PEM: {e}"),
        })?;
        let signing_key =
            provider()
                .key_provider
                .load_private_key(key)
                .map_err(|e| Error::Invalid {
                    path: self.key.clone(),
                    reason: format!("unsupported private key: {e}"),
                })?;
        let certified = CertifiedKey::new(chain, signing_key);
        // A key that does not match the certificate would fail every handshake; refuse it here
        // so a half-rotated pair never replaces a working one.
        certified.keys_match().map_err(|e| Error::Invalid {
            path: self.key.clone(),
            reason: format!("does not match {}: {e}", self.cert.display()),
        })?;
        Ok(certified)
    }

    fn version(&self) -> Option<SystemTime> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match (m(&self.cert), m(&self.key)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        }
    }
}

/// The SHA-256 fingerprint (hex) of the leaf of a certified key.
pub fn fingerprint(key: &CertifiedKey) -> String {
    key.cert
        .first()
        .map(|c| bulwark_pki::fingerprint(c.as_ref()))
        .unwrap_or_default()
}

struct Current {
    key: Arc<CertifiedKey>,
    version: Option<SystemTime>,
}

/// The current certificate of a [`CertSource`], swapped in place when the source changes.
pub struct Reloading {
    source: Box<dyn CertSource>,
    current: RwLock<Current>,
}

impl fmt::Debug for Reloading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading")
            .field("source", &self.source)
            .field("fingerprint", &self.fingerprint())
            .field("key", &"...")
            .finish()
    }
}

impl Reloading {
    /// Load the source once; fails if the initial material is unusable.
    pub fn new(source: impl CertSource) -> Result<Arc<Self>> {
        let version = source.version();
        let key = Arc::new(source.load()?);
        Ok(Arc::new(Reloading {
            source: Box::new(source),
            current: RwLock::new(Current { key, version }),
        }))
    }

    /// The certificate currently presented.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(c) => c.key.clone(),
            Err(poisoned) => poisoned.into_inner().key.clone(),
        }
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.current())
    }

    /// Reload if the source changed. Returns whether a new certificate is now in service.
    /// On error the previous certificate stays in service.
    pub fn reload_if_changed(&self) -> Result<bool> {
        let version = self.source.version();
        let unchanged = match self.current.read() {
            Ok(c) => c.version == version,
            Err(p) => p.into_inner().version == version,
        };
        if unchanged {
            return Ok(false);
        }
        let key = Arc::new(self.source.load()?);
        let changed = fingerprint(&key) != self.fingerprint();
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *guard = Current { key, version };
        Ok(changed)
    }

    /// Poll the source every `interval` for as long as the returned task runs.
    pub fn spawn_watcher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match this.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(source = ?this.source, fingerprint = %this.fingerprint(), "certificate reloaded")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "certificate reload failed; keeping the current one")
                    }
                }
            }
        })
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for Reloading {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A server configuration presenting `cert`, optionally requiring client certificates that
/// chain to `client_trust`. ALPN offers h2 and http/1.1.
pub fn server_config(
    cert: Arc<Reloading>,
    client_trust: Option<Arc<RootCertStore>>,
) -> Result<ServerConfig> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_trust {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| Error::Config(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A client configuration trusting `roots`, optionally presenting `cert`.
pub fn client_config(
    roots: Arc<RootCertStore>,
    cert: Option<Arc<Reloading>>,
) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match cert {
        Some(c) => builder.with_client_cert_resolver(c),
        None => builder.with_no_client_auth(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_pki::{Mode, Settings, generate};

    fn certs() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        generate(
            &dir,
            &Settings::default(),
            Mode::Missing,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        (tmp, dir)
    }

    #[test]
    fn reloads_a_rotated_certificate_and_keeps_the_old_one_on_failure() {
        let (_t, dir) = certs();
        let files = PemFiles::new(
            dir.join("control-server.crt"),
            dir.join("control-server.key"),
        );
        let r = Reloading::new(files).unwrap();
        let before = r.fingerprint();
        assert!(!r.reload_if_changed().unwrap());

        // A key that does not match: refused, old certificate stays.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::copy(dir.join("api-server.key"), dir.join("control-server.key")).unwrap();
        assert!(r.reload_if_changed().is_err());
        assert_eq!(r.fingerprint(), before);

        // A proper rotation is picked up.
        generate(
            &dir,
            &Settings::default(),
            Mode::Rotate(&["control-server".into()]),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert!(r.reload_if_changed().unwrap());
        assert_ne!(r.fingerprint(), before);
        assert!(!format!("{r:?}").contains("PRIVATE"));
    }

    #[test]
    fn bad_files_are_named() {
        let (_t, dir) = certs();
        let err = PemFiles::new(dir.join("nope.crt"), dir.join("control-server.key"))
            .load()
            .unwrap_err();
        assert!(err.to_string().contains("nope.crt"), "{err}");
        std::fs::write(dir.join("junk.crt"), "junk").unwrap();
        let err = load_roots(&dir.join("junk.crt")).unwrap_err();
        assert!(err.to_string().contains("junk.crt"), "{err}");
    }
}
