//! Issuing certificates and reading back the facts the inventory and checks need.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls_pki_types::{CertificateDer, pem::PemObject};
use time::{Duration, OffsetDateTime};

use crate::{
    error::{Error, Result},
    keys::{KeyAlgorithm, PrivateKeyPem},
    names::San,
};

/// Backdating absorbs clock skew between the host that issues and the hosts that verify.
const BACKDATE: Duration = Duration::minutes(5);

/// What a certificate is for; decides basic constraints, key usages and EKUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// Self-signed root; may sign intermediates only.
    Root,
    /// Issuing CA for one trust domain; may sign leaves only.
    Intermediate,
    /// TLS server only (serverAuth).
    Server { sans: Vec<San> },
    /// Temporal internode: every service is both server and client (serverAuth + clientAuth).
    Internode { sans: Vec<San> },
    /// TLS client only (clientAuth), identity in CN and a URI SAN.
    Client { uri: String },
}

/// A freshly issued certificate with its key.
pub struct Issued {
    pub cert_der: CertificateDer<'static>,
    pub key: KeyPair,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("fingerprint", &fingerprint(&self.cert_der))
            .field("key", &"...")
            .finish()
    }
}

impl Issued {
    pub fn cert_pem(&self) -> String {
        pem_cert(&self.cert_der)
    }

    pub fn key_pem(&self) -> PrivateKeyPem {
        PrivateKeyPem::new(self.key.serialize_pem())
    }
}

/// Encode a DER certificate as PEM.
pub fn pem_cert(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The SHA-256 fingerprint of a DER certificate, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    crate::fingerprint(der)
}

fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Generate {
            what: "serial number".into(),
            reason: "system random source failed".into(),
        })?;
    // Serials are positive INTEGERs (RFC 5280 4.1.2.2).
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Issue a certificate. `issuer` is `None` for a self-signed root.
pub fn issue(
    common_name: &str,
    profile: &Profile,
    algorithm: KeyAlgorithm,
    lifetime: Duration,
    now: OffsetDateTime,
    issuer: Option<&Issuer<'_, KeyPair>>,
) -> Result<Issued> {
    let generate_err = |e: rcgen::Error| Error::Generate {
        what: format!("certificate for {common_name}"),
        reason: e.to_string(),
    };
    let key = algorithm.generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Bulwark");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.serial_number = Some(random_serial()?);
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
    params.use_authority_key_identifier_extension = issuer.is_some();
    match profile {
        Profile::Root | Profile::Intermediate => {
            let depth = if *profile == Profile::Root { 1 } else { 0 };
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(depth));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
        }
        Profile::Server { sans } | Profile::Internode { sans } => {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            if matches!(profile, Profile::Internode { .. }) {
                params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ClientAuth);
            }
            for san in sans {
                params.subject_alt_names.push(match san {
                    San::Dns(d) => SanType::DnsName(d.clone().try_into().map_err(generate_err)?),
                    San::Ip(ip) => SanType::IpAddress(*ip),
                });
            }
        }
        Profile::Client { uri } => {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params
                .subject_alt_names
                .push(SanType::URI(uri.clone().try_into().map_err(generate_err)?));
        }
    }
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer),
        None => params.self_signed(&key),
    }
    .map_err(generate_err)?;
    Ok(Issued {
        cert_der: cert.der().clone(),
        key,
    })
}

/// Facts read back from a certificate on disk.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub der: CertificateDer<'static>,
    pub fingerprint: String,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub subject_cn: String,
    pub sans: Vec<String>,
    pub is_ca: bool,
    pub server_auth: bool,
    pub client_auth: bool,
    spki: Vec<u8>,
}

impl CertInfo {
    pub fn parse(der: CertificateDer<'static>, path: &Path) -> Result<Self> {
        use x509_parser::prelude::*;
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let (_, x) = X509Certificate::from_der(&der)
            .map_err(|e| corrupt(format!("bad certificate: {e}")))?;
        let to_odt = |t: ASN1Time| t.to_datetime();
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = x.subject_alternative_name() {
            for name in &ext.value.general_names {
                sans.push(match name {
                    GeneralName::DNSName(d) => format!("DNS:{d}"),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
                        16 => {
                            let mut b = [0u8; 16];
                            b.copy_from_slice(ip);
                            format!("IP:{}", std::net::Ipv6Addr::from(b))
                        }
                        _ => "IP:?".to_owned(),
                    },
                    GeneralName::URI(u) => format!("URI:{u}"),
                    other => format!("{other:?}"),
                });
            }
        }
        let (server_auth, client_auth) = match x.extended_key_usage() {
            Ok(Some(eku)) => (eku.value.server_auth, eku.value.client_auth),
            _ => (false, false),
        };
        let subject_cn = x
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(CertInfo {
            fingerprint: fingerprint(&der),
            serial: hex::encode(x.raw_serial()),
            not_before: to_odt(x.validity().not_before),
            not_after: to_odt(x.validity().not_after),
            subject_cn,
            sans,
            is_ca: x.is_ca(),
            server_auth,
            client_auth,
            spki: x.public_key().raw.to_vec(),
            der: der.clone(),
        })
    }

    /// Whether `key` is the private half of this certificate's public key.
    pub fn matches_key(&self, key: &KeyPair) -> bool {
        key.subject_public_key_info() == self.spki
    }

    /// Whether this certificate's signature verifies under `issuer`'s public key.
    pub fn is_signed_by(&self, issuer: &CertInfo) -> bool {
        use x509_parser::prelude::*;
        let (Ok((_, me)), Ok((_, parent))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        me.verify_signature(Some(parent.public_key())).is_ok()
    }

    /// True once `fraction` of the lifetime has elapsed, i.e. it is time to renew.
    pub fn due_for_renewal(&self, now: OffsetDateTime, fraction: f64) -> bool {
        due_for_renewal(self.not_before, self.not_after, now, fraction)
    }
}

pub(crate) fn due_for_renewal(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
    fraction: f64,
) -> bool {
    let lifetime = not_after - not_before;
    now >= not_before + lifetime * fraction || now >= not_after
}

/// Parse every certificate in a PEM file, leaf first.
pub fn parse_pem_chain(pem: &[u8], path: &Path) -> Result<Vec<CertInfo>> {
    let ders: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Corrupt {
            path: path.to_owned(),
            reason: format!("bad PEM: {e}"),
        })?;
    if ders.is_empty() {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            reason: "no certificate in file".into(),
        });
    }
    ders.into_iter().map(|d| CertInfo::parse(d, path)).collect()
}

/// Parse a PEM private key.
pub fn parse_key(pem: &str, path: &Path) -> Result<KeyPair> {
    KeyPair::from_pem(pem).map_err(|e| Error::Corrupt {
        path: path.to_owned(),
        reason: format!("bad private key: {e}"),
    })
}

/// An rcgen issuer built from a CA certificate on disk and its key.
pub fn issuer_from(info: &CertInfo, key: KeyPair, path: &Path) -> Result<Issuer<'static, KeyPair>> {
    Issuer::from_ca_cert_der(&info.der, key).map_err(|e| Error::Corrupt {
        path: path.to_owned(),
        reason: format!("not usable as an issuer: {e}"),
    })
}
