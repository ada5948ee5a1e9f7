//! Idempotency, renewal, rotation, atomicity on failure, file modes and what `verify` catches.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::os::unix::fs::PermissionsExt;

use bulwark_pki::{
    Error, Mode, Settings, generate,
    jwt::Jwks,
    manifest::Manifest,
    verify::{Severity, verify_dir},
};
use common::{fresh, snapshot};
use time::{Duration, OffsetDateTime};

fn manifest(dir: &std::path::Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn errors(dir: &std::path::Path, now: OffsetDateTime) -> Vec<String> {
    verify_dir(dir, now, 2.0 / 3.0)
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn verify_opts() -> bulwark_pki::jwt::VerifyOptions<'static> {
    bulwark_pki::jwt::VerifyOptions::new(Settings::default().token_ttl).audience("temporal")
}

fn jwks(dir: &std::path::Path) -> Jwks {
    serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap()
}

#[test]
fn second_run_changes_no_byte() {
    let (_t, dir) = fresh();
    let before = snapshot(&dir);
    let report = generate(&dir, &Settings::default(), Mode::Missing, now()).unwrap();
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert!(
        report.files_written.is_empty(),
        "{:?}",
        report.files_written
    );
    assert_eq!(before, snapshot(&dir));
    assert!(errors(&dir, now()).is_empty());
}

#[test]
fn modes_are_strict() {
    let (_t, dir) = fresh();
    let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(""), 0o700);
    for f in snapshot(&dir).keys() {
        let secret = (f.ends_with(".key") && !f.contains("public"))
            || f.ends_with(".jwt")
            || f == "temporal.toml"
            || f == bulwark_pki::lock::LOCK_FILE;
        let want = if secret { 0o600 } else { 0o644 };
        assert_eq!(mode(f), want, "{f}");
    }
}

#[test]
fn renewal_window_renews_leaves_and_tokens_only() {
    let (_t, dir) = fresh();
    let old = manifest(&dir);
    // 21 days in: past 2/3 of a 30-day leaf and long past 2/3 of a 24 h token.
    let later = now() + Duration::days(21);
    let report = generate(&dir, &Settings::default(), Mode::Missing, later).unwrap();
    let changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "temporal-server",
        "internode",
        "client-api",
        "system-token",
        "worker-token",
    ] {
        assert!(changed.contains(&id), "{id} not renewed: {changed:?}");
    }
    for id in ["ca", "client-ca", "internode-ca", "server-ca", "jwt-key"] {
        assert!(!changed.contains(&id), "{id} renewed too early");
    }
    let new = manifest(&dir);
    assert_eq!(new.get("temporal-server").unwrap().generation, 2);
    assert_ne!(
        new.get("temporal-server").unwrap().fingerprint,
        old.get("temporal-server").unwrap().fingerprint
    );
    assert_eq!(
        new.get("ca").unwrap().fingerprint,
        old.get("ca").unwrap().fingerprint
    );
    assert!(errors(&dir, later).is_empty(), "{:?}", errors(&dir, later));
}

#[test]
fn rotating_one_leaf_touches_only_it() {
    let (_t, dir) = fresh();
    let before = snapshot(&dir);
    let report = generate(
        &dir,
        &Settings::default(),
        Mode::Rotate(&["temporal-server".into()]),
        now(),
    )
    .unwrap();
    let ids: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["temporal-server"]);
    let after = snapshot(&dir);
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert_eq!(
        changed,
        [
            "manifest.json",
            "temporal-server.crt",
            "temporal-server.key"
        ]
    );
    assert!(errors(&dir, now()).is_empty());
}

#[test]
fn rotating_an_issuing_ca_reissues_its_leaves_and_overlaps_trust() {
    let (_t, dir) = fresh();
    let old = manifest(&dir);
    generate(
        &dir,
        &Settings::default(),
        Mode::Rotate(&["client-ca".into()]),
        now(),
    )
    .unwrap();
    let new = manifest(&dir);
    for id in ["client-ca", "client-api", "temporal-client"] {
        assert_ne!(
            old.get(id).unwrap().fingerprint,
            new.get(id).unwrap().fingerprint,
            "{id}"
        );
    }
    assert_eq!(
        old.get("temporal-server").unwrap().fingerprint,
        new.get("temporal-server").unwrap().fingerprint
    );
    let bundle = std::fs::read_to_string(dir.join("client-trust.pem")).unwrap();
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "old and new client CA trusted during overlap"
    );
    assert!(errors(&dir, now()).is_empty(), "{:?}", errors(&dir, now()));
}

