//! The rotation verbs against a real certs directory, with a manual clock: no server, no
//! database, no waiting.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};

use bulwark_pki::{
    Error, Mode, Settings, generate,
    jwt::{Jwks, VerifyOptions},
    layout,
    lock::DirLock,
    manifest::{MANIFEST_FILE, Manifest},
    rotate::{self, Clock, ManualClock, ca, jwt, reissue},
    verify::{Severity, verify_dir},
};
use common::snapshot;
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    // Whole seconds: the manifest and the token claims round-trip exactly.
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap()
}

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
        let clock = ManualClock::new(t0());
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

    fn jwks(&self) -> Jwks {
        serde_json::from_slice(&std::fs::read(self.dir.join(layout::JWKS)).unwrap()).unwrap()
    }

    fn kids(&self) -> Vec<String> {
        self.jwks().keys.into_iter().map(|k| k.kid).collect()
    }

    fn current_kid(&self) -> String {
        jwt::current(&self.dir).unwrap().kid().to_owned()
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap()
    }

    /// `verify` finds no error at the clock's time (warnings, e.g. "due for renewal", allowed).
    fn assert_sound(&self) {
        let errors: Vec<String> = verify_dir(&self.dir, self.clock.now(), 2.0 / 3.0)
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    fn errors(&self) -> Vec<String> {
        verify_dir(&self.dir, self.clock.now(), 2.0 / 3.0)
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect()
    }
}

fn token_kid(token: &str) -> String {
    jsonwebtoken::decode_header(token.trim())
        .unwrap()
        .kid
        .unwrap()
}

fn fingerprints(dir: &Path, file: &str) -> Vec<String> {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    bulwark_pki::cert::parse_pem_chain(&bytes, &dir.join(file))
        .unwrap()
        .into_iter()
        .map(|c| c.fingerprint)
        .collect()
}

// ---------------------------------------------------------------------------------------
// JWT key

#[test]
fn retire_after_is_the_longest_token_lifetime_plus_the_margin() {
    let mut s = Settings::default();
    let t = t0();
    assert_eq!(
        jwt::retire_after(&s, t),
        t + Duration::hours(24) + Duration::minutes(1)
    );
    s.access_token_ttl = Duration::hours(48);
    assert_eq!(
        jwt::retire_after(&s, t),
        t + Duration::hours(48) + jwt::RETIRE_MARGIN
    );
    assert_eq!(jwt::RETIRE_MARGIN, Duration::minutes(1));
    assert_eq!(Settings::default().access_token_ttl, Duration::minutes(15));
    s.access_token_ttl = Duration::ZERO;
    assert!(s.validate().is_err(), "a zero access token TTL is refused");
}

#[test]
fn generate_retires_a_renewed_key_by_the_same_rule() {
    let mut s = Settings::default();
    s.access_token_ttl = Duration::hours(48);
    let f = Fixture::with(s);
    let old = f.current_kid();
    generate(
        &f.dir,
        &f.settings,
        Mode::Rotate(&[layout::JWT_KEY_ID.into()]),
        f.clock.now(),
    )
    .unwrap();
    let m = f.manifest();
    let retired = m.retired_keys.iter().find(|k| k.jwk.kid == old).unwrap();
    assert_eq!(
        retired.retire_after,
        jwt::retire_after(&f.settings, f.clock.now())
    );
}

