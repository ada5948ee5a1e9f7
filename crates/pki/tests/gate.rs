//! bulwark-gate's PKI: the gate CA, its client certificate and trust bundle, and the
//! certificate binding (`cnf`) of the static tokens. Real certs directories, a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use bulwark_pki::{
    Mode, Settings,
    binding::{self, BindingError, Confirmation},
    cert::{self, CertInfo},
    generate,
    jwt::{self as pjwt, Claims, Jwks, Scope, VerifyOptions},
    layout,
    lock::DirLock,
    manifest::{MANIFEST_FILE, Manifest},
    rotate::{Clock, ManualClock, ca, jwt, reissue},
    trust::{self, Usage},
    verify::{Problem, Severity, verify_dir},
};
use common::snapshot;
use rustls_pki_types::CertificateDer;
use sha2::Digest;
use time::{Duration, OffsetDateTime};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    clock: ManualClock,
    settings: Settings,
}

impl Fixture {
    fn new() -> Self {
        Self::with(Settings::default())
    }

    fn with(settings: Settings) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let clock = ManualClock::new(now);
        generate(&dir, &settings, Mode::Missing, clock.now()).unwrap();
        Fixture {
            _tmp: tmp,
            dir,
            clock,
            settings,
        }
    }

    fn lock(&self) -> DirLock {
        DirLock::acquire(&self.dir).unwrap()
    }

    fn manifest(&self) -> Manifest {
        serde_json::from_slice(&std::fs::read(self.dir.join(MANIFEST_FILE)).unwrap()).unwrap()
    }

    fn write_manifest(&self, m: &Manifest) {
        std::fs::write(self.dir.join(MANIFEST_FILE), m.to_json()).unwrap();
    }

    fn fp(&self, id: &str) -> String {
        self.manifest().get(id).unwrap().fingerprint.clone()
    }

    fn problems(&self) -> Vec<Problem> {
        verify_dir(&self.dir, self.clock.now(), 2.0 / 3.0)
    }

    fn errors(&self) -> Vec<String> {
        self.problems()
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect()
    }

    fn assert_sound(&self) {
        let errors = self.errors();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    fn chain(&self, file: &str) -> Vec<CertificateDer<'static>> {
        common::certs(&self.dir, file)
    }

    fn client_ok(&self, leaf_file: &str, trust_file: &str) -> bool {
        trust::verify_chain(
            &self.chain(leaf_file),
            &self.chain(trust_file),
            Usage::Client,
            None,
            self.clock.now(),
        )
        .is_ok()
    }

    fn jwks(&self) -> Jwks {
        serde_json::from_slice(&std::fs::read(self.dir.join(layout::JWKS)).unwrap()).unwrap()
    }

    fn token(&self, scope: Scope) -> String {
        std::fs::read_to_string(self.dir.join(layout::token(scope).file))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn claims(&self, scope: Scope) -> Claims {
        pjwt::verify(
            &self.token(scope),
            &self.jwks(),
            self.clock.now(),
            &VerifyOptions::new(self.settings.token_ttl).audience(&self.settings.audience),
        )
        .unwrap()
    }
}

