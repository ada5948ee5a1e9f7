//! Propagation checks: what a fresh connection to the Temporal frontend shows.
//!
//! - [`server_fingerprint`]: a new TLS handshake (trusting `ca.crt`, presenting control's own
//!   client certificate) and the SHA-256 of the leaf the server presented.
//! - [`token_accepted`]: a gRPC `DescribeNamespace` call with a bearer token, answering
//!   whether Temporal's authorizer accepted it (grpc-status 0) or refused it (16/7).

use std::{path::Path, sync::Arc, time::Duration};

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::TemporalTarget;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connecting to {0}: {1}")]
    Connect(String, String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("gRPC: {0}")]
    Grpc(String),
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn client_config(certs_dir: &Path, alpn_h2: bool) -> Result<rustls::ClientConfig, ProbeError> {
    let roots = bulwark_tls::load_roots(&certs_dir.join("ca.crt"))
        .map_err(|e| ProbeError::Tls(e.to_string()))?;
    let cert = bulwark_tls::Reloading::new(bulwark_tls::PemFiles::new(
        certs_dir.join("client-control.crt"),
        certs_dir.join("client-control.key"),
    ))
    .ok();
    let mut cfg =
        bulwark_tls::client_config(roots, cert).map_err(|e| ProbeError::Tls(e.to_string()))?;
    if alpn_h2 {
        cfg.alpn_protocols = vec![b"h2".to_vec()];
    }
    Ok(cfg)
}

async fn connect(
    target: &TemporalTarget,
    certs_dir: &Path,
    alpn_h2: bool,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ProbeError> {
    let cfg = client_config(certs_dir, alpn_h2)?;
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(&target.address))
        .await
        .map_err(|_| ProbeError::Connect(target.address.clone(), "timed out".into()))?
        .map_err(|e| ProbeError::Connect(target.address.clone(), e.to_string()))?;
    let name = ServerName::try_from(target.server_name.clone())
        .map_err(|e| ProbeError::Tls(format!("server name: {e}")))?;
    tokio::time::timeout(
        TIMEOUT,
        tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await
    .map_err(|_| ProbeError::Tls("handshake timed out".into()))?
    .map_err(|e| ProbeError::Tls(e.to_string()))
}

/// SHA-256 (lowercase hex) of the leaf certificate a fresh handshake receives.
pub async fn server_fingerprint(
    target: &TemporalTarget,
    certs_dir: &Path,
) -> Result<String, ProbeError> {
    let tls = connect(target, certs_dir, false).await?;
    let (_, conn) = tls.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| ProbeError::Tls("the server sent no certificate".into()))?;
    Ok(bulwark_pki::cert::fingerprint(leaf))
}

/// Protobuf `DescribeNamespaceRequest { namespace = 1 }` in a gRPC frame.
fn describe_namespace_frame(namespace: &str) -> Vec<u8> {
    let ns = namespace.as_bytes();
    let mut msg = vec![0x0a];
    let mut len = ns.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            msg.push(byte);
            break;
        }
        msg.push(byte | 0x80);
    }
    msg.extend_from_slice(ns);
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    frame
}

/// Whether Temporal accepts `token`: `Ok(true)` on grpc-status 0, `Ok(false)` when the call
/// is refused as unauthenticated or unauthorized, `Err` for anything else.
pub async fn token_accepted(
    target: &TemporalTarget,
    certs_dir: &Path,
    token: &str,
) -> Result<bool, ProbeError> {
    let tls = connect(target, certs_dir, true).await?;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .map_err(|e| ProbeError::Grpc(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::post(format!(
        "https://{}/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace",
        target.server_name
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("authorization", format!("Bearer {token}"))
    .body(Full::new(Bytes::from(describe_namespace_frame(
        &target.namespace,
    ))))
    .map_err(|e| ProbeError::Grpc(e.to_string()))?;
    let result = tokio::time::timeout(TIMEOUT, async {
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| ProbeError::Grpc(e.to_string()))?;
        let header_status = res
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let http = res.status();
        let collected = res
            .into_body()
            .collect()
            .await
            .map_err(|e| ProbeError::Grpc(e.to_string()))?;
        let trailer_status = collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match header_status.or(trailer_status).as_deref() {
            Some("0") => Ok(true),
            Some("16") | Some("7") => Ok(false),
            Some(other) => Err(ProbeError::Grpc(format!("grpc-status {other}"))),
            None => Err(ProbeError::Grpc(format!("no grpc-status (HTTP {http})"))),
        }
    })
    .await
    .map_err(|_| ProbeError::Grpc("timed out".into()))?;
    driver.abort();
    result
}

/// Claims of a short-lived probe token: read access to one namespace, nothing else, bound
/// (`cnf`) to control's client certificate, which the probes present: the gate refuses an
/// unbound token. Without a readable certificate the token stays unbound, and the probe then
/// reports the gate's refusal.
pub fn probe_claims(
    settings: &bulwark_pki::Settings,
    namespace: &str,
    certs_dir: &Path,
) -> bulwark_pki::jwt::Claims {
    let claims = bulwark_pki::jwt::Claims::new(
        "bulwark-control-probe",
        &settings.issuer,
        &settings.audience,
        "temporal-client",
        vec![format!("{namespace}:read")],
        time::OffsetDateTime::now_utc(),
        time::Duration::minutes(5),
    );
    let bound = bulwark_tls::load_certs(&certs_dir.join("client-control.crt"))
        .ok()
        .and_then(|chain| chain.into_iter().next())
        .and_then(|leaf| bulwark_pki::binding::Confirmation::for_certificate(&leaf).ok());
    match bound {
        Some(cnf) => claims.with_cnf(cnf),
        None => claims,
    }
}

/// The `kid` in a compact JWS header (for display; no verification).
pub fn token_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("kid")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_encodes_namespace() {
        let f = describe_namespace_frame("default");
        assert_eq!(&f[..5], &[0, 0, 0, 0, 9]);
        assert_eq!(&f[5..7], &[0x0a, 7]);
        assert_eq!(&f[7..], b"default");
    }
}
