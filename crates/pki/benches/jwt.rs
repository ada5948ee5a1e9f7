//! Signing and verifying one access token, as the token endpoint and bulwark-api do per
//! request, against a baseline measured in the same run: `jsonwebtoken::encode` with an
//! `EncodingKey`, which parses the private key again for every signature.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bulwark_pki::jwt::{self, Claims, Jwks, JwtAlgorithm, SigningKey, VerifyOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use time::{Duration, OffsetDateTime};

fn claims() -> Claims {
    Claims::new(
        "worker",
        "bulwark",
        "temporal",
        "temporal:default:write",
        vec!["default:write".into()],
        OffsetDateTime::now_utc(),
        Duration::minutes(15),
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("jwt");
    for alg in [JwtAlgorithm::Es256, JwtAlgorithm::Rs256] {
        let key = SigningKey::generate(alg).unwrap();
        let c = claims();
        let pem = key.private_pem();
        let (jose_alg, encoding) = match alg {
            JwtAlgorithm::Es256 => (
                jsonwebtoken::Algorithm::ES256,
                jsonwebtoken::EncodingKey::from_ec_pem(pem.expose().as_bytes()).unwrap(),
            ),
            _ => (
                jsonwebtoken::Algorithm::RS256,
                jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).unwrap(),
            ),
        };
        let mut header = jsonwebtoken::Header::new(jose_alg);
        header.kid = Some(key.kid().to_owned());
        g.bench_function(format!("baseline_jsonwebtoken_encode_{alg}"), |b| {
            b.iter(|| jsonwebtoken::encode(&header, &c, &encoding).unwrap())
        });
        g.bench_function(format!("sign_{alg}"), |b| b.iter(|| key.sign(&c).unwrap()));
        let token = key.sign(&c).unwrap();
        let jwks = Jwks {
            keys: vec![key.jwk().clone()],
        };
        let opts = VerifyOptions::new(Duration::minutes(15)).audience("temporal");
        g.bench_function(format!("verify_{alg}"), |b| {
            b.iter(|| jwt::verify(&token, &jwks, OffsetDateTime::now_utc(), &opts).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