/// The first certificate of a PEM file, decoded by hand (not the PEM code under test).
fn der_by_hand(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// RFC 8705 x5t#S256 computed independently: sha2 over the hand-decoded DER, base64url.
fn x5t_by_hand(path: &Path) -> String {
    let digest = sha2::Sha256::digest(der_by_hand(path));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// The URI SAN as the inventory parser reports it (x509-parser through CertInfo), not
/// through `binding::uri_san`.
fn uri_of(dir: &Path, file: &str) -> String {
    let info = CertInfo::parse(
        CertificateDer::from(der_by_hand(&dir.join(file))),
        &dir.join(file),
    )
    .unwrap();
    let uris: Vec<&str> = info
        .sans
        .iter()
        .filter_map(|s| s.strip_prefix("URI:"))
        .collect();
    assert_eq!(uris.len(), 1, "{file}: {:?}", info.sans);
    uris[0].to_owned()
}

fn bundle_fps(dir: &Path, file: &str) -> Vec<String> {
    cert::parse_pem_chain(&std::fs::read(dir.join(file)).unwrap(), &dir.join(file))
        .unwrap()
        .into_iter()
        .map(|c| c.fingerprint)
        .collect()
}

const GATE_FILES: [&str; 5] = [
    "gate-ca.crt",
    "gate-ca.key",
    "gate-client.crt",
    "gate-client.key",
    "gate-trust.pem",
];

// ---------------------------------------------------------------------------------------
// Gate items

#[test]
fn gate_items_are_generated_in_their_own_trust_domain() {
    let f = Fixture::new();
    for file in GATE_FILES {
        assert!(f.dir.join(file).exists(), "{file}");
    }
    let m = f.manifest();
    assert_eq!(
        m.get("gate-client").unwrap().issuer.as_deref(),
        Some("gate-ca")
    );
    assert_eq!(m.get("gate-ca").unwrap().issuer.as_deref(), Some("ca"));
    assert_eq!(
        m.get("gate-trust").unwrap().issuer.as_deref(),
        Some("gate-ca")
    );

    let ca = cert::parse_pem_chain(
        &std::fs::read(f.dir.join("gate-ca.crt")).unwrap(),
        &f.dir.join("gate-ca.crt"),
    )
    .unwrap();
    assert_eq!(ca[0].subject_cn, "Bulwark Gate CA");
    assert!(ca[0].is_ca);
    let leaf = cert::parse_pem_chain(
        &std::fs::read(f.dir.join("gate-client.crt")).unwrap(),
        &f.dir.join("gate-client.crt"),
    )
    .unwrap();
    assert_eq!(leaf[0].subject_cn, "bulwark-gate");
    assert!(leaf[0].client_auth && !leaf[0].server_auth && !leaf[0].is_ca);
    assert_eq!(
        uri_of(&f.dir, "gate-client.crt"),
        format!("spiffe://{}/gate", f.settings.trust_domain)
    );
    assert!(leaf[0].is_signed_by(&ca[0]));
    // Leaf + its intermediate, like every leaf file.
    assert_eq!(leaf.len(), 2);
    // gate-ca lives as long as the other issuing CAs.
    let client_ca = m.get("client-ca").unwrap();
    let gate_ca = m.get("gate-ca").unwrap();
    assert_eq!(
        gate_ca.not_after.unwrap() - gate_ca.not_before.unwrap(),
        client_ca.not_after.unwrap() - client_ca.not_before.unwrap()
    );

    assert_eq!(bundle_fps(&f.dir, "gate-trust.pem"), [f.fp("gate-ca")]);
    // The domains stay apart: the frontend (gate-trust) accepts only the gate, the gate
    // (client-trust) accepts callers but not its own upstream certificate.
    assert!(f.client_ok("gate-client.crt", "gate-trust.pem"));
    assert!(!f.client_ok("gate-client.crt", "client-trust.pem"));
    assert!(!f.client_ok("gate-client.crt", "internode-trust.pem"));
    for caller in ["temporal-client.crt", "client-api.crt", "client-admin.crt"] {
        assert!(f.client_ok(caller, "client-trust.pem"), "{caller}");
        assert!(!f.client_ok(caller, "gate-trust.pem"), "{caller}");
    }
    assert!(!f.client_ok("internode.crt", "gate-trust.pem"));
    f.assert_sound();
    assert!(layout::item_ids(&f.settings).contains(&"gate-trust".to_owned()));
}

#[test]
fn generate_adds_the_gate_items_to_an_existing_directory_and_touches_nothing_else() {
    let f = Fixture::new();
    // A directory from before the gate: no gate files, no gate entries.
    for file in GATE_FILES {
        std::fs::remove_file(f.dir.join(file)).unwrap();
    }
    let mut m = f.manifest();
    m.items
        .retain(|e| !["gate-ca", "gate-client", "gate-trust"].contains(&e.id.as_str()));
    f.write_manifest(&m);

    // verify notices what is missing.
    let errors = f.errors();
    for id in ["gate-ca", "gate-client", "gate-trust"] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(id) && e.contains("missing")),
            "{id}: {errors:#?}"
        );
    }

    let before = snapshot(&f.dir);
    f.clock.advance(Duration::minutes(1));
    let report = generate(&f.dir, &f.settings, Mode::Missing, f.clock.now()).unwrap();
    let mut changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    changed.sort();
    assert_eq!(changed, ["gate-ca", "gate-client", "gate-trust"]);
    let after = snapshot(&f.dir);
    for (name, bytes) in &before {
        if name != MANIFEST_FILE {
            assert_eq!(Some(bytes), after.get(name), "{name} was touched");
        }
    }
    for file in GATE_FILES {
        assert!(after.contains_key(file), "{file}");
    }
    assert_eq!(bundle_fps(&f.dir, "gate-trust.pem"), [f.fp("gate-ca")]);
    f.assert_sound();
    // And a second run is a no-op.
    let again = generate(&f.dir, &f.settings, Mode::Missing, f.clock.now()).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
}

