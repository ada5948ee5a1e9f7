//! Fuzz targets: one function per parser of untrusted input. Each must return (with or
//! without an error) on every input; a panic or an abort is a bug. `fuzz/` drives them with
//! libFuzzer (`scripts/fuzz.sh`); `tests/replay.rs` runs them over the seed corpora in
//! `fuzz/corpus/<target>/` on every `cargo test`, so a crash once found stays covered.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::OnceLock;

use time::OffsetDateTime;

/// A fuzz target: must return on every input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory and cargo-fuzz binary.
pub const TARGETS: [(&str, Target); 8] = [
    ("jwt", jwt),
    ("pem_cert", pem_cert),
    ("component_yaml", component_yaml),
    ("credential_ref", credential_ref),
    ("token_form", token_form),
    ("api_json", api_json),
    ("gate_decode", gate_decode),
    ("gate_policy", gate_policy),
];

/// A throwaway ES256 key that exists only to sign the `jwt` seed corpus: it guards nothing,
/// and is public so that corpus tokens carry valid signatures and reach the claim checks.
const TEST_JWT_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqbfivW+KxRoe6I77
bRIP09H5oGVjEUvv2lUYYn1qoAehRANCAAQQvA7ILVJfySbD0ZTBHM4WFnxVEN7j
69jSGgtWyXuDNbxAxV+P9kp8yiUBLVdNWavyZEANeqBBlcvfM48kBZHg
-----END PRIVATE KEY-----
";

/// The fixed "now" of the `jwt` target (2027-01-15T08:00:00Z), so that seed tokens minted for
/// it stay inside their validity window whenever the corpus is replayed.
pub const JWT_NOW: i64 = 1_800_000_000;

/// The JWT audience the `jwt` target also verifies with.
pub const JWT_AUDIENCE: &str = "bulwark-api";

/// The signing key of [`TEST_JWT_KEY`]; `None` would mean the constant is not a key, which the
/// replay test catches (`test_signing_key`).
pub fn test_signing_key() -> Option<&'static bulwark_pki::jwt::SigningKey> {
    static KEY: OnceLock<Option<bulwark_pki::jwt::SigningKey>> = OnceLock::new();
    KEY.get_or_init(|| bulwark_pki::jwt::SigningKey::from_pem(TEST_JWT_KEY).ok())
        .as_ref()
}

fn test_jwks() -> &'static bulwark_pki::jwt::Jwks {
    static JWKS: OnceLock<bulwark_pki::jwt::Jwks> = OnceLock::new();
    JWKS.get_or_init(|| bulwark_pki::jwt::Jwks {
        keys: test_signing_key()
            .map(|k| k.jwk().clone())
            .into_iter()
            .collect(),
    })
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(JWT_NOW).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A compact JWS verified against the test key, with and without an audience.
pub fn jwt(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    use bulwark_pki::jwt::{VerifyOptions, verify};
    let opts = VerifyOptions::new(time::Duration::hours(1));
    let _ = verify(token, test_jwks(), now(), &opts);
    let _ = verify(token, test_jwks(), now(), &opts.audience(JWT_AUDIENCE));
}

/// PEM certificate chains, private keys, JWT signing keys and trust bundles.
pub fn pem_cert(data: &[u8]) {
    let path = Path::new("fuzz.pem");
    if let Ok(chain) = bulwark_pki::cert::parse_pem_chain(data, path) {
        for (i, c) in chain.iter().enumerate() {
            let _ = c.due_for_renewal(now(), 0.66);
            if let Some(parent) = chain.get(i + 1) {
                let _ = c.is_signed_by(parent);
            }
        }
    }
    let _ = bulwark_tls::roots_from_pem(path, data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = bulwark_pki::cert::parse_key(text, path) {
            if let Ok(chain) = bulwark_pki::cert::parse_pem_chain(data, path) {
                for c in &chain {
                    let _ = c.matches_key(&key);
                }
            }
        }
        let _ = bulwark_pki::jwt::SigningKey::from_pem(text);
    }
}

/// One Dapr component file.
pub fn component_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut set = bulwark_secrets::ComponentSet::new().with_app_id("bulwark-worker");
    if set.add_str("fuzz.yaml", text).is_ok() {
        for c in set.iter() {
            let _ = c.visible_to(set.app_id());
            let _ = c.metadata_keys().count();
        }
    }
}

/// A credential reference as the API and workflows receive it.
pub fn credential_ref(data: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<bulwark_secrets::CredentialRef>(data) {
        let _ = r.validate();
        let _ = serde_json::to_vec(&r);
    }
}

/// A token request: the first line is the `Authorization` header value (an empty line for
/// none), the rest the form body.
pub fn token_form(data: &[u8]) {
    let (authorization, body) = match data.iter().position(|&b| b == b'\n') {
        Some(0) => (None, &data[1..]),
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let _ = bulwark_control::parse_token_request(authorization, body);
}

/// The body of `POST /v1/workflows` and its validation.
pub fn api_json(data: &[u8]) {
    if let Ok(body) = serde_json::from_slice::<bulwark_api::validate::StartBody>(data) {
        let _ = body.into_new(|| "fuzz-generated-id".to_owned());
    }
}

/// The largest message the target decompresses (the gate's own limit is configurable).
const GATE_MESSAGE_LIMIT: usize = 64 * 1024;

/// A gRPC request body as the gate reads it. The first byte picks the method (from the
/// catalogue) and whether the body is read as gzip; the rest is the length-prefixed body.
pub fn gate_decode(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let methods = bulwark_gate_policy::Catalog::all();
    let Some(method) = methods.get(usize::from(selector >> 1) % methods.len().max(1)) else {
        return;
    };
    let encoding = (selector & 1 == 1).then_some("gzip");
    let _ = bulwark_gate::grpc::unframe(body);
    if let Ok(message) = bulwark_gate::grpc::message(body, encoding, GATE_MESSAGE_LIMIT) {
        let _ = method.facts(&message);
    }
}

/// A gate policy file, and decisions under it for a few callers and methods.
pub fn gate_policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = bulwark_gate_policy::Policy::parse(text, "fuzz.toml") else {
        return;
    };
    let scopes = ["worker".to_owned(), "client".to_owned()];
    let roles: Vec<&str> = policy.roles().collect();
    let facts = bulwark_gate_policy::Facts {
        namespace: Some("default".to_owned()),
        task_queue: Some("bulwark-default".to_owned()),
        workflow_type: Some("Greeting".to_owned()),
        workflow_id: Some("wf-1".to_owned()),
    };
    for identity in roles.iter().copied().chain(["gate", "worker", "nobody"]) {
        let caller = bulwark_gate_policy::Caller {
            identity,
            scopes: &scopes,
        };
        for method in bulwark_gate_policy::Catalog::all().iter().take(12) {
            let _ = policy.decide(&caller, method, &facts);
            let _ = policy.decide(&caller, method, &Default::default());
        }
    }
}