#[test]
fn prepare_publishes_the_next_key_beside_the_current_one_which_still_signs() {
    let f = Fixture::new();
    let before = snapshot(&f.dir);
    let current = f.current_kid();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();

    assert_eq!(p.current.kid(), current);
    assert_ne!(p.next.kid(), current);
    assert_eq!(f.kids(), [current.clone(), p.next.kid().to_owned()]);
    // The current key still signs: its files and the tokens are untouched.
    for file in [layout::JWT_PRIVATE, layout::JWT_PUBLIC, "client-token.jwt"] {
        assert_eq!(before[file], f.read(file).into_bytes(), "{file} changed");
    }
    assert_eq!(
        f.manifest().get(layout::JWT_KEY_ID).unwrap().kid,
        Some(current)
    );
    assert_eq!(
        jwt::pending(&f.dir).unwrap().map(|k| k.kid().to_owned()),
        Some(p.next.kid().to_owned())
    );
    let horizon = f
        .manifest()
        .retired_keys
        .iter()
        .find(|k| k.jwk.kid == p.next.kid())
        .unwrap()
        .retire_after;
    assert_eq!(horizon, f.clock.now() + jwt::NEXT_KEY_PUBLICATION);
    // Verifiers that re-read the JWKS accept tokens from the next key before it signs.
    let claims = bulwark_pki::jwt::Claims::new(
        "probe",
        &f.settings.issuer,
        &f.settings.audience,
        "system",
        vec!["default:admin".into()],
        f.clock.now(),
        Duration::minutes(5),
    );
    let token = p.next.sign(&claims).unwrap();
    bulwark_pki::jwt::verify(
        &token,
        &f.jwks(),
        f.clock.now(),
        &VerifyOptions::new(Duration::hours(1)),
    )
    .unwrap();
    assert!(format!("{p:?}").contains(p.next.kid()));
    assert!(!format!("{p:?}").contains("PRIVATE"));
    f.assert_sound();

    // An ordinary generate meanwhile keeps publishing it.
    generate(&f.dir, &f.settings, Mode::Missing, f.clock.now()).unwrap();
    assert!(f.kids().contains(&p.next.kid().to_owned()));
    assert!(jwt::pending(&f.dir).unwrap().is_some());
}

#[test]
fn prepare_replaces_a_damaged_next_key_file() {
    let f = Fixture::new();
    let first = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    std::fs::write(f.dir.join(layout::JWT_NEXT), "not a key").unwrap();
    let second = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    assert_ne!(first.next.kid(), second.next.kid());
    assert_eq!(
        jwt::pending(&f.dir).unwrap().map(|k| k.kid().to_owned()),
        Some(second.next.kid().to_owned())
    );
    assert!(
        f.kids().contains(&second.next.kid().to_owned()),
        "{:?}",
        f.kids()
    );
    f.assert_sound();
}

#[test]
fn prepare_twice_reuses_the_next_key() {
    let f = Fixture::new();
    let first = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    f.clock.advance(Duration::hours(1));
    let second = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    assert_eq!(first.next.kid(), second.next.kid());
    assert_eq!(f.kids().len(), 2, "{:?}", f.kids());
    let m = f.manifest();
    let entries: Vec<_> = m
        .retired_keys
        .iter()
        .filter(|k| k.jwk.kid == second.next.kid())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].retire_after,
        f.clock.now() + jwt::NEXT_KEY_PUBLICATION,
        "the horizon is renewed"
    );
    f.assert_sound();
}

#[test]
fn activate_switches_and_keeps_the_old_key_published_until_the_rule() {
    let f = Fixture::new();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    let generation = f.manifest().get(layout::JWT_KEY_ID).unwrap().generation;
    f.clock.advance(Duration::minutes(5));
    let a = jwt::activate(&f.lock(), &f.settings, &p, &f.clock).unwrap();

    assert_eq!(a.old_kid, p.current.kid());
    assert_eq!(a.new_kid, p.next.kid());
    assert_eq!(
        a.retire_after,
        jwt::retire_after(&f.settings, f.clock.now())
    );
    assert_eq!(f.current_kid(), a.new_kid);
    assert_eq!(f.kids(), [a.new_kid.clone(), a.old_kid.clone()]);
    let m = f.manifest();
    let entry = m.get(layout::JWT_KEY_ID).unwrap();
    assert_eq!(entry.kid.as_deref(), Some(a.new_kid.as_str()));
    assert_eq!(entry.generation, generation + 1);
    assert_eq!(entry.rotated_at, Some(f.clock.now()));
    assert_eq!(
        m.retired_keys.len(),
        1,
        "the next key's horizon entry is gone"
    );
    assert_eq!(m.retired_keys[0].jwk.kid, a.old_kid);
    assert_eq!(m.retired_keys[0].retire_after, a.retire_after);
    assert!(!f.dir.join(jwt::NEXT_KEY_FILE).exists());
    assert!(jwt::pending(&f.dir).unwrap().is_none());
    // Tokens are not re-issued by the switch; they still verify against the old key.
    assert_eq!(token_kid(&f.read("client-token.jwt")), a.old_kid);
    f.assert_sound();

    // A second activate of the same preparation refuses: the next key is no longer pending.
    let again = jwt::activate(&f.lock(), &f.settings, &p, &f.clock).unwrap_err();
    assert!(matches!(again, Error::SigningKeyChanged { ref kid } if *kid == a.new_kid));
}

