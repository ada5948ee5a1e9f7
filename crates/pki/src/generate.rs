//! `generate`: create what is missing, renew what is due, keep everything else byte for byte.
//!
//! The run has two phases. The plan phase reads and checks every existing item and decides
//! what to (re)create; any problem (corrupt PEM, key/cert mismatch, a certificate not issued
//! by its CA, half a pair) is collected and the run stops before anything is written. The
//! write phase stages every new file and renames them into place together.
//!
//! Both phases run under the directory's cross-process lock ([`crate::lock`]), so init and
//! control never plan against material the other is replacing.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use rcgen::{Issuer, KeyPair};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::{
    cert::{self, CertInfo},
    error::{Error, Result, TokenError},
    fs::{self as pfs, PUBLIC_MODE, PendingFile, SECRET_MODE},
    jwt::{self, Claims, Confirmation, Jwks, Scope, SigningKey, VerifyOptions},
    layout::{self, CertSpec},
    lock::DirLock,
    manifest::{Entry, ItemKind, MANIFEST_FILE, Manifest, RetiredKey},
    rotate::{self, ManualClock},
    settings::Settings,
};

/// Which items a run may replace even though they are valid.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    /// Create what is missing and renew what is due.
    Missing,
    /// Replace everything.
    Force,
    /// Replace the named items (and whatever depends on them).
    Rotate(&'a [String]),
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: String,
    pub reason: &'static str,
}

/// The outcome of a successful run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub changes: Vec<Change>,
    pub files_written: Vec<String>,
}

struct CaState {
    info: CertInfo,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
    renewed: bool,
    previous: Option<CertInfo>,
}

struct Run<'a> {
    dir: &'a Path,
    settings: &'a Settings,
    now: OffsetDateTime,
    mode: Mode<'a>,
    /// Emergency revoke: the JWT key is replaced and no earlier key stays published.
    revoke: bool,
    old: Manifest,
    errors: Vec<Error>,
    files: Vec<PendingFile>,
    entries: Vec<Entry>,
    changes: Vec<Change>,
    /// Every certificate this run keeps or issues, by item id: what the static tokens are
    /// bound to.
    certs: HashMap<String, CertInfo>,
}

/// Create, renew or rotate the material in `dir`. See the module docs for the guarantees.
/// Takes the directory's lock, waiting up to [`crate::lock::DEFAULT_TIMEOUT`].
pub fn generate(
    dir: &Path,
    settings: &Settings,
    mode: Mode<'_>,
    now: OffsetDateTime,
) -> Result<Report> {
    settings.validate()?;
    pfs::ensure_dir(dir)?;
    let lock = DirLock::acquire(dir)?;
    run(&lock, settings, mode, now, false)
}

/// [`generate`] for a caller that already holds the directory's lock (a multi-step change
/// such as a JWT key switch followed by re-issuing the tokens).
pub fn generate_locked(
    lock: &DirLock,
    settings: &Settings,
    mode: Mode<'_>,
    now: OffsetDateTime,
) -> Result<Report> {
    run(lock, settings, mode, now, false)
}

/// What an emergency revoke did.
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    pub report: Report,
    /// The kid that signs from now on.
    pub kid: String,
    /// Every kid that was published before and no longer is (the signing key and any
    /// retired or pending key).
    pub revoked: Vec<String>,
}

/// Emergency revoke of the JWT signing key: a new key is generated and signs at once, and
/// `jwks.json` holds only that key. Unlike a rotation there is no overlap: the previous key
/// and every retired key still published are dropped, because a revoke assumes a key may be
/// compromised. The static tokens (and CLI profiles) are re-issued with the new key; tokens
/// signed earlier stop verifying as soon as a verifier re-reads the JWKS.
pub fn revoke_jwt_key(dir: &Path, settings: &Settings, now: OffsetDateTime) -> Result<Revocation> {
    settings.validate()?;
    pfs::ensure_dir(dir)?;
    let lock = DirLock::acquire(dir)?;
    revoke_jwt_key_locked(&lock, settings, now)
}

