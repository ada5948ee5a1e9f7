//! Every seed and every crash input ever found (`fuzz/corpus/<target>/`) through its target:
//! a regression is a panic here, on the stable toolchain, in seconds.

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_input_returns() {
    for (name, target) in bulwark_fuzz_targets::TARGETS {
        let dir = corpus_dir(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            if !path.is_file() {
                continue;
            }
            let data = std::fs::read(&path).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} panicked", path.display());
            count += 1;
        }
        assert!(count > 0, "corpus {} is empty", dir.display());
    }
}

#[test]
fn the_test_key_loads() {
    // Without it every seed token would be refused as signed by an unknown key, and the
    // target would no longer reach the claim checks.
    assert!(bulwark_fuzz_targets::test_signing_key().is_some());
}

#[test]
fn a_seed_token_verifies() {
    // The jwt corpus holds tokens signed by the test key for `JWT_NOW`; one must verify, or
    // the corpus no longer exercises the accepted path.
    let key = bulwark_fuzz_targets::test_signing_key().expect("test key");
    let jwks = bulwark_pki::jwt::Jwks {
        keys: vec![key.jwk().clone()],
    };
    let now = time::OffsetDateTime::from_unix_timestamp(bulwark_fuzz_targets::JWT_NOW).unwrap();
    let opts = bulwark_pki::jwt::VerifyOptions::new(time::Duration::hours(1));
    let verified = std::fs::read_dir(corpus_dir("jwt"))
        .expect("jwt corpus")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter(|t| bulwark_pki::jwt::verify(t, &jwks, now, &opts).is_ok())
        .count();
    assert!(verified > 0, "no jwt seed verifies under the test key");
}