#[test]
fn activate_after_a_revoke_refuses_and_changes_nothing() {
    let f = Fixture::new();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    let r = jwt::revoke(&f.lock(), &f.settings, &f.clock).unwrap();
    let before = snapshot(&f.dir);
    let err = jwt::activate(&f.lock(), &f.settings, &p, &f.clock).unwrap_err();
    match &err {
        Error::SigningKeyChanged { kid } => assert_eq!(kid, &r.kid),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&r.kid), "{err}");
    assert_eq!(before, snapshot(&f.dir), "a refused switch wrote something");
    assert_eq!(f.kids(), std::slice::from_ref(&r.kid));
    f.assert_sound();
}

#[test]
fn activate_refuses_when_the_next_key_file_is_gone() {
    let f = Fixture::new();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    std::fs::remove_file(f.dir.join(jwt::NEXT_KEY_FILE)).unwrap();
    let before = snapshot(&f.dir);
    let err = jwt::activate(&f.lock(), &f.settings, &p, &f.clock).unwrap_err();
    assert!(matches!(err, Error::SigningKeyChanged { ref kid } if *kid == p.current.kid()));
    assert_eq!(before, snapshot(&f.dir));
}

#[test]
fn prune_keeps_a_retired_key_before_its_horizon_and_drops_it_after() {
    let f = Fixture::new();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    let a = jwt::activate(&f.lock(), &f.settings, &p, &f.clock).unwrap();
    reissue::static_tokens(&f.lock(), &f.settings, &f.clock).unwrap();

    // Past the tokens' renewal point but before the old key's horizon.
    f.clock.advance(Duration::hours(20));
    reissue::due(&f.lock(), &f.settings, &f.clock).unwrap();
    let before = snapshot(&f.dir);
    assert_eq!(
        jwt::prune(&f.lock(), &f.settings, &f.clock).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        before,
        snapshot(&f.dir),
        "a prune with nothing to drop wrote"
    );
    assert!(f.kids().contains(&a.old_kid));
    f.assert_sound();

    f.clock.set(a.retire_after - Duration::seconds(1));
    assert!(
        jwt::prune(&f.lock(), &f.settings, &f.clock)
            .unwrap()
            .is_empty()
    );
    f.clock.set(a.retire_after);
    assert_eq!(
        jwt::prune(&f.lock(), &f.settings, &f.clock).unwrap(),
        std::slice::from_ref(&a.old_kid)
    );
    assert_eq!(f.kids(), std::slice::from_ref(&a.new_kid));
    assert!(f.manifest().retired_keys.is_empty());
    f.assert_sound();
}

#[test]
fn prune_discards_a_next_key_whose_publication_lapsed() {
    let f = Fixture::new();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    f.clock
        .advance(jwt::NEXT_KEY_PUBLICATION - Duration::seconds(1));
    assert!(
        jwt::prune(&f.lock(), &f.settings, &f.clock)
            .unwrap()
            .is_empty()
    );
    assert!(jwt::pending(&f.dir).unwrap().is_some());
    f.clock.advance(Duration::seconds(1));
    assert_eq!(
        jwt::prune(&f.lock(), &f.settings, &f.clock).unwrap(),
        [p.next.kid().to_owned()]
    );
    assert!(jwt::pending(&f.dir).unwrap().is_none());
    assert_eq!(f.kids(), [p.current.kid().to_owned()]);
    // Its rotation cannot be finished any more.
    assert!(matches!(
        jwt::activate(&f.lock(), &f.settings, &p, &f.clock),
        Err(Error::SigningKeyChanged { .. })
    ));
}