#[test]
fn verify_checks_the_gate_bundle_and_chain() {
    let f = Fixture::new();
    // The frontend's trust replaced by the callers' CA: a caller could skip the gate.
    let client_ca = std::fs::read(f.dir.join("client-ca.crt")).unwrap();
    std::fs::write(f.dir.join("gate-trust.pem"), &client_ca).unwrap();
    let errors = f.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("gate-trust") && e.contains("does not hold the current gate-ca")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("gate-client") && e.contains("against gate-trust.pem")),
        "{errors:#?}"
    );

    // gate-ca plus a foreign CA: the bundle holds the current CA but is still refused.
    let gate_ca = std::fs::read(f.dir.join("gate-ca.crt")).unwrap();
    let mixed = [gate_ca.clone(), client_ca].concat();
    std::fs::write(f.dir.join("gate-trust.pem"), &mixed).unwrap();
    let mut m = f.manifest();
    let entry = m.items.iter_mut().find(|e| e.id == "gate-trust").unwrap();
    entry.fingerprint = bulwark_pki::fingerprint(&mixed);
    f.write_manifest(&m);
    let errors = f.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("gate-trust") && errors[0].contains("Bulwark Client CA"),
        "{errors:#?}"
    );
}

#[test]
fn gate_client_reissue_keeps_the_bundle() {
    let f = Fixture::new();
    let bundle = std::fs::read(f.dir.join("gate-trust.pem")).unwrap();
    let old = f.fp("gate-client");
    assert!(reissue::leaf_ids(&f.settings).contains(&"gate-client".to_owned()));
    let report = reissue::leaf(&f.lock(), &f.settings, "gate-client", &f.clock).unwrap();
    let changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(changed, ["gate-client"]);
    assert_ne!(f.fp("gate-client"), old);
    assert_eq!(std::fs::read(f.dir.join("gate-trust.pem")).unwrap(), bundle);
    assert!(f.client_ok("gate-client.crt", "gate-trust.pem"));
    f.assert_sound();
}

#[test]
fn gate_ca_overlap_keeps_the_gate_bundle_correct() {
    let f = Fixture::new();
    assert!(ca::ISSUING_CAS.contains(&layout::GATE_CA));
    let old_ca = f.fp("gate-ca");
    let old_leaf = f.fp("gate-client");
    let client_trust = std::fs::read(f.dir.join("client-trust.pem")).unwrap();
    let client_api = f.fp("client-api");

    let report = ca::begin_overlap(&f.lock(), &f.settings, layout::GATE_CA, &f.clock).unwrap();
    let changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    for id in ["gate-ca", "gate-client", "gate-trust"] {
        assert!(changed.contains(&id), "{id}: {changed:?}");
    }
    let new_ca = f.fp("gate-ca");
    assert_ne!(new_ca, old_ca);
    assert_ne!(f.fp("gate-client"), old_leaf);
    assert_eq!(
        bundle_fps(&f.dir, "gate-trust.pem"),
        [new_ca.clone(), old_ca]
    );
    // The other domain is untouched.
    assert_eq!(
        std::fs::read(f.dir.join("client-trust.pem")).unwrap(),
        client_trust
    );
    assert_eq!(f.fp("client-api"), client_api);
    assert!(f.client_ok("gate-client.crt", "gate-trust.pem"));
    f.assert_sound();

    // An ordinary run during the overlap keeps both.
    reissue::due(&f.lock(), &f.settings, &f.clock).unwrap();
    assert_eq!(bundle_fps(&f.dir, "gate-trust.pem").len(), 2);

    let report = ca::end_overlap(&f.lock(), &f.settings, layout::GATE_CA, &f.clock).unwrap();
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.id == "gate-trust" && c.reason == "overlap ended"),
        "{:?}",
        report.changes
    );
    assert_eq!(bundle_fps(&f.dir, "gate-trust.pem"), [new_ca]);
    f.assert_sound();
    reissue::due(&f.lock(), &f.settings, &f.clock).unwrap();
    assert_eq!(bundle_fps(&f.dir, "gate-trust.pem").len(), 1);
}