#[test]
fn rotating_the_jwt_key_keeps_the_old_key_published() {
    let (_t, dir) = fresh();
    let old_kid = manifest(&dir).get("jwt-key").unwrap().kid.clone().unwrap();
    let old_token = std::fs::read_to_string(dir.join("client-token.jwt")).unwrap();
    generate(
        &dir,
        &Settings::default(),
        Mode::Rotate(&["jwt-key".into()]),
        now(),
    )
    .unwrap();
    let m = manifest(&dir);
    let new_kid = m.get("jwt-key").unwrap().kid.clone().unwrap();
    assert_ne!(old_kid, new_kid);
    let jwks: Jwks =
        serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
    let kids: Vec<&str> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    // Tokens signed by the old key still verify until they expire; new tokens use the new key.
    bulwark_pki::jwt::verify(old_token.trim(), &jwks, now(), &verify_opts()).unwrap();
    assert_eq!(
        m.get("client-token").unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    // After the longest token TTL the old key is retired.
    let later = now() + Duration::hours(25);
    generate(&dir, &Settings::default(), Mode::Missing, later).unwrap();
    let jwks: Jwks =
        serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
    assert!(jwks.find(&old_kid).is_none());
}

#[test]
fn corrupted_pem_is_an_error_naming_the_file_and_nothing_changes() {
    let (_t, dir) = fresh();
    std::fs::write(
        dir.join("client-api.crt"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    // Also make something due, so the run would otherwise write.
    std::fs::remove_file(dir.join("worker-token.jwt")).unwrap();
    let before = snapshot(&dir);
    let err = generate(&dir, &Settings::default(), Mode::Missing, now()).unwrap_err();
    assert!(err.to_string().contains("client-api.crt"), "{err}");
    assert_eq!(before, snapshot(&dir), "a failed run wrote something");
    // verify names it too; rotate recovers it.
    assert!(errors(&dir, now()).iter().any(|e| e.contains("client-api")));
    generate(
        &dir,
        &Settings::default(),
        Mode::Rotate(&["client-api".into()]),
        now(),
    )
    .unwrap();
    assert!(errors(&dir, now()).is_empty(), "{:?}", errors(&dir, now()));
}

#[test]
fn key_that_does_not_match_its_cert_is_refused() {
    let (_t, dir) = fresh();
    std::fs::copy(dir.join("client-ui.key"), dir.join("client-api.key")).unwrap();
    let before = snapshot(&dir);
    let err = generate(&dir, &Settings::default(), Mode::Missing, now()).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("client-api.key"));
    assert_eq!(before, snapshot(&dir));
}

#[test]
fn a_cert_from_another_ca_is_refused() {
    let (_t, dir) = fresh();
    let (_t2, other) = fresh();
    for f in ["temporal-server.crt", "temporal-server.key"] {
        std::fs::copy(other.join(f), dir.join(f)).unwrap();
    }
    let err = generate(&dir, &Settings::default(), Mode::Missing, now()).unwrap_err();
    assert!(matches!(err, Error::NotIssuedBy { .. }), "{err}");
    assert!(
        errors(&dir, now())
            .iter()
            .any(|e| e.contains("temporal-server"))
    );
}

#[test]
fn half_a_pair_is_refused() {
    let (_t, dir) = fresh();
    std::fs::remove_file(dir.join("ca.key")).unwrap();
    let err = generate(&dir, &Settings::default(), Mode::Missing, now()).unwrap_err();
    assert!(err.to_string().contains("ca.key is missing"), "{err}");
}

#[test]
fn bad_output_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = generate(&file, &Settings::default(), Mode::Missing, now()).unwrap_err();
    assert!(matches!(err, Error::NotADirectory(_)), "{err}");
    let err = generate(
        &file.join("sub"),
        &Settings::default(),
        Mode::Missing,
        now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("file/sub"), "{err}");
    let err = generate(
        tmp.path(),
        &Settings::default(),
        Mode::Rotate(&["nope".into()]),
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownItem(_)));
}