/// [`revoke_jwt_key`] for a caller that already holds the directory's lock. The same as
/// [`rotate::jwt::revoke`] at a fixed time; kept for callers that have no clock.
pub fn revoke_jwt_key_locked(
    lock: &DirLock,
    settings: &Settings,
    now: OffsetDateTime,
) -> Result<Revocation> {
    rotate::jwt::revoke(lock, settings, &ManualClock::new(now))
}

/// The write half of an emergency revoke: the JWT key is replaced and no earlier key stays
/// published. [`rotate::jwt::revoke`] wraps it.
pub(crate) fn revoke_run(
    lock: &DirLock,
    settings: &Settings,
    now: OffsetDateTime,
) -> Result<Report> {
    let ids = [layout::JWT_KEY_ID.to_owned()];
    run(lock, settings, Mode::Rotate(&ids), now, true)
}

fn run(
    lock: &DirLock,
    settings: &Settings,
    mode: Mode<'_>,
    now: OffsetDateTime,
    revoke: bool,
) -> Result<Report> {
    let dir = lock.dir();
    settings.validate()?;
    if let Mode::Rotate(ids) = mode {
        let known = layout::item_ids(settings);
        for id in ids {
            if !known.iter().any(|k| k == id) {
                return Err(Error::UnknownItem(id.clone()));
            }
        }
    }
    let old = match pfs::read_optional(&dir.join(MANIFEST_FILE))? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "manifest.json is unreadable; rebuilding it from the files");
            Manifest::default()
        }),
        None => Manifest::default(),
    };
    let mut run = Run {
        dir,
        settings,
        now,
        mode,
        revoke,
        old,
        errors: Vec::new(),
        files: Vec::new(),
        entries: Vec::new(),
        changes: Vec::new(),
        certs: HashMap::new(),
    };

    let cas = run.certificates();
    run.bundles(&cas);
    let signing = run.jwt_key();
    let tokens = signing
        .as_ref()
        .map(|(key, renewed, _)| run.tokens(key, *renewed))
        .unwrap_or_default();
    if run.errors.is_empty() {
        run.cli_config(&tokens);
    }

    if !run.errors.is_empty() {
        return Err(match run.errors.len() {
            1 => run.errors.remove(0),
            _ => Error::Several(run.errors),
        });
    }

    // Kids in the jwks.json this run writes, to discard a pending next key that is not among them.
    let published: Option<(String, Vec<String>)> = signing.as_ref().map(|(key, _, retired)| {
        let kids = std::iter::once(key.kid())
            .chain(retired.iter().map(|r| r.jwk.kid.as_str()))
            .map(str::to_owned)
            .collect();
        (key.kid().to_owned(), kids)
    });
    let retired = signing.map(|(_, _, retired)| retired).unwrap_or_default();
    let manifest = Manifest {
        version: 1,
        items: run.entries,
        retired_keys: retired,
    };
    run.files.push(PendingFile {
        name: MANIFEST_FILE.into(),
        contents: Zeroizing::new(manifest.to_json()),
        mode: PUBLIC_MODE,
    });

    // Drop files whose bytes would not change, so an idempotent run touches nothing.
    let mut files = Vec::new();
    for f in run.files {
        let current = pfs::read_optional(&dir.join(&f.name))?;
        let same_mode =
            pfs::mode_of(&dir.join(&f.name)).is_ok_and(|m| pfs::mode_acceptable(m, f.mode));
        if current.as_deref() != Some(&f.contents[..]) || !same_mode {
            files.push(f);
        }
    }
    pfs::write_all(dir, &files)?;
    if let Some((current, kids)) = &published {
        if rotate::jwt::discard_stale_next(dir, current, kids)?.is_some() {
            run.changes.push(Change {
                id: layout::JWT_KEY_ID.to_owned(),
                reason: "unpublished next key discarded",
            });
        }
    }
    for c in &run.changes {
        tracing::info!(item = %c.id, reason = c.reason, "issued");
    }
    Ok(Report {
        changes: run.changes,
        files_written: files.into_iter().map(|f| f.name).collect(),
    })
}

fn secret(name: String, contents: impl Into<Vec<u8>>) -> PendingFile {
    PendingFile {
        name,
        contents: Zeroizing::new(contents.into()),
        mode: SECRET_MODE,
    }
}

