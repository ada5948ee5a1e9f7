//! Re-issue without a key change of the issuer: one leaf, the static tokens, or whatever is
//! missing or due.

use super::Clock;
use crate::{
    error::{Error, Result},
    generate::{self, Mode, Report},
    layout,
    lock::DirLock,
    settings::Settings,
};

/// The ids of every leaf certificate [`leaf`] accepts.
pub fn leaf_ids(settings: &Settings) -> Vec<String> {
    layout::cert_specs(settings)
        .into_iter()
        .filter(|s| s.is_leaf())
        .map(|s| s.id)
        .collect()
}

/// A new certificate and key for leaf `id` (the CLI profiles follow if they name it).
/// [`Error::NotALeaf`] for a CA, a bundle, a token or an unknown id.
pub fn leaf(lock: &DirLock, settings: &Settings, id: &str, clock: &dyn Clock) -> Result<Report> {
    if !leaf_ids(settings).iter().any(|l| l == id) {
        return Err(Error::NotALeaf(id.to_owned()));
    }
    generate::generate_locked(lock, settings, Mode::Rotate(&[id.to_owned()]), clock.now())
}

/// The three static tokens (and the CLI profiles that embed them), signed by the current key.
pub fn static_tokens(lock: &DirLock, settings: &Settings, clock: &dyn Clock) -> Result<Report> {
    let ids = layout::STATIC_TOKEN_IDS.map(str::to_owned);
    generate::generate_locked(lock, settings, Mode::Rotate(&ids), clock.now())
}

/// Create what is missing and renew what is due (`generate` in [`Mode::Missing`]).
pub fn due(lock: &DirLock, settings: &Settings, clock: &dyn Clock) -> Result<Report> {
    generate::generate_locked(lock, settings, Mode::Missing, clock.now())
}

/// Replace the named items and whatever depends on them (`generate` in [`Mode::Rotate`]): the
/// command line's general form, for items without a staged rotation (e.g. the root CA).
pub fn items(
    lock: &DirLock,
    settings: &Settings,
    ids: &[String],
    clock: &dyn Clock,
) -> Result<Report> {
    generate::generate_locked(lock, settings, Mode::Rotate(ids), clock.now())
}