#[test]
fn verify_catches_swapped_expired_tampered_and_loose_modes() {
    // Swapped: the client cert and key put in place of the server's.
    let (_t, dir) = fresh();
    for (from, to) in [
        ("client-api.crt", "temporal-server.crt"),
        ("client-api.key", "temporal-server.key"),
    ] {
        std::fs::copy(dir.join(from), dir.join(to)).unwrap();
    }
    let errs = errors(&dir, now());
    assert!(
        errs.iter()
            .any(|e| e.contains("temporal-server") && e.contains("swapped")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("temporal-server") && e.contains("TLS server")),
        "{errs:?}"
    );

    // Expired: everything short-lived has run out 31 days later.
    let (_t, dir) = fresh();
    let errs = errors(&dir, now() + Duration::days(31));
    assert!(
        errs.iter()
            .any(|e| e.contains("temporal-server") && e.contains("expired")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("client-token")), "{errs:?}");

    // Tampered: a token's payload edited, a certificate byte flipped.
    let (_t, dir) = fresh();
    let token = std::fs::read_to_string(dir.join("client-token.jwt")).unwrap();
    let mut parts: Vec<String> = token.trim().split('.').map(str::to_owned).collect();
    parts[1] = parts[1].replacen(|c: char| c.is_ascii_alphabetic(), "A", 1);
    std::fs::write(dir.join("client-token.jwt"), parts.join(".")).unwrap();
    let mut pem = std::fs::read_to_string(dir.join("client-worker.crt")).unwrap();
    let pos = pem.find('\n').unwrap() + 40;
    let flipped = if &pem[pos..pos + 1] == "A" { "B" } else { "A" };
    pem.replace_range(pos..pos + 1, flipped);
    std::fs::write(dir.join("client-worker.crt"), pem).unwrap();
    let errs = errors(&dir, now());
    assert!(errs.iter().any(|e| e.contains("client-token")), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("client-worker")), "{errs:?}");

    // A private key readable by others.
    let (_t, dir) = fresh();
    std::fs::set_permissions(dir.join("ca.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let errs = errors(&dir, now());
    assert!(
        errs.iter()
            .any(|e| e.contains("ca.key") && e.contains("600")),
        "{errs:?}"
    );
    // ...and generate repairs the mode without changing the key.
    let key = std::fs::read(dir.join("ca.key")).unwrap();
    generate(&dir, &Settings::default(), Mode::Missing, now()).unwrap();
    assert_eq!(key, std::fs::read(dir.join("ca.key")).unwrap());
    assert!(errors(&dir, now()).is_empty());
}

#[test]
fn configuration_changes_reissue_what_they_affect() {
    let (_t, dir) = fresh();
    let old = manifest(&dir);
    let mut s = Settings::default();
    s.server_sans.push("temporal.example.com".parse().unwrap());
    s.namespaces.push("payments".parse().unwrap());
    let report = generate(&dir, &s, Mode::Missing, now()).unwrap();
    let ids: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    assert!(
        ids.contains(&"temporal-server")
            && ids.contains(&"client-token")
            && !ids.contains(&"system-token"),
        "{ids:?}"
    );
    assert_eq!(
        old.get("client-api").unwrap().fingerprint,
        manifest(&dir).get("client-api").unwrap().fingerprint
    );
}

#[test]
fn debug_output_never_contains_key_material() {
    let (_t, dir) = fresh();
    let pem = std::fs::read_to_string(dir.join("temporal-jwt-private.key")).unwrap();
    let key = bulwark_pki::jwt::SigningKey::from_pem(&pem).unwrap();
    let body: String = pem.lines().nth(1).unwrap().to_owned();
    let dbg = format!("{key:?} {:?}", key.private_pem());
    assert!(!dbg.contains(&body));
}

#[test]
fn a_group_grant_survives_rotation_and_nothing_wider_does() {
    use std::os::unix::fs::{MetadataExt, chown};
    let (_t, dir) = fresh();
    let meta = |f: &str| std::fs::metadata(dir.join(f)).unwrap();
    let set_mode = |f: &str, m: u32| {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(m)).unwrap()
    };
    // Root may hand a file to any group; anyone else only to a group of their own, which
    // would not show that the group came from the old file rather than the writer.
    let root = meta("ca.key").uid() == 0;
    let gid = if root { 4242 } else { meta("ca.key").gid() };
    // The compose stack's grant: the directory traversable, one key readable by its group.
    set_mode("", 0o711);
    chown(dir.join("temporal-server.key"), None, Some(gid)).unwrap();
    set_mode("temporal-server.key", 0o640);
    assert!(errors(&dir, now()).is_empty(), "{:?}", errors(&dir, now()));

    let before = snapshot(&dir);
    let report = generate(&dir, &Settings::default(), Mode::Missing, now()).unwrap();
    assert!(
        report.files_written.is_empty(),
        "{:?}",
        report.files_written
    );
    assert_eq!(before, snapshot(&dir));
    assert_eq!(meta("").mode() & 0o777, 0o711, "a traversal grant is kept");

    generate(
        &dir,
        &Settings::default(),
        Mode::Rotate(&["temporal-server".into(), "client-api".into()]),
        now(),
    )
    .unwrap();
    assert_ne!(
        before["temporal-server.key"],
        snapshot(&dir)["temporal-server.key"]
    );
    assert_eq!(meta("temporal-server.key").mode() & 0o777, 0o640);
    if root {
        assert_eq!(meta("temporal-server.key").gid(), gid, "the group is kept");
    }
    assert_eq!(
        meta("client-api.key").mode() & 0o777,
        0o600,
        "no grant, none added"
    );
    assert_ne!(meta("client-api.key").gid(), 4242);
    assert!(errors(&dir, now()).is_empty());

    // Group write, or a directory others may list, is an error that generate repairs; the
    // loosened key is no deliberate grant, so its replacement is owner-only.
    set_mode("temporal-server.key", 0o660);
    set_mode("", 0o755);
    let errs = errors(&dir, now());
    assert!(
        errs.iter()
            .any(|e| e.contains("temporal-server.key") && e.contains("640")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("755")), "{errs:?}");
    generate(&dir, &Settings::default(), Mode::Missing, now()).unwrap();
    assert_eq!(meta("").mode() & 0o777, 0o700);
    assert_eq!(meta("temporal-server.key").mode() & 0o777, 0o600);
    assert!(errors(&dir, now()).is_empty());
}

