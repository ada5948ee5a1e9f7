//! `verify`: check a certificates directory without trusting how it was produced.
//!
//! Every certificate chain is verified with webpki for its intended use against the trust
//! the other side will actually use, every key is matched to its certificate, every token is
//! verified against `jwks.json`, and file modes are checked. The manifest is used as the
//! list of items and cross-checked against the files.

use std::{fmt, path::Path};

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::{
    cert::{self, CertInfo},
    fs::{self as pfs, DIR_MODE, DIR_MODE_MAX, GROUP_READ, SECRET_MODE},
    jwt::{self, Jwks, SigningKey},
    layout,
    manifest::{Entry, ItemKind, MANIFEST_FILE, Manifest, Status},
    trust::{self, Usage},
};

/// How bad a finding is. Errors make `verify` fail; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub item: String,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}", self.item, self.message)
    }
}

struct Checker<'a> {
    dir: &'a Path,
    now: OffsetDateTime,
    renew_fraction: f64,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn error(&mut self, item: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            item: item.to_owned(),
            severity: Severity::Error,
            message: message.into(),
        });
    }

    fn warn(&mut self, item: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            item: item.to_owned(),
            severity: Severity::Warning,
            message: message.into(),
        });
    }

    fn read(&mut self, item: &str, file: &str) -> Option<Vec<u8>> {
        match pfs::read_optional(&self.dir.join(file)) {
            Ok(Some(b)) => Some(b),
            Ok(None) => {
                self.error(item, format!("{file} is missing"));
                None
            }
            Err(e) => {
                self.error(item, e.to_string());
                None
            }
        }
    }

    fn certs(&mut self, item: &str, file: &str) -> Option<Vec<CertInfo>> {
        let bytes = self.read(item, file)?;
        match cert::parse_pem_chain(&bytes, &self.dir.join(file)) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(item, e.to_string());
                None
            }
        }
    }

    fn secret_mode(&mut self, item: &str, file: &str) {
        if let Ok(mode) = pfs::mode_of(&self.dir.join(file)) {
            if mode & !(SECRET_MODE | GROUP_READ) != 0 {
                self.error(
                    item,
                    format!(
                        "{file} has mode {mode:o}; private material must be 600 (or 640 to grant its group)"
                    ),
                );
            } else if !pfs::mode_acceptable(mode, SECRET_MODE) {
                self.warn(item, format!("{file} has mode {mode:o}, expected 600"));
            }
        }
    }

    fn lifetime(&mut self, entry: &Entry) {
        match entry.status(self.now, self.renew_fraction) {
            Status::Expired => self.error(&entry.id, "expired"),
            Status::RenewSoon => self.warn(
                &entry.id,
                format!(
                    "due for renewal ({} days left)",
                    entry.days_left(self.now).unwrap_or(0)
                ),
            ),
            Status::Valid => {}
        }
    }

    fn cert_item(&mut self, entry: &Entry, manifest: &Manifest) {
        let id = entry.id.as_str();
        let Some(chain) = self.certs(id, &entry.path) else {
            return;
        };
        let leaf = &chain[0];
        if leaf.fingerprint != entry.fingerprint {
            self.error(
                id,
                format!(
                    "{} is not the certificate recorded in the manifest (replaced or swapped)",
                    entry.path
                ),
            );
        }
        if self.now >= leaf.not_after {
            self.error(id, format!("{} expired at {}", entry.path, leaf.not_after));
        } else if leaf.due_for_renewal(self.now, self.renew_fraction) {
            self.warn(
                id,
                format!(
                    "due for renewal ({} days left)",
                    (leaf.not_after - self.now).whole_days()
                ),
            );
        }
        if let Some(key_file) = &entry.key_path {
            self.secret_mode(id, key_file);
            if let Some(bytes) = self.read(id, key_file) {
                match std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|t| cert::parse_key(t, &self.dir.join(key_file)).ok())
                {
                    Some(key) if leaf.matches_key(&key) => {}
                    Some(_) => self.error(id, format!("{key_file} does not match {}", entry.path)),
                    None => self.error(id, format!("{key_file} is not a valid private key")),
                }
            }
        }
        let issuer = entry
            .issuer
            .as_deref()
            .and_then(|i| manifest.get(i))
            .and_then(|e| {
                pfs::read_optional(&self.dir.join(&e.path))
                    .ok()
                    .flatten()
                    .map(|b| (e.path.clone(), b))
            })
            .and_then(|(p, b)| cert::parse_pem_chain(&b, &self.dir.join(&p)).ok());
        let root = pfs::read_optional(&self.dir.join("ca.crt"))
            .ok()
            .flatten()
            .and_then(|b| cert::parse_pem_chain(&b, &self.dir.join("ca.crt")).ok());
        let ders: Vec<CertificateDer<'_>> = chain.iter().map(|c| c.der.clone()).collect();
        let bundle = |c: &mut Self, file: &str| -> Vec<CertificateDer<'static>> {
            c.certs(id, file)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.der)
                .collect()
        };
        match entry.kind {
            ItemKind::RootCa if !leaf.is_ca || !leaf.is_signed_by(leaf) => {
                self.error(id, "ca.crt is not a self-signed CA certificate");
            }
            ItemKind::IntermediateCa => {
                let ok = leaf.is_ca && issuer.as_ref().is_some_and(|i| leaf.is_signed_by(&i[0]));
                if !ok {
                    self.error(id, format!("{} is not a CA issued by ca.crt", entry.path));
                }
            }
            ItemKind::ServerCert => {
                let roots: Vec<_> = root.iter().flatten().map(|c| c.der.clone()).collect();
                let name = leaf
                    .sans
                    .iter()
                    .find_map(|s| s.strip_prefix("DNS:"))
                    .map(str::to_owned);
                if let Err(e) =
                    trust::verify_chain(&ders, &roots, Usage::Server, name.as_deref(), self.now)
                {
                    self.error(
                        id,
                        format!("does not verify as a TLS server certificate against ca.crt: {e}"),
                    );
                }
                if leaf.client_auth {
                    self.error(
                        id,
                        "a frontend server certificate must not carry clientAuth",
                    );
                }
            }
            ItemKind::InternodeCert => {
                let trust = bundle(self, "internode-trust.pem");
                for usage in [Usage::Server, Usage::Client] {
                    if let Err(e) = trust::verify_chain(&ders, &trust, usage, None, self.now) {
                        self.error(
                            id,
                            format!("does not verify for internode {usage:?} use: {e}"),
                        );
                    }
                }
            }
            ItemKind::ClientCert => {
                // Each client certificate is checked against the bundle of its own issuing
                // CA (client-trust.pem for callers, gate-trust.pem for the gate).
                let file = entry
                    .issuer
                    .as_deref()
                    .and_then(layout::trust_bundle)
                    .map_or("client-trust.pem", |b| b.file);
                let trust = bundle(self, file);
                if let Err(e) = trust::verify_chain(&ders, &trust, Usage::Client, None, self.now) {
                    self.error(
                        id,
                        format!("does not verify as a client certificate against {file}: {e}"),
                    );
                }
                if leaf.server_auth {
                    self.error(id, "a client certificate must not carry serverAuth");
                }
            }
            _ => {}
        }
    }

    fn jwt(&mut self, entry: &Entry) -> Option<Jwks> {
        let id = entry.id.as_str();
        let key_file = entry
            .key_path
            .clone()
            .unwrap_or_else(|| layout::JWT_PRIVATE.into());
        self.secret_mode(id, &key_file);
        let key = self.read(id, &key_file).and_then(|b| {
            match std::str::from_utf8(&b)
                .map_err(|e| e.to_string())
                .and_then(SigningKey::from_pem)
            {
                Ok(k) => Some(k),
                Err(e) => {
                    self.error(id, format!("{key_file}: {e}"));
                    None
                }
            }
        });
        let public = self.read(id, &entry.path);
        let jwks: Option<Jwks> =
            self.read(id, layout::JWKS)
                .and_then(|b| match serde_json::from_slice(&b) {
                    Ok(j) => Some(j),
                    Err(e) => {
                        self.error(id, format!("{} is not a JWK set: {e}", layout::JWKS));
                        None
                    }
                });
        if let Some(key) = &key {
            if public
                .as_deref()
                .is_some_and(|p| p != key.public_pem().as_bytes())
            {
                self.error(id, format!("{} does not match {key_file}", entry.path));
            }
            if entry.kid.as_deref() != Some(key.kid()) {
                self.error(
                    id,
                    "signing key kid differs from the manifest (replaced or swapped)",
                );
            }
            if let Some(j) = &jwks {
                if j.find(key.kid()) != Some(key.jwk()) {
                    self.error(
                        id,
                        format!("{} does not publish the current signing key", layout::JWKS),
                    );
                }
            }
        }
        self.next_key(id, key.as_ref(), jwks.as_ref());
        self.lifetime(entry);
        jwks
    }

    /// A pending next key (a rotation between publish and switch) must already be published,
    /// or switching to it would get its tokens refused, and must not be the signing key.
    fn next_key(&mut self, id: &str, signing: Option<&SigningKey>, jwks: Option<&Jwks>) {
        let file = layout::JWT_NEXT;
        let Ok(Some(bytes)) = pfs::read_optional(&self.dir.join(file)) else {
            return;
        };
        self.secret_mode(id, file);
        let next = match std::str::from_utf8(&bytes)
            .map_err(|e| e.to_string())
            .and_then(SigningKey::from_pem)
        {
            Ok(k) => k,
            Err(e) => {
                self.error(id, format!("{file}: {e}"));
                return;
            }
        };
        if signing.is_some_and(|s| s.kid() == next.kid()) {
            self.error(
                id,
                format!("{file} holds the signing key itself (a switch that did not finish)"),
            );
        } else if let Some(j) = jwks {
            if j.find(next.kid()) != Some(next.jwk()) {
                self.error(
                    id,
                    format!(
                        "{file} (kid {}) is pending but not published in {}; run the rotation again to republish it",
                        next.kid(),
                        layout::JWKS
                    ),
                );
            }
        }
    }

    /// A trust bundle holds its issuing CA and, during an overlap, the previous certificate
    /// of the same CA: nothing from another trust domain (which would let its certificates
    /// through) and never without the current CA (which would refuse the current leaves).
    fn bundle_item(&mut self, entry: &Entry, manifest: &Manifest) {
        let id = entry.id.as_str();
        let Some(certs) = self.certs(id, &entry.path) else {
            return;
        };
        let Some(ca_entry) = entry.issuer.as_deref().and_then(|i| manifest.get(i)) else {
            self.error(id, "the manifest names no issuing CA for this bundle");
            return;
        };
        let current = certs.iter().find(|c| c.fingerprint == ca_entry.fingerprint);
        let Some(current) = current else {
            self.error(
                id,
                format!("{} does not hold the current {}", entry.path, ca_entry.id),
            );
            return;
        };
        let cn = current.subject_cn.clone();
        for c in &certs {
            if !c.is_ca || c.subject_cn != cn {
                self.error(
                    id,
                    format!(
                        "{} holds {:?}, which is not a certificate of {} ({cn:?})",
                        entry.path, c.subject_cn, ca_entry.id
                    ),
                );
            }
        }
        if certs.len() > 2 {
            self.error(
                id,
                format!(
                    "{} holds {} certificates; at most the current and the previous {}",
                    entry.path,
                    certs.len(),
                    ca_entry.id
                ),
            );
        }
    }

    /// A static token must be bound (`cnf`) to the certificate its CLI profile presents. A
    /// URI other than that certificate's is a warning: the gate would refuse the pair, but
    /// the next `generate` re-binds it. A thumbprint that predates the certificate's
    /// renewal is expected (identity binding) and not reported.
    fn binding(&mut self, entry: &Entry, claims: &jwt::Claims, manifest: &Manifest) {
        let id = entry.id.as_str();
        let Some(cnf) = &claims.cnf else {
            self.error(
                id,
                "carries no cnf claim (not bound to a client certificate); run `bulwark-init generate`",
            );
            return;
        };
        let Some(scope) = jwt::Scope::ALL
            .into_iter()
            .find(|s| layout::token(*s).id == id)
        else {
            return;
        };
        let cert_id = layout::bound_certificate(scope, |c| manifest.get(c).is_some());
        let Some(cert_entry) = manifest.get(cert_id) else {
            self.error(
                id,
                format!("bound certificate {cert_id} is not in the manifest"),
            );
            return;
        };
        let Ok(Some(bytes)) = pfs::read_optional(&self.dir.join(&cert_entry.path)) else {
            // The certificate item reports its own missing file.
            return;
        };
        let want = cert::parse_pem_chain(&bytes, &self.dir.join(&cert_entry.path))
            .ok()
            .and_then(|chain| chain.into_iter().next())
            .and_then(|leaf| crate::binding::uri_san(&leaf.der));
        if cnf.uri.is_none() || cnf.uri != want {
            self.warn(
                id,
                format!(
                    "cnf.uri {:?} is not the URI SAN of {} ({:?}); the gate refuses this pair until `bulwark-init generate` re-binds the token",
                    cnf.uri.as_deref().unwrap_or(""),
                    cert_entry.path,
                    want.as_deref().unwrap_or("")
                ),
            );
        }
    }

    fn token(&mut self, entry: &Entry, jwks: Option<&Jwks>, manifest: &Manifest) {
        let id = entry.id.as_str();
        self.secret_mode(id, &entry.path);
        let Some(bytes) = self.read(id, &entry.path) else {
            return;
        };
        let Some(jwks) = jwks else {
            self.error(id, "cannot be checked without a valid jwks.json");
            return;
        };
        let text = String::from_utf8_lossy(&bytes);
        // An inventory check, not an authorization decision: the lifetime policy belongs to
        // the services that accept tokens, and this check has no settings to take it from.
        let opts = jwt::VerifyOptions::new(time::Duration::MAX);
        match jwt::verify(text.trim(), jwks, self.now, &opts) {
            Ok(claims) => {
                let scope_ok = crate::jwt::Scope::ALL
                    .iter()
                    .any(|s| layout::token(*s).id == id && s.as_str() == claims.scope);
                if !scope_ok {
                    self.error(
                        id,
                        format!(
                            "carries scope {:?}, not the one its file name says",
                            claims.scope
                        ),
                    );
                }
                let shape_ok = !claims.permissions.is_empty()
                    && claims.permissions.iter().all(|p| {
                        p.split_once(':').is_some_and(|(ns, role)| {
                            !ns.is_empty() && matches!(role, "read" | "write" | "worker" | "admin")
                        })
                    });
                if !shape_ok {
                    self.error(
                        id,
                        "permissions are not in Temporal's <namespace>:<role> form",
                    );
                }
                self.binding(entry, &claims, manifest);
                self.lifetime(entry);
            }
            Err(e) => self.error(
                id,
                format!("{} rejected against jwks.json: {e}", entry.path),
            ),
        }
    }
}

