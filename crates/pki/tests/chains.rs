//! Each chain verifies for its intended use and fails for every other one, both with webpki
//! directly and in real rustls handshakes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use bulwark_pki::{
    cert::{CertInfo, parse_pem_chain},
    trust::{Usage, verify_chain},
};
use common::{certs, fresh, handshake};
use time::OffsetDateTime;

fn info(dir: &std::path::Path, file: &str) -> Vec<CertInfo> {
    parse_pem_chain(&std::fs::read(dir.join(file)).unwrap(), &dir.join(file)).unwrap()
}

#[test]
fn server_cert_chains_to_root_for_its_names_only() {
    let (_t, dir) = fresh();
    let now = OffsetDateTime::now_utc();
    let chain = certs(&dir, "temporal-server.crt");
    let root = certs(&dir, "ca.crt");
    assert_eq!(chain.len(), 2, "leaf + server intermediate, root excluded");
    for name in ["temporal", "temporal-server", "localhost", "127.0.0.1"] {
        verify_chain(&chain, &root, Usage::Server, Some(name), now).unwrap();
    }
    assert!(verify_chain(&chain, &root, Usage::Server, Some("evil.example"), now).is_err());
    // A server certificate is not a client certificate.
    assert!(verify_chain(&chain, &root, Usage::Client, None, now).is_err());
    assert!(
        verify_chain(
            &chain,
            &certs(&dir, "client-trust.pem"),
            Usage::Client,
            None,
            now
        )
        .is_err()
    );
    // Expired in 31 days.
    let later = now + time::Duration::days(31);
    assert!(verify_chain(&chain, &root, Usage::Server, Some("temporal"), later).is_err());
}

#[test]
fn client_certs_verify_only_against_client_trust() {
    let (_t, dir) = fresh();
    let now = OffsetDateTime::now_utc();
    for id in [
        "temporal-client",
        "client-api",
        "client-worker",
        "client-control",
        "client-admin",
        "client-ui",
    ] {
        let chain = certs(&dir, &format!("{id}.crt"));
        verify_chain(
            &chain,
            &certs(&dir, "client-trust.pem"),
            Usage::Client,
            None,
            now,
        )
        .unwrap();
        let err = verify_chain(
            &chain,
            &certs(&dir, "internode-trust.pem"),
            Usage::Client,
            None,
            now,
        );
        assert!(err.is_err(), "{id} verified against the internode trust");
        assert!(
            verify_chain(
                &chain,
                &certs(&dir, "ca.crt"),
                Usage::Server,
                Some("localhost"),
                now
            )
            .is_err(),
            "{id} usable as a server certificate"
        );
    }
}

#[test]
fn internode_cert_is_server_and_client_within_its_domain_only() {
    let (_t, dir) = fresh();
    let now = OffsetDateTime::now_utc();
    let chain = certs(&dir, "internode.crt");
    let trust = certs(&dir, "internode-trust.pem");
    verify_chain(
        &chain,
        &trust,
        Usage::Server,
        Some("temporal-internode"),
        now,
    )
    .unwrap();
    verify_chain(&chain, &trust, Usage::Client, None, now).unwrap();
    assert!(
        verify_chain(
            &chain,
            &certs(&dir, "client-trust.pem"),
            Usage::Client,
            None,
            now
        )
        .is_err()
    );
}

#[test]
fn sans_ekus_and_identities() {
    let (_t, dir) = fresh();
    let server = &info(&dir, "temporal-server.crt")[0];
    assert!(server.server_auth && !server.client_auth && !server.is_ca);
    let mut sans = server.sans.clone();
    sans.sort();
    assert_eq!(
        sans,
        [
            "DNS:localhost",
            "DNS:temporal",
            "DNS:temporal-server",
            "IP:127.0.0.1"
        ]
    );

    let internode = &info(&dir, "internode.crt")[0];
    assert!(internode.server_auth && internode.client_auth);

    let api = &info(&dir, "client-api.crt")[0];
    assert!(api.client_auth && !api.server_auth);
    assert_eq!(api.subject_cn, "api");
    assert_eq!(api.sans, ["URI:spiffe://bulwark.local/client/api"]);

    for ca in [
        "ca.crt",
        "internode-ca.crt",
        "client-ca.crt",
        "server-ca.crt",
    ] {
        assert!(info(&dir, ca)[0].is_ca, "{ca}");
    }
    // Trust bundles hold the issuing CA only, never the root.
    let root_fp = &info(&dir, "ca.crt")[0].fingerprint;
    for bundle in ["client-trust.pem", "internode-trust.pem"] {
        assert!(
            info(&dir, bundle).iter().all(|c| &c.fingerprint != root_fp),
            "{bundle} contains the root"
        );
    }
}

#[test]
fn real_handshakes_accept_the_right_peer_and_refuse_the_wrong_one() {
    let (_t, dir) = fresh();
    let frontend = (
        "temporal-server.crt",
        "temporal-server.key",
        "client-trust.pem",
    );
    let internode = ("internode.crt", "internode.key", "internode-trust.pem");

    handshake(
        &dir,
        frontend,
        Some(("client-api.crt", "client-api.key")),
        "ca.crt",
        "temporal",
    )
    .unwrap();
    // No client certificate.
    assert!(handshake(&dir, frontend, None, "ca.crt", "temporal").is_err());
    // The server certificate presented as a client certificate.
    assert!(
        handshake(
            &dir,
            frontend,
            Some(("temporal-server.crt", "temporal-server.key")),
            "ca.crt",
            "temporal"
        )
        .is_err()
    );
    // Wrong server name.
    assert!(
        handshake(
            &dir,
            frontend,
            Some(("client-api.crt", "client-api.key")),
            "ca.crt",
            "other"
        )
        .is_err()
    );

    handshake(
        &dir,
        internode,
        Some(("internode.crt", "internode.key")),
        "internode-trust.pem",
        "temporal-internode",
    )
    .unwrap();
    // A client certificate on the internode port.
    let err = handshake(
        &dir,
        internode,
        Some(("client-admin.crt", "client-admin.key")),
        "internode-trust.pem",
        "temporal-internode",
    );
    assert!(err.is_err(), "client certificate accepted on internode");

    // A certificate from another CA entirely.
    let (_t2, other) = fresh();
    std::fs::copy(other.join("client-api.crt"), dir.join("foreign.crt")).unwrap();
    std::fs::copy(other.join("client-api.key"), dir.join("foreign.key")).unwrap();
    assert!(
        handshake(
            &dir,
            frontend,
            Some(("foreign.crt", "foreign.key")),
            "ca.crt",
            "temporal"
        )
        .is_err()
    );
}