#[test]
fn generate_discards_a_next_key_it_no_longer_publishes() {
    let f = Fixture::new();
    jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    f.clock.advance(jwt::NEXT_KEY_PUBLICATION);
    let report = reissue::due(&f.lock(), &f.settings, &f.clock).unwrap();
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.id == layout::JWT_KEY_ID && c.reason == "unpublished next key discarded"),
        "{:?}",
        report.changes
    );
    assert!(jwt::pending(&f.dir).unwrap().is_none());
    assert_eq!(f.kids().len(), 1);
}

#[test]
fn revoke_leaves_only_the_new_key_and_discards_the_next_key() {
    let f = Fixture::new();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    let r = jwt::revoke(&f.lock(), &f.settings, &f.clock).unwrap();
    assert_eq!(f.kids(), std::slice::from_ref(&r.kid));
    assert_eq!(f.current_kid(), r.kid);
    let mut revoked = r.revoked.clone();
    revoked.sort();
    let mut expected = vec![p.current.kid().to_owned(), p.next.kid().to_owned()];
    expected.sort();
    assert_eq!(revoked, expected);
    assert!(!f.dir.join(jwt::NEXT_KEY_FILE).exists());
    assert!(f.manifest().retired_keys.is_empty());
    for t in layout::STATIC_TOKEN_IDS {
        assert_eq!(token_kid(&f.read(&format!("{t}.jwt"))), r.kid, "{t}");
    }
    f.assert_sound();
}

#[test]
fn revoke_also_removes_a_next_key_file_that_does_not_parse() {
    let f = Fixture::new();
    std::fs::write(f.dir.join(jwt::NEXT_KEY_FILE), "garbage").unwrap();
    jwt::revoke(&f.lock(), &f.settings, &f.clock).unwrap();
    assert!(!f.dir.join(jwt::NEXT_KEY_FILE).exists());
    f.assert_sound();
}

#[test]
fn the_compatibility_wrappers_revoke_and_discard_too() {
    let f = Fixture::new();
    jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    let r = bulwark_pki::revoke_jwt_key(&f.dir, &f.settings, f.clock.now()).unwrap();
    assert_eq!(f.kids(), [r.kid]);
    assert!(!f.dir.join(layout::JWT_NEXT).exists());
    assert_eq!(layout::JWT_NEXT, jwt::NEXT_KEY_FILE);
}

// ---------------------------------------------------------------------------------------
// verify knows the next key

#[test]
fn verify_reports_a_pending_key_that_is_not_published_or_already_signs() {
    let f = Fixture::new();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    // jwks.json without the next key (hand-edited, or an old writer).
    let only_current = Jwks {
        keys: vec![p.current.jwk().clone()],
    };
    std::fs::write(
        f.dir.join(layout::JWKS),
        serde_json::to_vec_pretty(&only_current).unwrap(),
    )
    .unwrap();
    let errors = f.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains(jwt::NEXT_KEY_FILE) && e.contains("not published")),
        "{errors:#?}"
    );

    let g = Fixture::new();
    std::fs::copy(
        g.dir.join(layout::JWT_PRIVATE),
        g.dir.join(jwt::NEXT_KEY_FILE),
    )
    .unwrap();
    let errors = g.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains(jwt::NEXT_KEY_FILE) && e.contains("signing key")),
        "{errors:#?}"
    );
    // A prepare recovers from that leftover with a fresh next key.
    let p = jwt::prepare(&g.lock(), &g.settings, &g.clock).unwrap();
    assert_ne!(p.next.kid(), p.current.kid());
    g.assert_sound();
}

// ---------------------------------------------------------------------------------------
// Issuing CAs