#[test]
fn revoking_the_jwt_key_unpublishes_every_earlier_key_at_once() {
    let (_t, dir) = fresh();
    let settings = Settings::default();
    let first_kid = manifest(&dir).get("jwt-key").unwrap().kid.clone().unwrap();
    // A normal rotation first, so a retired key is still published beside the current one.
    generate(&dir, &settings, Mode::Rotate(&["jwt-key".into()]), now()).unwrap();
    let before = manifest(&dir);
    let old_kid = before.get("jwt-key").unwrap().kid.clone().unwrap();
    assert_eq!(jwks(&dir).keys.len(), 2);
    let old_token = std::fs::read_to_string(dir.join("client-token.jwt")).unwrap();
    let old_cli = std::fs::read_to_string(dir.join("temporal.toml")).unwrap();

    let r = bulwark_pki::revoke_jwt_key(&dir, &settings, now()).unwrap();

    let m = manifest(&dir);
    let new_kid = m.get("jwt-key").unwrap().kid.clone().unwrap();
    assert_eq!(r.kid, new_kid);
    assert_ne!(new_kid, old_kid);
    let mut revoked = r.revoked.clone();
    revoked.sort();
    let mut expected = vec![first_kid.clone(), old_kid.clone()];
    expected.sort();
    assert_eq!(revoked, expected);
    let published = jwks(&dir);
    let kids: Vec<&str> = published.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, [new_kid.as_str()], "only the new key is published");
    assert!(m.retired_keys.is_empty(), "{:?}", m.retired_keys);
    assert_eq!(
        m.get("jwt-key").unwrap().generation,
        before.get("jwt-key").unwrap().generation + 1
    );
    // A token from the revoked key is refused at once; the re-issued ones verify.
    assert_eq!(
        bulwark_pki::jwt::verify(old_token.trim(), &published, now(), &verify_opts()),
        Err(bulwark_pki::TokenError::UnknownKey)
    );
    for (id, file) in [
        ("system-token", "system-token.jwt"),
        ("worker-token", "worker-token.jwt"),
        ("client-token", "client-token.jwt"),
    ] {
        let t = std::fs::read_to_string(dir.join(file)).unwrap();
        bulwark_pki::jwt::verify(t.trim(), &published, now(), &verify_opts()).unwrap();
        assert_eq!(m.get(id).unwrap().kid.as_deref(), Some(new_kid.as_str()));
    }
    assert_ne!(
        old_cli,
        std::fs::read_to_string(dir.join("temporal.toml")).unwrap(),
        "CLI profiles carry the new tokens"
    );
    assert!(errors(&dir, now()).is_empty(), "{:?}", errors(&dir, now()));
    // The next ordinary run keeps the revoked keys out.
    generate(&dir, &settings, Mode::Missing, now()).unwrap();
    assert_eq!(jwks(&dir).keys.len(), 1);
}

#[test]
fn writers_of_one_directory_are_serialised_across_handles() {
    let (_t, dir) = fresh();
    let held = bulwark_pki::lock::DirLock::acquire(&dir).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let d = dir.clone();
    let writer = std::thread::spawn(move || {
        let r = bulwark_pki::revoke_jwt_key(&d, &Settings::default(), now());
        tx.send(()).unwrap();
        r.map(|_| ())
    });
    // The revoke waits while another writer holds the lock; nothing is written meanwhile.
    let before = snapshot(&dir);
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(500))
            .is_err()
    );
    assert_eq!(before, snapshot(&dir));
    drop(held);
    rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap();
    writer.join().unwrap().unwrap();
    assert_ne!(before, snapshot(&dir));
    // verify is read-only and does not need the lock.
    let _held = bulwark_pki::lock::DirLock::acquire(&dir).unwrap();
    assert!(errors(&dir, now()).is_empty());
}
