//! Every static token verifies against jwks.json with an independent JWT implementation
//! (jsonwebtoken) and carries exactly the permissions Temporal's default claim mapper reads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use bulwark_pki::{Mode, Settings, generate, jwt::JwtAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;
use time::OffsetDateTime;

fn decode(dir: &std::path::Path, file: &str, alg: Algorithm) -> (jsonwebtoken::Header, Value) {
    let token = std::fs::read_to_string(dir.join(file)).unwrap();
    let jwks: JwkSet =
        serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
    let header = jsonwebtoken::decode_header(token.trim()).unwrap();
    let kid = header.kid.clone().expect("kid header");
    let jwk = jwks.find(&kid).expect("kid published in jwks.json");
    let mut v = Validation::new(alg);
    v.set_audience(&["temporal"]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "iss", "aud"]);
    let data =
        jsonwebtoken::decode::<Value>(token.trim(), &DecodingKey::from_jwk(jwk).unwrap(), &v)
            .unwrap();
    (data.header, data.claims)
}

fn check_all(dir: &std::path::Path, alg: Algorithm, namespaces: &[&str]) {
    let write: Vec<String> = namespaces.iter().map(|ns| format!("{ns}:write")).collect();
    for (file, scope, perms) in [
        (
            "system-token.jwt",
            "temporal-system",
            vec!["temporal-system:admin".to_owned()],
        ),
        ("worker-token.jwt", "temporal-worker", write.clone()),
        ("client-token.jwt", "temporal-client", write.clone()),
    ] {
        let (header, claims) = decode(dir, file, alg);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(claims["scope"], scope, "{file}");
        let got: Vec<String> = serde_json::from_value(claims["permissions"].clone()).unwrap();
        assert_eq!(got, perms, "{file}");
        for claim in ["sub", "iss", "aud", "iat", "nbf", "exp", "jti"] {
            assert!(claims.get(claim).is_some(), "{file} lacks {claim}");
        }
        let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(ttl, 24 * 3600, "{file} default TTL");
    }
}

#[test]
fn es256_tokens_verify_independently() {
    let (_t, dir) = common::fresh();
    check_all(&dir, Algorithm::ES256, &["default"]);
    let jwks: Value =
        serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    assert!(jwks["keys"][0].get("d").is_none(), "private part published");
}

#[test]
fn rs256_and_several_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let mut s = Settings::default();
    s.jwt_algorithm = JwtAlgorithm::Rs256;
    s.namespaces = vec!["default".parse().unwrap(), "payments".parse().unwrap()];
    generate(&dir, &s, Mode::Missing, OffsetDateTime::now_utc()).unwrap();
    check_all(&dir, Algorithm::RS256, &["default", "payments"]);
}

#[test]
fn a_token_from_another_key_is_rejected_by_jwks() {
    let (_t, dir) = common::fresh();
    let (_t2, other) = common::fresh();
    let foreign = std::fs::read_to_string(other.join("system-token.jwt")).unwrap();
    let jwks: bulwark_pki::jwt::Jwks =
        serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
    assert!(
        bulwark_pki::jwt::verify(
            foreign.trim(),
            &jwks,
            OffsetDateTime::now_utc(),
            &bulwark_pki::jwt::VerifyOptions::new(time::Duration::days(1)),
        )
        .is_err()
    );
}