#[test]
fn begin_overlap_trusts_old_and_new_and_reissues_dependents() {
    let f = Fixture::new();
    let m = f.manifest();
    let old_ca = m.get(layout::CLIENT_CA).unwrap().fingerprint.clone();
    let old_leaf = m.get("client-api").unwrap().fingerprint.clone();
    let server = m.get("temporal-server").unwrap().fingerprint.clone();

    let report = ca::begin_overlap(&f.lock(), &f.settings, layout::CLIENT_CA, &f.clock).unwrap();

    let m = f.manifest();
    let new_ca = m.get(layout::CLIENT_CA).unwrap().fingerprint.clone();
    assert_ne!(old_ca, new_ca);
    let bundle = fingerprints(&f.dir, "client-trust.pem");
    assert_eq!(bundle, [new_ca, old_ca]);
    let changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    for id in [
        layout::CLIENT_CA,
        "client-api",
        "temporal-client",
        "client-trust",
    ] {
        assert!(changed.contains(&id), "{id} not re-issued: {changed:?}");
    }
    assert_ne!(m.get("client-api").unwrap().fingerprint, old_leaf);
    assert_eq!(
        m.get("temporal-server").unwrap().fingerprint,
        server,
        "another CA's leaf was touched"
    );
    f.assert_sound();

    // An ordinary run during the overlap keeps both.
    reissue::due(&f.lock(), &f.settings, &f.clock).unwrap();
    assert_eq!(fingerprints(&f.dir, "client-trust.pem").len(), 2);
}

#[test]
fn end_overlap_keeps_only_the_current_ca() {
    let f = Fixture::new();
    ca::begin_overlap(&f.lock(), &f.settings, layout::INTERNODE_CA, &f.clock).unwrap();
    assert_eq!(fingerprints(&f.dir, "internode-trust.pem").len(), 2);
    let report = ca::end_overlap(&f.lock(), &f.settings, layout::INTERNODE_CA, &f.clock).unwrap();
    let current = f
        .manifest()
        .get(layout::INTERNODE_CA)
        .unwrap()
        .fingerprint
        .clone();
    assert_eq!(fingerprints(&f.dir, "internode-trust.pem"), [current]);
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.id == "internode-trust" && c.reason == "overlap ended"),
        "{:?}",
        report.changes
    );
    f.assert_sound();
    // The next ordinary run does not bring the old CA back.
    reissue::due(&f.lock(), &f.settings, &f.clock).unwrap();
    assert_eq!(fingerprints(&f.dir, "internode-trust.pem").len(), 1);

    // The server CA has no bundle: both verbs still work.
    ca::begin_overlap(&f.lock(), &f.settings, layout::SERVER_CA, &f.clock).unwrap();
    ca::end_overlap(&f.lock(), &f.settings, layout::SERVER_CA, &f.clock).unwrap();
    f.assert_sound();
}

#[test]
fn end_overlap_refuses_when_the_bundle_lacks_the_current_ca() {
    let f = Fixture::new();
    ca::begin_overlap(&f.lock(), &f.settings, layout::CLIENT_CA, &f.clock).unwrap();
    // A bundle holding only the old CA (e.g. restored from a backup).
    let bytes = std::fs::read(f.dir.join("client-trust.pem")).unwrap();
    let certs =
        bulwark_pki::cert::parse_pem_chain(&bytes, &f.dir.join("client-trust.pem")).unwrap();
    std::fs::write(
        f.dir.join("client-trust.pem"),
        bulwark_pki::cert::pem_cert(&certs[1].der),
    )
    .unwrap();
    let before = snapshot(&f.dir);
    let err = ca::end_overlap(&f.lock(), &f.settings, layout::CLIENT_CA, &f.clock).unwrap_err();
    assert!(
        matches!(err, Error::BundleLacksCurrentCa { ref ca, .. } if ca == layout::CLIENT_CA),
        "{err:?}"
    );
    assert!(err.to_string().contains("client-trust.pem"), "{err}");
    assert_eq!(before, snapshot(&f.dir), "a refused end wrote something");
}