/// Check `dir`. Returns every finding; the directory is sound when no finding is an error.
pub fn verify_dir(dir: &Path, now: OffsetDateTime, renew_fraction: f64) -> Vec<Problem> {
    let mut c = Checker {
        dir,
        now,
        renew_fraction,
        problems: Vec::new(),
    };
    if let Ok(mode) = pfs::mode_of(dir) {
        if !pfs::dir_mode_acceptable(mode) {
            c.error(
                "directory",
                format!(
                    "{} has mode {mode:o}, expected {DIR_MODE:o} (at most {DIR_MODE_MAX:o})",
                    dir.display()
                ),
            );
        }
    }
    let Some(bytes) = c.read("manifest", MANIFEST_FILE) else {
        return c.problems;
    };
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            c.error("manifest", format!("{MANIFEST_FILE} is not valid: {e}"));
            return c.problems;
        }
    };
    // Items every directory has whatever the settings: one missing means the directory
    // predates it (e.g. the gate's CA) and `generate` has not been run since.
    let required = [layout::ROOT_CA, layout::GATE_CLIENT, layout::JWT_KEY_ID]
        .into_iter()
        .chain(crate::rotate::ca::ISSUING_CAS)
        .chain(layout::TRUST_BUNDLES.iter().map(|b| b.id))
        .chain(layout::STATIC_TOKEN_IDS);
    for id in required {
        if manifest.get(id).is_none() {
            c.error(
                id,
                format!("missing from {MANIFEST_FILE}; run `bulwark-init generate` to add it"),
            );
        }
    }
    let mut jwks = None;
    for entry in &manifest.items {
        match entry.kind {
            ItemKind::JwtSigningKey => jwks = c.jwt(entry),
            ItemKind::Token | ItemKind::CliConfig => {}
            ItemKind::TrustBundle => {
                if let Some(bytes) = c.read(&entry.id, &entry.path) {
                    if crate::fingerprint(&bytes) != entry.fingerprint {
                        c.error(
                            &entry.id,
                            format!("{} differs from the manifest", entry.path),
                        );
                    }
                    if cert::parse_pem_chain(&bytes, &dir.join(&entry.path)).is_err() {
                        c.error(
                            &entry.id,
                            format!("{} is not a PEM certificate bundle", entry.path),
                        );
                    } else {
                        c.bundle_item(entry, &manifest);
                    }
                }
            }
            _ => c.cert_item(entry, &manifest),
        }
    }
    for entry in manifest.items.iter().filter(|e| e.kind == ItemKind::Token) {
        c.token(entry, jwks.as_ref(), &manifest);
    }
    for entry in manifest
        .items
        .iter()
        .filter(|e| e.kind == ItemKind::CliConfig)
    {
        c.secret_mode(&entry.id, &entry.path);
    }
    c.problems
}
