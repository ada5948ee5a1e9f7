//! The JWT signing key: `prepare` (publish the next key) / `activate` (switch) / `prune`
//! (retire), and the emergency `revoke`.
//!
//! A rotation never lets a verifier meet an unknown kid: the next key is published in
//! `jwks.json` before it signs ([`prepare`]), the caller waits for verifiers to re-read the
//! JWKS, and only then does the next key sign ([`activate`]). The key that stopped signing
//! stays published until every token it signed has expired ([`retire_after`]), and is then
//! dropped ([`prune`], or any later `generate`). A revoke is the exception: it trusts nothing
//! published before it.

use std::path::Path;

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::{Clock, manifest_file, public_file, read_manifest, secret_file};
use crate::{
    error::{Error, Result},
    fs::{self as pfs, PendingFile},
    generate::{self, Revocation},
    jwt::{Jwks, SigningKey},
    layout,
    lock::DirLock,
    manifest::{MANIFEST_FILE, RetiredKey},
    settings::Settings,
};

/// The pending next key while it is published but not yet signing.
pub const NEXT_KEY_FILE: &str = "temporal-jwt-next.key";

/// How long a published-but-not-yet-signing next key stays in the JWKS if its rotation never
/// finishes. Once it lapses the next key is discarded: activating a key verifiers have
/// stopped seeing would get its tokens refused.
pub const NEXT_KEY_PUBLICATION: Duration = Duration::days(1);

/// Slack on top of the longest token lifetime, for clock skew between signer and verifiers.
pub const RETIRE_MARGIN: Duration = Duration::minutes(1);

/// THE one retirement rule: a key that stopped signing at `stopped` stays published until
/// every token it signed has expired: the longer of the static token and access token
/// lifetimes, plus [`RETIRE_MARGIN`].
pub fn retire_after(settings: &Settings, stopped: OffsetDateTime) -> OffsetDateTime {
    stopped + settings.token_ttl.max(settings.access_token_ttl) + RETIRE_MARGIN
}

/// The outcome of [`prepare`]: the key that signs now and the one published to sign next.
pub struct Prepared {
    pub current: SigningKey,
    pub next: SigningKey,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("current", &self.current.kid())
            .field("next", &self.next.kid())
            .finish()
    }
}

/// The outcome of [`activate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activated {
    pub old_kid: String,
    pub new_kid: String,
    /// Until when the old key stays in `jwks.json`.
    pub retire_after: OffsetDateTime,
}

fn read_key(path: &Path) -> Result<SigningKey> {
    let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })?);
    SigningKey::from_pem(&pem).map_err(|reason| Error::Corrupt {
        path: path.to_owned(),
        reason,
    })
}

/// The key that signs now.
pub fn current(dir: &Path) -> Result<SigningKey> {
    read_key(&dir.join(layout::JWT_PRIVATE))
}

/// The pending next key, if a prepare has run and no activate/revoke since.
pub fn pending(dir: &Path) -> Result<Option<SigningKey>> {
    let path = dir.join(NEXT_KEY_FILE);
    if pfs::read_optional(&path)?.is_none() {
        return Ok(None);
    }
    read_key(&path).map(Some)
}

/// `jwks.json` publishing `current` first, then every retired (or pending) key except
/// `current`. The one place the JWKS document is built, for `generate` and the verbs alike.
pub(crate) fn jwks_file(current: &SigningKey, retired: &[RetiredKey]) -> PendingFile {
    let jwks = Jwks {
        keys: std::iter::once(current.jwk().clone())
            .chain(
                retired
                    .iter()
                    .filter(|r| r.jwk.kid != current.kid())
                    .map(|r| r.jwk.clone()),
            )
            .collect(),
    };
    // Serialising plain data with string keys cannot fail.
    let mut v = serde_json::to_vec_pretty(&jwks).unwrap_or_default();
    v.push(b'\n');
    public_file(layout::JWKS, v)
}

fn remove_next(dir: &Path) -> Result<bool> {
    let path = dir.join(NEXT_KEY_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Io {
            action: "removing",
            path,
            source,
        }),
    }
}

