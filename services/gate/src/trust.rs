//! The client trust (`client-trust.pem`), re-read when the file changes: an issuing-CA overlap
//! adds the new CA to the bundle and the gate accepts its leaves without a restart, while
//! connections already open keep their verified identity.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// A client-certificate verifier whose trust anchors can be replaced at run time.
#[derive(Debug)]
pub struct ReloadingTrust {
    path: PathBuf,
    current: ArcSwap<Current>,
}

#[derive(Debug)]
struct Current {
    pem: Vec<u8>,
    verifier: Arc<dyn ClientCertVerifier>,
}

fn build(path: &Path) -> Result<Current, bulwark_tls::Error> {
    let pem = std::fs::read(path).map_err(|e| bulwark_tls::Error::Read {
        path: path.to_owned(),
        source: e,
    })?;
    let roots = bulwark_tls::load_roots(path)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, bulwark_tls::provider())
        .build()
        .map_err(|e| bulwark_tls::Error::Config(rustls::Error::General(e.to_string())))?;
    Ok(Current { pem, verifier })
}

impl ReloadingTrust {
    pub fn new(path: impl Into<PathBuf>) -> Result<Arc<Self>, bulwark_tls::Error> {
        let path = path.into();
        let current = build(&path)?;
        Ok(Arc::new(Self {
            path,
            current: ArcSwap::from_pointee(current),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the bundle; `Ok(true)` when it changed and was swapped in. A bundle that does
    /// not parse is refused and the previous trust stays.
    pub fn reload_if_changed(&self) -> Result<bool, bulwark_tls::Error> {
        let now = std::fs::read(&self.path).map_err(|e| bulwark_tls::Error::Read {
            path: self.path.clone(),
            source: e,
        })?;
        if now == self.current.load().pem {
            return Ok(false);
        }
        let next = build(&self.path)?;
        self.current.store(Arc::new(next));
        Ok(true)
    }
}

impl ClientCertVerifier for ReloadingTrust {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    // Hints are optional (RFC 8446 4.2.4) and would have to borrow from a value that can be
    // swapped; every client we serve holds exactly one certificate and sends it regardless.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current
            .load()
            .verifier
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().verifier.supported_verify_schemes()
    }
}
