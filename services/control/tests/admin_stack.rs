//! The admin page's propagation probes against the running native stack (read-only: it
//! connects to Temporal and signs throw-away probe tokens; nothing is changed). Skipped when
//! no stack is described by `.bulwark/env` (or BULWARK_STACK_ENV).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use bulwark_control::admin::{TemporalTarget, probe};
use bulwark_pki::{Settings, jwt::SigningKey};

fn stack() -> Option<(TemporalTarget, PathBuf)> {
    let path = std::env::var("BULWARK_STACK_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.bulwark/env"));
    let text = std::fs::read_to_string(&path).ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_owned)
    };
    let certs = PathBuf::from(get("BULWARK_CERTS_DIR")?);
    let target = TemporalTarget {
        address: get("BULWARK_TEMPORAL_ADDRESS")?,
        server_name: get("BULWARK_TEMPORAL_SERVER_NAME").unwrap_or_else(|| "temporal".into()),
        namespace: get("BULWARK_NAMESPACES")
            .and_then(|n| n.split(',').next().map(str::to_owned))
            .unwrap_or_else(|| "default".into()),
    };
    // Only when Temporal is actually up.
    std::net::TcpStream::connect(&target.address).ok()?;
    Some((target, certs))
}

#[tokio::test]
async fn probes_see_the_live_server_certificate_and_temporal_judges_tokens() {
    let Some((target, certs)) = stack() else {
        eprintln!("skipped: no running stack");
        return;
    };
    // A fresh handshake shows what the manifest says Temporal serves (or its predecessor
    // while Temporal's refresh interval has not yet passed).
    let fp = probe::server_fingerprint(&target, &certs).await.unwrap();
    assert_eq!(fp.len(), 64);

    let settings = Settings::default();
    let claims = probe::probe_claims(&settings, &target.namespace, &certs);
    let key = SigningKey::from_pem(
        &std::fs::read_to_string(certs.join("temporal-jwt-private.key")).unwrap(),
    )
    .unwrap();
    let good = key.sign(&claims).unwrap();
    assert!(
        probe::token_accepted(&target, &certs, &good).await.unwrap(),
        "Temporal refused a token signed by the published key"
    );
    let stranger = SigningKey::generate(settings.jwt_algorithm).unwrap();
    let bad = stranger.sign(&claims).unwrap();
    assert!(
        !probe::token_accepted(&target, &certs, &bad).await.unwrap(),
        "Temporal accepted a token signed by an unpublished key"
    );
}

/// The running stack serves the admin page on its own listener (`BULWARK_ADMIN_URL`) and not
/// on the public one. Skipped for a stack whose env predates the separate listener.
#[tokio::test]
async fn the_stack_serves_the_admin_page_only_on_its_own_listener() {
    let path = std::env::var("BULWARK_STACK_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.bulwark/env"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: no running stack");
        return;
    };
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_owned)
    };
    let (Some(control), Some(admin), Some(certs)) = (
        get("BULWARK_CONTROL_URL"),
        get("BULWARK_ADMIN_URL"),
        get("BULWARK_CERTS_DIR"),
    ) else {
        eprintln!("skipped: the stack's env names no control or admin URL");
        return;
    };
    if admin.starts_with(&control) {
        eprintln!("skipped: this stack still serves the admin page on the public listener");
        return;
    }
    let ca = reqwest::Certificate::from_pem(
        &std::fs::read(PathBuf::from(certs).join("ca.crt")).unwrap(),
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    if http.get(format!("{control}/healthz")).send().await.is_err() {
        eprintln!("skipped: control is not running");
        return;
    }
    let login = http.get(format!("{admin}/login")).send().await.unwrap();
    assert_eq!(login.status(), reqwest::StatusCode::OK, "{admin}/login");
    for p in ["/admin", "/admin/", "/admin/login"] {
        let res = http.get(format!("{control}{p}")).send().await.unwrap();
        assert_eq!(
            res.status(),
            reqwest::StatusCode::NOT_FOUND,
            "public listener answered {p}"
        );
    }
}