#[test]
fn ca_verbs_refuse_anything_but_an_issuing_ca() {
    let f = Fixture::new();
    let before = snapshot(&f.dir);
    for id in [layout::ROOT_CA, "temporal-server", "client-trust", "nope"] {
        let e = ca::begin_overlap(&f.lock(), &f.settings, id, &f.clock).unwrap_err();
        assert!(
            matches!(e, Error::NotAnIssuingCa(ref i) if i == id),
            "{e:?}"
        );
        let e = ca::end_overlap(&f.lock(), &f.settings, id, &f.clock).unwrap_err();
        assert!(
            matches!(e, Error::NotAnIssuingCa(ref i) if i == id),
            "{e:?}"
        );
    }
    assert_eq!(before, snapshot(&f.dir));
    assert_eq!(
        ca::ISSUING_CAS,
        [
            layout::INTERNODE_CA,
            layout::CLIENT_CA,
            layout::SERVER_CA,
            layout::GATE_CA
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Re-issue

#[test]
fn leaf_reissues_one_leaf_and_refuses_anything_else() {
    let f = Fixture::new();
    let before = snapshot(&f.dir);
    for id in [
        layout::CLIENT_CA,
        layout::ROOT_CA,
        layout::JWT_KEY_ID,
        "client-token",
        "nope",
    ] {
        let e = reissue::leaf(&f.lock(), &f.settings, id, &f.clock).unwrap_err();
        assert!(matches!(e, Error::NotALeaf(ref i) if i == id), "{e:?}");
    }
    assert_eq!(before, snapshot(&f.dir));

    let ids = reissue::leaf_ids(&f.settings);
    assert!(ids.contains(&"temporal-server".to_owned()));
    assert!(ids.contains(&"client-admin".to_owned()));
    assert!(
        !ids.iter()
            .any(|i| i.ends_with("-ca") || i == layout::ROOT_CA)
    );

    let old = f.manifest();
    let report = reissue::leaf(&f.lock(), &f.settings, "control-server", &f.clock).unwrap();
    assert_eq!(report.changes.len(), 1, "{:?}", report.changes);
    let new = f.manifest();
    assert_ne!(
        old.get("control-server").unwrap().fingerprint,
        new.get("control-server").unwrap().fingerprint
    );
    assert_eq!(
        old.get("api-server").unwrap().fingerprint,
        new.get("api-server").unwrap().fingerprint
    );
    f.assert_sound();
}

#[test]
fn static_tokens_are_reissued_with_the_current_key() {
    let f = Fixture::new();
    let p = jwt::prepare(&f.lock(), &f.settings, &f.clock).unwrap();
    let a = jwt::activate(&f.lock(), &f.settings, &p, &f.clock).unwrap();
    let cli_before = f.read(layout::CLI_CONFIG);
    f.clock.advance(Duration::seconds(1));
    let report = reissue::static_tokens(&f.lock(), &f.settings, &f.clock).unwrap();
    let changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    for id in layout::STATIC_TOKEN_IDS {
        assert!(changed.contains(&id), "{changed:?}");
        let token = f.read(&format!("{id}.jwt"));
        assert_eq!(token_kid(&token), a.new_kid, "{id}");
        let only_new = Jwks {
            keys: vec![p.next.jwk().clone()],
        };
        bulwark_pki::jwt::verify(
            token.trim(),
            &only_new,
            f.clock.now(),
            &VerifyOptions::new(f.settings.token_ttl).audience(&f.settings.audience),
        )
        .unwrap();
        assert_eq!(
            f.manifest().get(id).unwrap().kid.as_deref(),
            Some(a.new_kid.as_str())
        );
    }
    assert_ne!(
        cli_before,
        f.read(layout::CLI_CONFIG),
        "CLI profiles carry the tokens"
    );
    // Nothing else moved: no certificate was re-issued.
    assert!(
        changed
            .iter()
            .all(|c| layout::STATIC_TOKEN_IDS.contains(c) || *c == layout::CLI_CONFIG_ID),
        "{changed:?}"
    );
    f.assert_sound();
}

#[test]
fn due_is_a_no_op_on_a_sound_directory_and_renews_what_is_due() {
    let f = Fixture::new();
    let before = snapshot(&f.dir);
    let report = reissue::due(&f.lock(), &f.settings, &f.clock).unwrap();
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert_eq!(before, snapshot(&f.dir));
    // Leaves (30 days) are due after two thirds of their lifetime.
    f.clock.advance(Duration::days(21));
    let report = reissue::due(&f.lock(), &f.settings, &f.clock).unwrap();
    let changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    assert!(changed.contains(&"temporal-server"), "{changed:?}");
    assert!(!changed.contains(&layout::ROOT_CA), "{changed:?}");
    f.assert_sound();
}

#[test]
fn system_clock_is_the_wall_clock() {
    let before = OffsetDateTime::now_utc();
    let t = rotate::SystemClock.now();
    assert!(t >= before && t <= OffsetDateTime::now_utc());
}