// ---------------------------------------------------------------------------------------
// Binding

#[test]
fn thumbprint_matches_an_independent_computation() {
    let f = Fixture::new();
    for file in ["gate-client.crt", "client-admin.crt", "temporal-client.crt"] {
        let der = der_by_hand(&f.dir.join(file));
        let want = x5t_by_hand(&f.dir.join(file));
        assert_eq!(binding::thumbprint_s256(&der), want, "{file}");
        assert_eq!(want.len(), 43, "unpadded base64url of 32 bytes");
        assert!(!want.contains(['=', '+', '/']));
        let cnf = Confirmation::for_certificate(&der).unwrap();
        assert_eq!(cnf.x5t_s256, want);
        assert_eq!(cnf.uri.as_deref(), Some(uri_of(&f.dir, file).as_str()));
        assert_eq!(binding::uri_san(&der), cnf.uri);
    }
    // A CA has no URI SAN: nothing to bind a token to.
    let ca = der_by_hand(&f.dir.join("client-ca.crt"));
    assert_eq!(binding::uri_san(&ca), None);
    assert!(matches!(
        Confirmation::for_certificate(&ca),
        Err(BindingError::NoUriSan)
    ));
}

#[test]
fn thumbprint_matches_openssl_when_available() {
    let f = Fixture::new();
    let path = f.dir.join("gate-client.crt");
    let out = std::process::Command::new("openssl")
        .args(["x509", "-outform", "der", "-in"])
        .arg(&path)
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        eprintln!("openssl not available; skipped");
        return;
    };
    let want =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&out.stdout));
    assert_eq!(binding::thumbprint_s256(&der_by_hand(&path)), want);
}

#[test]
fn static_tokens_are_bound_to_their_certificates() {
    let f = Fixture::new();
    for (scope, file, suffix) in [
        (Scope::System, "client-admin.crt", "/client/admin"),
        (Scope::Worker, "client-worker.crt", "/client/worker"),
        (
            Scope::Client,
            "temporal-client.crt",
            "/client/temporal-client",
        ),
    ] {
        let cnf = f.claims(scope).cnf.expect("static token without cnf");
        let uri = uri_of(&f.dir, file);
        assert!(uri.ends_with(suffix), "{uri}");
        assert_eq!(cnf.uri.as_deref(), Some(uri.as_str()), "{scope:?}");
        assert_eq!(cnf.x5t_s256, x5t_by_hand(&f.dir.join(file)), "{scope:?}");
        assert_eq!(
            layout::token_certificate(&f.settings, scope),
            file.trim_end_matches(".crt")
        );
    }
    // The CLI profile of each token presents the same certificate.
    let cli = std::fs::read_to_string(f.dir.join(layout::CLI_CONFIG)).unwrap();
    let admin = cli.split("[profile.admin.tls]").nth(1).unwrap();
    assert!(
        admin.lines().nth(1).unwrap().contains("client-admin.crt"),
        "{cli}"
    );
}

#[test]
fn tokens_fall_back_to_temporal_client_without_admin_and_worker_identities() {
    let mut settings = Settings::default();
    settings.identities = vec!["api".parse().unwrap()];
    let f = Fixture::with(settings);
    let uri = uri_of(&f.dir, "temporal-client.crt");
    for scope in Scope::ALL {
        let cnf = f.claims(scope).cnf.unwrap();
        assert_eq!(cnf.uri.as_deref(), Some(uri.as_str()), "{scope:?}");
    }
    f.assert_sound();
}

