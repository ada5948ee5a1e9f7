//! rustls configuration for Bulwark services.
//!
//! Obtaining a certificate is separate from serving it: a [`CertSource`] produces a
//! [`CertifiedKey`]; a [`Reloading`] holder keeps the current one and swaps it when the source
//! changes (a rotated file on disk), and implements rustls' server and client resolver traits.
//! A failed reload keeps the previous certificate in service.
//!
//! Client certificates are verified by a [`ClientTrust`]: a trust bundle (PEM) re-read when
//! the file changes, so an issuing-CA overlap or rotation reaches a running listener.
#![forbid(unsafe_code)]

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
    client::{ResolvesClientCert, danger::HandshakeSignatureValid},
    crypto::CryptoProvider,
    server::{
        ClientHello, ResolvesServerCert, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};

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
    parse_certs(path, &bytes)
}

/// Every certificate of PEM text read from `path` (named in errors).
fn parse_certs(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(bytes)
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
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    roots_from_pem(path, &bytes)
}

/// Like [`load_roots`] with the PEM already read; `path` only names it in errors.
pub fn roots_from_pem(path: &Path, pem: &[u8]) -> Result<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    for cert in parse_certs(path, pem)? {
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

/// Whether a listener verifying client certificates lets a client without one in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client certificate is asked for; a client without one still connects (the handler
    /// decides), but a client presenting one that does not verify is refused at the handshake.
    Optional,
    /// No connection without a verified client certificate.
    Required,
}

struct TrustCurrent {
    verifier: Arc<dyn ClientCertVerifier>,
    /// The bundle's bytes as last loaded: a reload compares contents, not modification times,
    /// so a bundle rewritten twice within one timestamp tick is still seen.
    pem: Vec<u8>,
}

/// Client certificates verified (webpki, client-auth usage) against the issuing CAs in a PEM
/// trust bundle, re-read when the file's contents change ([`ClientTrust::reload_if_changed`],
/// [`ClientTrust::spawn_watcher`]). A bundle that fails to load keeps the previous one.
///
/// No CA names are sent as hints in the certificate request (an empty list: "send any
/// certificate you have"): rustls borrows the hints from the verifier, and these are
/// swapped on reload. Bulwark's clients hold one certificate each, so nothing is lost.
pub struct ClientTrust {
    path: PathBuf,
    auth: ClientAuth,
    current: RwLock<TrustCurrent>,
}

impl fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTrust")
            .field("path", &self.path)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl ClientTrust {
    /// Load the bundle at `path`; fails if it is unreadable, not PEM, or holds no usable CA.
    pub fn new(path: impl Into<PathBuf>, auth: ClientAuth) -> Result<Arc<Self>> {
        let path = path.into();
        let current = Self::load(&path, auth)?;
        Ok(Arc::new(ClientTrust {
            path,
            auth,
            current: RwLock::new(current),
        }))
    }

    /// [`ClientTrust::new`] with [`ClientAuth::Optional`].
    pub fn optional(path: impl Into<PathBuf>) -> Result<Arc<Self>> {
        Self::new(path, ClientAuth::Optional)
    }

    /// The bundle file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(path: &Path, auth: ClientAuth) -> Result<TrustCurrent> {
        let pem = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let verifier = Self::build(path, &pem, auth)?;
        Ok(TrustCurrent { verifier, pem })
    }

    fn build(path: &Path, pem: &[u8], auth: ClientAuth) -> Result<Arc<dyn ClientCertVerifier>> {
        let roots = roots_from_pem(path, pem)?;
        let builder = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .clear_root_hint_subjects();
        let builder = match auth {
            ClientAuth::Optional => builder.allow_unauthenticated(),
            ClientAuth::Required => builder,
        };
        builder.build().map_err(|e| Error::Invalid {
            path: path.to_owned(),
            reason: format!("not usable as a client trust bundle: {e}"),
        })
    }

    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        match self.current.read() {
            Ok(c) => c.verifier.clone(),
            Err(p) => p.into_inner().verifier.clone(),
        }
    }

    /// Re-read the bundle; returns whether its contents changed (and are now in use). On
    /// error the previous bundle stays in use.
    pub fn reload_if_changed(&self) -> Result<bool> {
        let pem = std::fs::read(&self.path).map_err(|source| Error::Read {
            path: self.path.clone(),
            source,
        })?;
        let unchanged = match self.current.read() {
            Ok(c) => c.pem == pem,
            Err(p) => p.into_inner().pem == pem,
        };
        if unchanged {
            return Ok(false);
        }
        let verifier = Self::build(&self.path, &pem, self.auth)?;
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *guard = TrustCurrent { verifier, pem };
        Ok(true)
    }

    /// Re-read the bundle every `interval` for as long as the returned task runs.
    pub fn spawn_watcher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match this.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(path = %this.path.display(), "client trust bundle reloaded")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "client trust bundle reload failed; keeping the current one")
                    }
                }
            }
        })
    }
}

impl ClientCertVerifier for ClientTrust {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.auth == ClientAuth::Required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}

/// A server configuration presenting `cert` and verifying client certificates with `trust`
/// (optional or required, as the trust says). ALPN offers h2 and http/1.1. The verified leaf
/// is what `bulwark_serve` hands to handlers as a `PeerCertificate`.
pub fn server_config_with_client_trust(
    cert: Arc<Reloading>,
    trust: Arc<ClientTrust>,
) -> Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(trust)
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
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

    fn verify(trust: &ClientTrust, path: &Path) -> std::result::Result<(), rustls::Error> {
        let chain = load_certs(path).unwrap();
        trust
            .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn client_trust_follows_the_bundle_file_and_keeps_the_old_one_on_failure() {
        let (_t, dir) = certs();
        let bundle = dir.join("bundle.pem");
        // First a bundle without client-ca: the client leaf does not verify.
        std::fs::copy(dir.join("internode-trust.pem"), &bundle).unwrap();
        let trust = ClientTrust::optional(&bundle).unwrap();
        assert!(!trust.client_auth_mandatory());
        assert!(trust.offer_client_auth());
        assert!(verify(&trust, &dir.join("client-api.crt")).is_err());
        assert!(!trust.reload_if_changed().unwrap());

        std::fs::copy(dir.join("client-trust.pem"), &bundle).unwrap();
        assert!(trust.reload_if_changed().unwrap());
        verify(&trust, &dir.join("client-api.crt")).unwrap();
        // A server certificate (server-ca, serverAuth only) is no client certificate.
        assert!(verify(&trust, &dir.join("control-server.crt")).is_err());
        assert!(!trust.reload_if_changed().unwrap());

        // A broken bundle is refused and the working one stays.
        std::fs::write(&bundle, "junk").unwrap();
        let err = trust.reload_if_changed().unwrap_err();
        assert!(err.to_string().contains("bundle.pem"), "{err}");
        verify(&trust, &dir.join("client-api.crt")).unwrap();

        let required =
            ClientTrust::new(dir.join("client-trust.pem"), ClientAuth::Required).unwrap();
        assert!(required.client_auth_mandatory());
        assert!(ClientTrust::optional(dir.join("missing.pem")).is_err());
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
