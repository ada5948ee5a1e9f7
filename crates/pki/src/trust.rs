//! Chain verification with webpki, the same engine rustls uses: does a certificate chain to
//! a given trust for a given purpose?

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The purpose a chain is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server certificate (serverAuth EKU).
    Server,
    /// A TLS client certificate (clientAuth EKU).
    Client,
}

/// Verify `chain` (leaf first, then intermediates) against `trust` (anchors) for `usage` at
/// `now`, and for a server also against `server_name`. Returns webpki's reason on failure.
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    trust: &[CertificateDer<'_>],
    usage: Usage,
    server_name: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<(), String> {
    let (leaf, intermediates) = chain.split_first().ok_or("empty chain")?;
    let anchors = trust
        .iter()
        .map(|c| webpki::anchor_from_trusted_cert(c).map_err(|e| format!("bad trust anchor: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("bad certificate: {e}"))?;
    let secs = u64::try_from(now.unix_timestamp()).map_err(|_| "clock before 1970")?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let eku = match usage {
        Usage::Server => webpki::KeyUsage::server_auth(),
        Usage::Client => webpki::KeyUsage::client_auth(),
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        time,
        eku,
        None,
        None,
    )
    .map_err(|e| format!("{e:?}"))?;
    if let Some(name) = server_name {
        let name =
            ServerName::try_from(name).map_err(|_| format!("invalid server name {name:?}"))?;
        ee.verify_is_valid_for_subject_name(&name)
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}