#[test]
fn reissued_certificate_keeps_its_token_by_identity() {
    let f = Fixture::new();
    let token = f.token(Scope::System);
    let cnf = f.claims(Scope::System).cnf.unwrap();
    reissue::leaf(&f.lock(), &f.settings, "client-admin", &f.clock).unwrap();
    // The token is not re-signed: the identity it names did not change...
    assert_eq!(f.token(Scope::System), token);
    assert_eq!(cnf.uri, Some(uri_of(&f.dir, "client-admin.crt")));
    // ...only the thumbprint is of the previous certificate.
    assert_ne!(cnf.x5t_s256, x5t_by_hand(&f.dir.join("client-admin.crt")));
    let problems = f.problems();
    assert!(
        problems.iter().all(|p| p.item != "system-token"),
        "{problems:#?}"
    );
    f.assert_sound();
}

fn sign(f: &Fixture, scope: Scope, cnf: Option<Confirmation>) -> String {
    let key = jwt::current(&f.dir).unwrap();
    let mut claims = Claims::new(
        layout::token(scope).subject,
        &f.settings.issuer,
        &f.settings.audience,
        scope.as_str(),
        scope.permissions(&f.settings.namespaces),
        f.clock.now(),
        f.settings.token_ttl,
    );
    if let Some(cnf) = cnf {
        claims = claims.with_cnf(cnf);
    }
    key.sign(&claims).unwrap()
}

#[test]
fn old_tokens_without_cnf_still_verify_but_fail_the_inventory_until_rebound() {
    let f = Fixture::new();
    let old = sign(&f, Scope::Worker, None);
    // The wire form has no cnf at all (not "cnf": null).
    let payload = old.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert!(value.get("cnf").is_none(), "{value}");
    // jwt::verify does not judge the binding: that is the gate's job.
    let claims = pjwt::verify(
        &old,
        &f.jwks(),
        f.clock.now(),
        &VerifyOptions::new(f.settings.token_ttl).audience(&f.settings.audience),
    )
    .unwrap();
    assert_eq!(claims.cnf, None);

    std::fs::write(f.dir.join("worker-token.jwt"), format!("{old}\n")).unwrap();
    let errors = f.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("worker-token") && e.contains("no cnf")),
        "{errors:#?}"
    );
    let report = generate(&f.dir, &f.settings, Mode::Missing, f.clock.now()).unwrap();
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.id == "worker-token" && c.reason == "binding added"),
        "{:?}",
        report.changes
    );
    assert!(f.claims(Scope::Worker).cnf.is_some());
    f.assert_sound();
}

#[test]
fn a_token_bound_to_another_identity_is_a_warning_and_gets_rebound() {
    let f = Fixture::new();
    let der = der_by_hand(&f.dir.join("client-api.crt"));
    let wrong = Confirmation::for_certificate(&der).unwrap();
    let token = sign(&f, Scope::System, Some(wrong.clone()));
    std::fs::write(f.dir.join("system-token.jwt"), format!("{token}\n")).unwrap();
    assert_eq!(f.claims(Scope::System).cnf, Some(wrong));

    let problems = f.problems();
    let mine: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.item == "system-token")
        .collect();
    assert_eq!(mine.len(), 1, "{problems:#?}");
    assert_eq!(mine[0].severity, Severity::Warning);
    assert!(mine[0].message.contains("client-admin.crt"), "{}", mine[0]);
    f.assert_sound();

    let report = generate(&f.dir, &f.settings, Mode::Missing, f.clock.now()).unwrap();
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.id == "system-token" && c.reason == "binding changed"),
        "{:?}",
        report.changes
    );
    assert_eq!(
        f.claims(Scope::System).cnf.unwrap().uri,
        Some(uri_of(&f.dir, "client-admin.crt"))
    );
    assert!(f.problems().iter().all(|p| p.item != "system-token"));
}
