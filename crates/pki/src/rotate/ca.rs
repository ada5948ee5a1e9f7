//! An issuing CA's trust overlap: `begin_overlap` / `end_overlap`.
//!
//! Beginning issues a new CA and re-issues everything it signs; its trust bundle holds old
//! and new, so peers that still present a certificate from the old CA (or still trust only
//! the old bundle) keep working while services reload. Ending, once the operator has seen
//! every service reload, leaves only the current CA in the bundle.

use super::{Clock, public_file, read_manifest};
use crate::{
    cert,
    error::{Error, Result},
    fs as pfs,
    generate::{self, Change, Mode, Report},
    layout,
    lock::DirLock,
    settings::Settings,
};

/// The CAs the verbs rotate. The root CA is rotated from the command line.
pub const ISSUING_CAS: [&str; 4] = [
    layout::INTERNODE_CA,
    layout::CLIENT_CA,
    layout::SERVER_CA,
    layout::GATE_CA,
];

fn issuing(ca_id: &str) -> Result<()> {
    if ISSUING_CAS.contains(&ca_id) {
        Ok(())
    } else {
        Err(Error::NotAnIssuingCa(ca_id.to_owned()))
    }
}

/// New issuing CA `ca_id`; everything it signs is re-issued; its trust bundle holds old and
/// new (a later `generate` keeps both until the old CA expires or the overlap ends).
/// [`Error::NotAnIssuingCa`] for anything but [`ISSUING_CAS`].
pub fn begin_overlap(
    lock: &DirLock,
    settings: &Settings,
    ca_id: &str,
    clock: &dyn Clock,
) -> Result<Report> {
    issuing(ca_id)?;
    generate::generate_locked(
        lock,
        settings,
        Mode::Rotate(&[ca_id.to_owned()]),
        clock.now(),
    )
}

/// End the overlap: `ca_id`'s trust bundle keeps only the current CA, then a `Missing` run
/// brings the manifest up to date. [`Error::BundleLacksCurrentCa`] (nothing changed) when the
/// bundle does not contain the current CA. The server CA has no bundle (clients trust the
/// root), so for it only the `Missing` run happens.
pub fn end_overlap(
    lock: &DirLock,
    settings: &Settings,
    ca_id: &str,
    clock: &dyn Clock,
) -> Result<Report> {
    issuing(ca_id)?;
    settings.validate()?;
    let dir = lock.dir();
    let mut trimmed = None;
    if let Some(bundle) = layout::trust_bundle(ca_id) {
        let m = read_manifest(dir)?;
        let current = &m
            .get(ca_id)
            .ok_or_else(|| Error::Corrupt {
                path: dir.join(crate::manifest::MANIFEST_FILE),
                reason: format!("has no {ca_id} entry"),
            })?
            .fingerprint;
        let path = dir.join(bundle.file);
        let bytes = pfs::read_optional(&path)?.unwrap_or_default();
        let certs = if bytes.is_empty() {
            Vec::new()
        } else {
            cert::parse_pem_chain(&bytes, &path)?
        };
        let keep: String = certs
            .iter()
            .filter(|c| &c.fingerprint == current)
            .map(|c| cert::pem_cert(&c.der))
            .collect();
        if keep.is_empty() {
            return Err(Error::BundleLacksCurrentCa {
                ca: ca_id.to_owned(),
                file: path,
            });
        }
        if keep.as_bytes() != bytes.as_slice() {
            pfs::write_all(dir, &[public_file(bundle.file, keep)])?;
            trimmed = Some(bundle);
        }
    }
    let mut report = generate::generate_locked(lock, settings, Mode::Missing, clock.now())?;
    if let Some(bundle) = trimmed {
        report.changes.insert(
            0,
            Change {
                id: bundle.id.to_owned(),
                reason: "overlap ended",
            },
        );
        report.files_written.insert(0, bundle.file.to_owned());
    }
    Ok(report)
}