/// Remove a pending next key that can no longer be activated safely: it is not among the
/// `published` kids (its publication lapsed, or a revoke unpublished it), or it already is
/// the signing key (a switch that stopped after its write). Returns the discarded kid. A file
/// that does not parse is left for `verify` to report.
pub(crate) fn discard_stale_next(
    dir: &Path,
    current_kid: &str,
    published: &[String],
) -> Result<Option<String>> {
    let Ok(Some(next)) = pending(dir) else {
        return Ok(None);
    };
    if next.kid() != current_kid && published.iter().any(|k| k == next.kid()) {
        return Ok(None);
    }
    remove_next(dir)?;
    tracing::warn!(
        kid = next.kid(),
        "discarded a pending next JWT key that can no longer be activated"
    );
    Ok(Some(next.kid().to_owned()))
}

/// Publish the next key in `jwks.json` beside the current one (the current key keeps
/// signing). The next key is recorded among the manifest's retired keys with a publication
/// horizon of [`NEXT_KEY_PUBLICATION`], so any `generate` meanwhile keeps publishing it.
/// Resumable: an existing next-key file (an interrupted run) is reused and its horizon renewed.
pub fn prepare(lock: &DirLock, settings: &Settings, clock: &dyn Clock) -> Result<Prepared> {
    let dir = lock.dir();
    settings.validate()?;
    let current = current(dir)?;
    let next = match pending(dir) {
        // Equal to the signing key: left over from a switch that stopped after its write.
        Ok(Some(next)) if next.kid() != current.kid() => next,
        Ok(_) => SigningKey::generate(settings.jwt_algorithm)?,
        // A damaged next-key file never signed anything and is not trusted: replacing it is
        // the way to recover (a plain `generate` would also replace a damaged key).
        Err(e) => {
            tracing::warn!(error = %e, "replacing an unreadable pending next JWT key");
            SigningKey::generate(settings.jwt_algorithm)?
        }
    };
    let mut m = read_manifest(dir)?;
    let now = clock.now();
    m.retired_keys.retain(|k| k.jwk.kid != next.kid());
    m.retired_keys.push(RetiredKey {
        jwk: next.jwk().clone(),
        retire_after: now + NEXT_KEY_PUBLICATION,
    });
    pfs::write_all(
        dir,
        &[
            secret_file(NEXT_KEY_FILE, next.private_pem().expose().as_bytes()),
            jwks_file(&current, &m.retired_keys),
            manifest_file(&m),
        ],
    )?;
    tracing::info!(
        next = next.kid(),
        current = current.kid(),
        "next JWT key published"
    );
    Ok(Prepared { current, next })
}

/// Switch: the next key signs; the old one stays published until [`retire_after`]. Refuses
/// with [`Error::SigningKeyChanged`] (changing nothing) when the current key is no longer
/// `prepared.current` or the pending next key is no longer `prepared.next` (a revoke
/// happened meanwhile). Does NOT re-issue tokens: call [`super::reissue::static_tokens`]
/// under the same lock.
pub fn activate(
    lock: &DirLock,
    settings: &Settings,
    prepared: &Prepared,
    clock: &dyn Clock,
) -> Result<Activated> {
    let dir = lock.dir();
    settings.validate()?;
    // After a revoke, switching would publish again keys the revoke unpublished.
    let current = current(dir)?;
    let pending = pending(dir)?;
    if current.kid() != prepared.current.kid()
        || pending.as_ref().map(SigningKey::kid) != Some(prepared.next.kid())
    {
        return Err(Error::SigningKeyChanged {
            kid: current.kid().to_owned(),
        });
    }
    let (old, next) = (&prepared.current, &prepared.next);
    let mut m = read_manifest(dir)?;
    let now = clock.now();
    let retire = retire_after(settings, now);
    m.retired_keys
        .retain(|k| k.jwk.kid != next.kid() && k.jwk.kid != old.kid() && k.retire_after > now);
    m.retired_keys.push(RetiredKey {
        jwk: old.jwk().clone(),
        retire_after: retire,
    });
    let entry = m
        .items
        .iter_mut()
        .find(|e| e.id == layout::JWT_KEY_ID)
        .ok_or_else(|| Error::Corrupt {
            path: dir.join(MANIFEST_FILE),
            reason: format!("has no {} entry", layout::JWT_KEY_ID),
        })?;
    entry.kid = Some(next.kid().to_owned());
    entry.fingerprint = crate::fingerprint(next.public_pem().as_bytes());
    entry.generation += 1;
    entry.rotated_at = Some(now);
    entry.not_before = Some(now);
    entry.not_after = Some(now + settings.jwt_key_lifetime);
    pfs::write_all(
        dir,
        &[
            secret_file(layout::JWT_PRIVATE, next.private_pem().expose().as_bytes()),
            public_file(layout::JWT_PUBLIC, next.public_pem()),
            jwks_file(next, &m.retired_keys),
            manifest_file(&m),
        ],
    )?;
    remove_next(dir)?;
    tracing::info!(new = next.kid(), old = old.kid(), "JWT key switched");
    Ok(Activated {
        old_kid: old.kid().to_owned(),
        new_kid: next.kid().to_owned(),
        retire_after: retire,
    })
}