fn public(name: String, contents: impl Into<Vec<u8>>) -> PendingFile {
    PendingFile {
        name,
        contents: Zeroizing::new(contents.into()),
        mode: PUBLIC_MODE,
    }
}

impl Run<'_> {
    fn forced(&self, id: &str) -> bool {
        match self.mode {
            Mode::Missing => false,
            Mode::Force => true,
            Mode::Rotate(ids) => ids.iter().any(|i| i == id),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&mut self, name: &str) -> Option<Option<Vec<u8>>> {
        match pfs::read_optional(&self.path(name)) {
            Ok(b) => Some(b),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// The entry for an item, carrying generation and rotation time over from the old manifest.
    fn entry(&self, id: &str, kind: ItemKind, path: &str, renewed: bool) -> Entry {
        let old = self.old.get(id);
        let generation = old.map_or(1, |o| o.generation);
        Entry {
            id: id.to_owned(),
            kind,
            path: path.to_owned(),
            key_path: None,
            issuer: None,
            fingerprint: String::new(),
            serial: None,
            not_before: None,
            not_after: None,
            kid: None,
            generation: if renewed && old.is_some() {
                generation + 1
            } else {
                generation
            },
            rotated_at: if renewed {
                Some(self.now)
            } else {
                old.and_then(|o| o.rotated_at)
            },
        }
    }

    fn change(&mut self, id: &str, reason: &'static str) {
        self.changes.push(Change {
            id: id.to_owned(),
            reason,
        });
    }

    fn certificates(&mut self) -> HashMap<String, CaState> {
        let mut cas: HashMap<String, CaState> = HashMap::new();
        for spec in layout::cert_specs(self.settings) {
            let parent = match &spec.parent {
                Some(p) => match cas.get(p) {
                    Some(state) => Some(state),
                    // The issuer has a problem that is already reported.
                    None => continue,
                },
                None => None,
            };
            let (existing, reason) = self.plan_cert(&spec, parent);
            if reason.is_none() && existing.is_some() {
                // Re-stage kept files with their own bytes: unchanged files are skipped at
                // write time, but a loosened mode on a kept key is repaired.
                for (name, secret_file) in [(spec.cert_file(), false), (spec.key_file(), true)] {
                    if let Some(Some(bytes)) = self.read(&name) {
                        self.files.push(if secret_file {
                            secret(name, bytes)
                        } else {
                            public(name, bytes)
                        });
                    }
                }
            }
            let Some((info, key, renewed, previous)) = (match reason {
                None => existing.map(|(info, key)| (info, key, false, None)),
                Some(reason) => self.issue_cert(&spec, parent, reason).map(|(info, key)| {
                    let previous = existing.map(|(i, _)| i);
                    (info, key, true, previous)
                }),
            }) else {
                continue;
            };
            let mut entry = self.entry(&spec.id, spec.kind(), &spec.cert_file(), renewed);
            entry.key_path = Some(spec.key_file());
            entry.issuer = spec.parent.clone();
            entry.fingerprint = info.fingerprint.clone();
            entry.serial = Some(info.serial.clone());
            entry.not_before = Some(info.not_before);
            entry.not_after = Some(info.not_after);
            self.entries.push(entry);
            self.certs.insert(spec.id.clone(), info.clone());
            if spec.is_ca() {
                let path = self.path(&spec.cert_file());
                match cert::issuer_from(&info, key, &path) {
                    Ok(issuer) => {
                        let pem = cert::pem_cert(&info.der);
                        cas.insert(
                            spec.id.clone(),
                            CaState {
                                info,
                                pem,
                                issuer,
                                renewed,
                                previous,
                            },
                        );
                    }
                    Err(e) => self.errors.push(e),
                }
            }
        }
        cas
    }

    /// Load an existing certificate item and decide whether it must be (re)issued.
    /// Returns the loaded material (if sound) and the reason to reissue (if any).
    #[allow(clippy::type_complexity)]
    fn plan_cert(
        &mut self,
        spec: &CertSpec,
        parent: Option<&CaState>,
    ) -> (Option<(CertInfo, KeyPair)>, Option<&'static str>) {
        let cert_path = self.path(&spec.cert_file());
        let key_path = self.path(&spec.key_file());
        let forced = self.forced(&spec.id);
        let (Some(cert_bytes), Some(key_bytes)) =
            (self.read(&spec.cert_file()), self.read(&spec.key_file()))
        else {
            return (None, None);
        };
        let loaded = match (cert_bytes, key_bytes) {
            (None, None) => return (None, Some(if forced { "rotated" } else { "missing" })),
            (Some(_), None) | (None, Some(_)) if forced => return (None, Some("rotated")),
            (Some(_), None) => {
                self.errors.push(Error::IncompletePair {
                    present: cert_path,
                    missing: key_path,
                });
                return (None, None);
            }
            (None, Some(_)) => {
                self.errors.push(Error::IncompletePair {
                    present: key_path,
                    missing: cert_path,
                });
                return (None, None);
            }
            (Some(c), Some(k)) => load_pair(&c, &k, &cert_path, &key_path),
        };
        let (info, key) = match loaded {
            Ok(pair) => pair,
            // A rotation is also the way to recover a damaged item.
            Err(_) if forced => return (None, Some("rotated")),
            Err(e) => {
                self.errors.push(e);
                return (None, None);
            }
        };
        if forced {
            return (Some((info, key)), Some("rotated"));
        }
        if let Some(parent) = parent {
            if parent.renewed {
                return (Some((info, key)), Some("issuer renewed"));
            }
            if !info.is_signed_by(&parent.info) {
                self.errors.push(Error::NotIssuedBy {
                    cert: cert_path,
                    issuer: self.path(&format!("{}.crt", parent_stem(spec))),
                });
                return (None, None);
            }
        }
        if self.now >= info.not_after {
            return (Some((info, key)), Some("expired"));
        }
        if info.due_for_renewal(self.now, self.settings.renew_fraction()) {
            return (Some((info, key)), Some("renewal window reached"));
        }
        if !spec.matches(&info) {
            return (Some((info, key)), Some("configuration changed"));
        }
        (Some((info, key)), None)
    }

    fn issue_cert(
        &mut self,
        spec: &CertSpec,
        parent: Option<&CaState>,
        reason: &'static str,
    ) -> Option<(CertInfo, KeyPair)> {
        let issued = match cert::issue(
            &spec.common_name,
            &spec.profile,
            self.settings.key_algorithm,
            spec.lifetime,
            self.now,
            parent.map(|p| &p.issuer),
        ) {
            Ok(i) => i,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let path = self.path(&spec.cert_file());
        let info = match CertInfo::parse(issued.cert_der.clone(), &path) {
            Ok(i) => i,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let mut pem = issued.cert_pem();
        // Leaves carry their intermediate so peers that trust only the root can build a chain.
        if let (Some(parent), true) = (parent, spec.is_leaf()) {
            pem.push_str(&parent.pem);
        }
        self.files.push(public(spec.cert_file(), pem));
        self.files.push(secret(
            spec.key_file(),
            issued.key_pem().expose().as_bytes().to_vec(),
        ));
        self.change(&spec.id, reason);
        Some((info, issued.key))
    }

    /// Trust bundles: the CA certificates one side accepts for client authentication. After
    /// an intermediate is renewed the bundle trusts old and new until the old one expires.
    fn bundles(&mut self, cas: &HashMap<String, CaState>) {
        for layout::TrustBundle {
            id,
            file,
            ca: ca_id,
        } in layout::TRUST_BUNDLES
        {
            let Some(ca) = cas.get(ca_id) else { continue };
            let mut certs: Vec<CertInfo> = vec![ca.info.clone()];
            let path = self.path(file);
            if ca.renewed {
                if let Some(prev) = &ca.previous {
                    if prev.not_after > self.now {
                        certs.push(prev.clone());
                    }
                }
            } else if let Some(Some(bytes)) = self.read(file) {
                if let Ok(existing) = cert::parse_pem_chain(&bytes, &path) {
                    if existing
                        .iter()
                        .any(|c| c.fingerprint == ca.info.fingerprint)
                    {
                        certs = existing
                            .into_iter()
                            .filter(|c| c.not_after > self.now)
                            .collect();
                    }
                }
            }
            let contents: String = certs.iter().map(|c| cert::pem_cert(&c.der)).collect();
            let changed = self
                .read(file)
                .flatten()
                .is_none_or(|b| b != contents.as_bytes());
            let mut entry = self.entry(id, ItemKind::TrustBundle, file, changed);
            entry.issuer = Some(ca_id.to_owned());
            entry.fingerprint = crate::fingerprint(contents.as_bytes());
            entry.not_after = certs.iter().map(|c| c.not_after).min();
            self.entries.push(entry);
            if changed {
                self.change(id, "trust changed");
            }
            self.files.push(public(file.to_owned(), contents));
        }
    }

    /// The JWT signing key, its public key and the JWKS (current key plus retired keys that
    /// may still have live tokens). Returns the key, whether it is new, and the retired keys to record.
    #[allow(clippy::type_complexity)]
    fn jwt_key(&mut self) -> Option<(SigningKey, bool, Vec<RetiredKey>)> {
        let id = layout::JWT_KEY_ID;
        let (priv_file, pub_file) = (layout::JWT_PRIVATE, layout::JWT_PUBLIC);
        let priv_path = self.path(priv_file);
        let pub_path = self.path(pub_file);
        let forced = self.forced(id);
        let priv_bytes = self.read(priv_file)?;
        let pub_bytes = self.read(pub_file)?;
        let mut existing = None;
        let reason: Option<&'static str> = match (priv_bytes, pub_bytes) {
            (None, None) => Some(if forced { "rotated" } else { "missing" }),
            (Some(p), pub_bytes) => {
                let parsed = std::str::from_utf8(&p)
                    .map_err(|e| e.to_string())
                    .and_then(SigningKey::from_pem);
                match (parsed, pub_bytes) {
                    (Err(_), _) | (_, None) if forced => Some("rotated"),
                    (Err(reason), _) => {
                        self.errors.push(Error::Corrupt {
                            path: priv_path.clone(),
                            reason,
                        });
                        return None;
                    }
                    (Ok(_), None) => {
                        self.errors.push(Error::IncompletePair {
                            present: priv_path,
                            missing: pub_path,
                        });
                        return None;
                    }
                    (Ok(key), Some(pubb)) => {
                        if pubb != key.public_pem().as_bytes() && !forced {
                            self.errors.push(Error::KeyMismatch {
                                cert: pub_path,
                                key: priv_path,
                            });
                            return None;
                        }
                        let not_before = self
                            .old
                            .get(id)
                            .filter(|e| e.kid.as_deref() == Some(key.kid()))
                            .and_then(|e| e.not_before)
                            .or_else(|| {
                                std::fs::metadata(&priv_path)
                                    .and_then(|m| m.modified())
                                    .ok()
                                    .map(OffsetDateTime::from)
                            })
                            .unwrap_or(self.now);
                        let not_after = not_before + self.settings.jwt_key_lifetime;
                        let reason = if forced {
                            Some("rotated")
                        } else if key.algorithm() != self.settings.jwt_algorithm {
                            Some("configuration changed")
                        } else if cert::due_for_renewal(
                            not_before,
                            not_after,
                            self.now,
                            self.settings.renew_fraction(),
                        ) {
                            Some("renewal window reached")
                        } else {
                            None
                        };
                        existing = Some((key, not_before));
                        reason
                    }
                }
            }
            (None, Some(_)) if forced => Some("rotated"),
            (None, Some(_)) => {
                self.errors.push(Error::IncompletePair {
                    present: pub_path,
                    missing: priv_path,
                });
                return None;
            }
        };

        let mut retired: Vec<RetiredKey> = self
            .old
            .retired_keys
            .iter()
            .filter(|k| k.retire_after > self.now && !self.revoke)
            .cloned()
            .collect();
        let (key, not_before, renewed) = match (reason, existing) {
            (None, Some((key, nb))) => {
                if let Some(Some(bytes)) = self.read(priv_file) {
                    self.files.push(secret(priv_file.into(), bytes));
                }
                (key, nb, false)
            }
            (Some(reason), previous) => {
                let key = match SigningKey::generate(self.settings.jwt_algorithm) {
                    Ok(k) => k,
                    Err(e) => {
                        self.errors.push(e);
                        return None;
                    }
                };
                if let Some((prev, _)) = previous.filter(|_| !self.revoke) {
                    // Tokens signed by the old key stay verifiable until they expire.
                    retired.push(RetiredKey {
                        jwk: prev.jwk().clone(),
                        retire_after: rotate::jwt::retire_after(self.settings, self.now),
                    });
                }
                self.files.push(secret(
                    priv_file.into(),
                    key.private_pem().expose().as_bytes().to_vec(),
                ));
                self.files.push(public(pub_file.into(), key.public_pem()));
                self.change(id, reason);
                (key, self.now, true)
            }
            // Unreachable by construction: no reason means a key was loaded.
            (None, None) => return None,
        };
        retired.retain(|k| k.jwk.kid != key.kid());
        self.files.push(rotate::jwt::jwks_file(&key, &retired));

        let mut entry = self.entry(id, ItemKind::JwtSigningKey, pub_file, renewed);
        entry.key_path = Some(priv_file.into());
        entry.fingerprint = crate::fingerprint(key.public_pem().as_bytes());
        entry.kid = Some(key.kid().to_owned());
        entry.not_before = Some(not_before);
        entry.not_after = Some(not_before + self.settings.jwt_key_lifetime);
        self.entries.push(entry);
        Some((key, renewed, retired))
    }

    fn tokens(&mut self, key: &SigningKey, key_renewed: bool) -> Vec<(Scope, String)> {
        let current_only = Jwks {
            keys: vec![key.jwk().clone()],
        };
        let mut out = Vec::new();
        for scope in Scope::ALL {
            let layout::StaticToken {
                id,
                file,
                subject: sub,
            } = layout::token(scope);
            let path = self.path(file);
            let expected_perms = scope.permissions(&self.settings.namespaces);
            // The token is bound to the certificate its CLI profile presents, so the gate
            // accepts the pair. Identity binding: a re-issued certificate keeps its URI SAN,
            // so the token stays valid and is not re-signed for a new thumbprint alone.
            let cert_id = layout::token_certificate(self.settings, scope);
            let cnf = match self
                .certs
                .get(cert_id)
                .map(|c| Confirmation::for_certificate(&c.der))
            {
                Some(Ok(cnf)) => cnf,
                Some(Err(e)) => {
                    self.errors.push(Error::Generate {
                        what: format!("{id} bound to {cert_id}.crt"),
                        reason: e.to_string(),
                    });
                    continue;
                }
                // The certificate had a problem, already reported (every bound id is a
                // configured certificate, see layout::token_certificate).
                None => {
                    if self.errors.is_empty() {
                        self.errors.push(Error::Generate {
                            what: format!("{id} bound to {cert_id}.crt"),
                            reason: "the certificate is not available".into(),
                        });
                    }
                    continue;
                }
            };
            let Some(existing) = self.read(file) else {
                continue;
            };
            let mut kept = None;
            let reason: Option<&'static str> = if self.forced(id) {
                Some("rotated")
            } else if existing.is_none() {
                Some("missing")
            } else if key_renewed {
                Some("signing key renewed")
            } else {
                match existing {
                    None => Some("missing"),
                    Some(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                        match jwt::verify(
                            &text,
                            &current_only,
                            self.now,
                            &VerifyOptions::new(self.settings.token_ttl)
                                .audience(&self.settings.audience),
                        ) {
                            Ok(c) => {
                                let drift = c.permissions != expected_perms
                                    || c.scope != scope.as_str()
                                    || c.iss != self.settings.issuer
                                    || c.sub != sub;
                                let nb =
                                    OffsetDateTime::from_unix_timestamp(c.iat).unwrap_or(self.now);
                                let na =
                                    OffsetDateTime::from_unix_timestamp(c.exp).unwrap_or(self.now);
                                let due = cert::due_for_renewal(
                                    nb,
                                    na,
                                    self.now,
                                    self.settings.renew_fraction(),
                                );
                                let rebind = match &c.cnf {
                                    None => Some("binding added"),
                                    Some(have) if have.uri != cnf.uri => Some("binding changed"),
                                    Some(_) => None,
                                };
                                let reason = if drift {
                                    Some("configuration changed")
                                } else if rebind.is_some() {
                                    rebind
                                } else if due {
                                    Some("renewal window reached")
                                } else {
                                    None
                                };
                                kept = Some((text, c));
                                reason
                            }
                            Err(TokenError::Expired) => Some("expired"),
                            Err(TokenError::WrongAudience | TokenError::LifetimeTooLong) => {
                                Some("configuration changed")
                            }
                            Err(e) => {
                                self.errors.push(Error::Corrupt {
                                    path,
                                    reason: format!(
                                        "does not verify against {}: {e}",
                                        layout::JWT_PRIVATE
                                    ),
                                });
                                continue;
                            }
                        }
                    }
                }
            };
            let (token, claims, renewed) = match (reason, kept) {
                (None, Some((t, c))) => (t, c, false),
                (Some(reason), _) => {
                    let claims = Claims::new(
                        sub,
                        &self.settings.issuer,
                        &self.settings.audience,
                        scope.as_str(),
                        expected_perms,
                        self.now,
                        self.settings.token_ttl,
                    )
                    .with_cnf(cnf);
                    match key.sign(&claims) {
                        Ok(t) => {
                            self.change(id, reason);
                            (t, claims, true)
                        }
                        Err(e) => {
                            self.errors.push(e);
                            continue;
                        }
                    }
                }
                (None, None) => continue,
            };
            let mut contents = token.clone();
            contents.push('\n');
            self.files.push(secret(file.into(), contents));
            let mut entry = self.entry(id, ItemKind::Token, file, renewed);
            entry.issuer = Some(layout::JWT_KEY_ID.into());
            entry.fingerprint = crate::fingerprint(token.as_bytes());
            entry.kid = Some(key.kid().to_owned());
            entry.not_before = OffsetDateTime::from_unix_timestamp(claims.nbf).ok();
            entry.not_after = OffsetDateTime::from_unix_timestamp(claims.exp).ok();
            self.entries.push(entry);
            out.push((scope, token));
        }
        out
    }

    /// Temporal CLI profiles. The file embeds tokens, so it is written 0600.
    fn cli_config(&mut self, tokens: &[(Scope, String)]) {
        let dir = match &self.settings.cli_certs_dir {
            Some(d) => d.clone(),
            None => std::fs::canonicalize(self.dir).unwrap_or_else(|_| self.dir.to_owned()),
        };
        let contents = layout::render_cli_config(self.settings, &dir, tokens);
        let changed = self
            .read(layout::CLI_CONFIG)
            .flatten()
            .is_none_or(|b| b != contents.as_bytes());
        let mut entry = self.entry(
            layout::CLI_CONFIG_ID,
            ItemKind::CliConfig,
            layout::CLI_CONFIG,
            changed,
        );
        entry.fingerprint = crate::fingerprint(contents.as_bytes());
        self.entries.push(entry);
        if changed {
            self.change(layout::CLI_CONFIG_ID, "profiles changed");
        }
        self.files.push(secret(layout::CLI_CONFIG.into(), contents));
    }
}

fn parent_stem(spec: &CertSpec) -> String {
    spec.parent.clone().unwrap_or_default()
}

fn load_pair(
    cert: &[u8],
    key: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<(CertInfo, KeyPair)> {
    let chain = cert::parse_pem_chain(cert, cert_path)?;
    let key_text = std::str::from_utf8(key).map_err(|_| Error::Corrupt {
        path: key_path.to_owned(),
        reason: "not a PEM file".into(),
    })?;
    let key = cert::parse_key(key_text, key_path)?;
    let leaf = chain.into_iter().next().ok_or_else(|| Error::Corrupt {
        path: cert_path.to_owned(),
        reason: "no certificate in file".into(),
    })?;
    if !leaf.matches_key(&key) {
        return Err(Error::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        });
    }
    Ok((leaf, key))
}
