//! A minimal stand-in for HashiCorp Vault's KV version 2 HTTP API, used only when no
//! real `vault` binary is available. It implements exactly what `VaultStore` uses:
//!
//! * `GET  /v1/<mount>/data/<path>[?version=N]` → `{"data":{"data":{…},"metadata":{…}}}`
//! * `POST|PUT /v1/<mount>/data/<path>` with `{"data":{…}}` → new version
//! * `GET  /v1/<mount>/metadata/<path>?list=true` (and the `LIST` verb) → `{"data":{"keys":[…]}}`
//! * `X-Vault-Token` checked on every request: 403 `{"errors":["permission denied"]}`
//! * 404 `{"errors":[]}` for missing secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

type Versions = Vec<Value>;

pub struct StandIn {
    pub addr: String,
    pub token: String,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn start(mount: &'static str, token: &str) -> StandIn {
    start_with(mount, token, None).await
}

/// The stand-in over TLS (`https://` address) with this server configuration.
pub async fn start_tls(
    mount: &'static str,
    token: &str,
    tls: Arc<rustls::ServerConfig>,
) -> StandIn {
    start_with(mount, token, Some(tokio_rustls::TlsAcceptor::from(tls))).await
}

async fn start_with(
    mount: &'static str,
    token: &str,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let addr = format!("{scheme}://{}", listener.local_addr().unwrap());
    let data: Arc<Mutex<BTreeMap<String, Versions>>> = Arc::default();
    let tok = token.to_owned();
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let data = data.clone();
            let tok = tok.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => {
                        let _ = serve(sock, mount, &tok, &data).await;
                    }
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(sock).await {
                            let _ = serve(stream, mount, &tok, &data).await;
                        }
                    }
                }
            });
        }
    });
    StandIn {
        addr,
        token: token.to_owned(),
        _task: task,
    }
}

async fn serve(
    sock: impl AsyncRead + AsyncWrite + Unpin,
    mount: &str,
    token: &str,
    data: &Mutex<BTreeMap<String, Versions>>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(sock);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).await?;

    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query: BTreeMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let (status, resp) = if headers.get("x-vault-token").map(String::as_str) != Some(token) {
        (403, json!({"errors": ["permission denied"]}))
    } else if let Some(key) = path.strip_prefix(&format!("/v1/{mount}/data/")) {
        let mut d = data.lock().unwrap();
        match method.as_str() {
            "GET" => {
                let versions = d.get(key);
                let want = query
                    .get("version")
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|v| *v > 0);
                let found = versions.and_then(|vs| match want {
                    Some(v) => vs.get(v - 1).map(|x| (v, x)),
                    None => vs.last().map(|x| (vs.len(), x)),
                });
                match found {
                    Some((v, fields)) => (
                        200,
                        json!({"request_id": "standin", "data": {"data": fields, "metadata": {
                            "version": v, "created_time": "2026-01-01T00:00:00Z",
                            "deletion_time": "", "destroyed": false, "custom_metadata": null}}}),
                    ),
                    None => (404, json!({"errors": []})),
                }
            }
            "POST" | "PUT" => {
                let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match parsed.get("data") {
                    Some(fields) if fields.is_object() => {
                        let vs = d.entry(key.to_owned()).or_default();
                        vs.push(fields.clone());
                        (
                            200,
                            json!({"data": {"version": vs.len(), "created_time": "2026-01-01T00:00:00Z"}}),
                        )
                    }
                    _ => (400, json!({"errors": ["no data provided"]})),
                }
            }
            _ => (405, json!({"errors": []})),
        }
    } else if let Some(prefix) = path.strip_prefix(&format!("/v1/{mount}/metadata")) {
        let listing = method == "LIST" || (method == "GET" && query.get("list") == Some(&"true"));
        if listing {
            let prefix = prefix.trim_start_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", prefix.trim_end_matches('/'))
            };
            let d = data.lock().unwrap();
            let mut keys: Vec<String> = d
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .map(|rest| match rest.split_once('/') {
                    Some((dir, _)) => format!("{dir}/"),
                    None => rest.to_owned(),
                })
                .collect();
            keys.dedup();
            if keys.is_empty() {
                (404, json!({"errors": []}))
            } else {
                (200, json!({"data": {"keys": keys}}))
            }
        } else {
            (405, json!({"errors": []}))
        }
    } else {
        (404, json!({"errors": []}))
    };
    let body = resp.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut sock = r.into_inner();
    sock.write_all(
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    sock.shutdown().await
}