/// Drop retired keys whose horizon has passed from `jwks.json` and the manifest (a pending
/// next key whose publication lapsed is discarded with its file). Returns the dropped kids;
/// nothing is written when there are none.
pub fn prune(lock: &DirLock, settings: &Settings, clock: &dyn Clock) -> Result<Vec<String>> {
    let dir = lock.dir();
    settings.validate()?;
    let current = current(dir)?;
    let mut m = read_manifest(dir)?;
    let now = clock.now();
    let (kept, dropped): (Vec<RetiredKey>, Vec<RetiredKey>) =
        m.retired_keys.drain(..).partition(|k| k.retire_after > now);
    m.retired_keys = kept;
    let dropped: Vec<String> = dropped.into_iter().map(|k| k.jwk.kid).collect();
    if !dropped.is_empty() {
        pfs::write_all(
            dir,
            &[jwks_file(&current, &m.retired_keys), manifest_file(&m)],
        )?;
        tracing::info!(dropped = ?dropped, "retired JWT keys unpublished");
    }
    let published: Vec<String> = std::iter::once(current.kid().to_owned())
        .chain(m.retired_keys.iter().map(|k| k.jwk.kid.clone()))
        .collect();
    discard_stale_next(dir, current.kid(), &published)?;
    Ok(dropped)
}

/// Emergency revoke: a new key signs at once and `jwks.json` holds only it. Unlike a
/// rotation there is no overlap: the previous key, every retired key and a pending next key
/// are dropped, because a revoke assumes a key may be compromised. The static tokens (and
/// CLI profiles) are re-issued with the new key; tokens signed earlier stop verifying as
/// soon as a verifier re-reads the JWKS. The pending next-key file is removed.
pub fn revoke(lock: &DirLock, settings: &Settings, clock: &dyn Clock) -> Result<Revocation> {
    let dir = lock.dir();
    let published = |dir: &Path| -> Result<Vec<String>> {
        Ok(match pfs::read_optional(&dir.join(layout::JWKS))? {
            Some(bytes) => serde_json::from_slice::<Jwks>(&bytes)
                .map(|j| j.keys.into_iter().map(|k| k.kid).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        })
    };
    let before = published(dir)?;
    let report = generate::revoke_run(lock, settings, clock.now())?;
    // The run already discards a parsable next key (it is no longer published); this also
    // removes one that does not parse: a revoke trusts nothing left from before it.
    if remove_next(dir)? {
        tracing::warn!("discarded the pending next JWT key of an unfinished rotation");
    }
    let after = published(dir)?;
    Ok(Revocation {
        report,
        kid: after.first().cloned().unwrap_or_default(),
        revoked: before.into_iter().filter(|k| !after.contains(k)).collect(),
    })
}
