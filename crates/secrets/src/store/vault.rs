//! HashiCorp Vault KV version 2 over HTTP (`secretstores.hashicorp.vault`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::{Node, SecretMap, SecretStore, validate_path_key};
use crate::error::{Result, SecretsError};
use crate::secret::Secret;

/// Component type name.
pub const KIND: &str = "secretstores.hashicorp.vault";

/// Where the Vault token comes from.
#[derive(Debug, Clone)]
pub enum VaultToken {
    /// A token held in memory.
    Value(Secret),
    /// A file holding the token, read again on every request (so an agent or operator
    /// can rotate it in place).
    File(PathBuf),
}

/// Settings for [`VaultStore`].
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Vault address, e.g. `https://vault.internal:8200`.
    pub addr: String,
    /// Token.
    pub token: VaultToken,
    /// KV v2 mount path; default `secret`.
    pub mount: String,
    /// Path prefix under the mount (Dapr's `vaultKVPrefix`); `None` for none.
    pub prefix: Option<String>,
    /// Enterprise namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// PEM CA bundle to trust instead of the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Accept an `http://` address (development only: the token then crosses the network
    /// in clear). Default `false`: only `https://` is accepted.
    pub allow_insecure_http: bool,
}

impl VaultConfig {
    /// Defaults: mount `secret`, no prefix, 10 s timeout.
    pub fn new(addr: impl Into<String>, token: VaultToken) -> Self {
        Self {
            addr: addr.into(),
            token,
            mount: "secret".to_owned(),
            prefix: None,
            namespace: None,
            ca_pem: None,
            timeout: Duration::from_secs(10),
            allow_insecure_http: false,
        }
    }
}

/// Reads secrets from Vault's KV v2 engine: `GET /v1/<mount>/data/<prefix>/<key>`
/// returns `{"data": {"data": {…fields…}, "metadata": {…}}}`; the fields become the
/// secret's fields. 404 is "not found", 403 is [`SecretsError::PermissionDenied`], other
/// failures are [`SecretsError::Unavailable`]. Response bodies of failed requests are
/// never read into errors or logs.
#[derive(Debug)]
pub struct VaultStore {
    name: String,
    base: Url,
    token: VaultToken,
    mount: String,
    prefix: Option<String>,
    namespace: Option<String>,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct ReadResponse {
    data: Option<ReadData>,
}

#[derive(Deserialize)]
struct ReadData {
    data: Option<BTreeMap<String, Node>>,
}

#[derive(Deserialize)]
struct ListResponse {
    data: ListData,
}

#[derive(Deserialize)]
struct ListData {
    keys: Vec<String>,
}

impl VaultStore {
    /// Builds the HTTP client (rustls). Fails on a bad address or CA bundle.
    pub fn new(name: impl Into<String>, config: VaultConfig) -> Result<Self> {
        let name = name.into();
        let bad = |reason: String| SecretsError::Unavailable {
            store: name.clone(),
            reason,
        };
        let base =
            Url::parse(&config.addr).map_err(|_| bad("vault address is not a URL".into()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("vault address must be an https URL".into()));
        }
        if base.scheme() == "http" {
            if !config.allow_insecure_http {
                return Err(bad(
                    "vault address must be https: plain http would send the Vault token in clear"
                        .into(),
                ));
            }
            tracing::warn!(
                store = %name,
                "vault address is plain http (development switch): the token crosses the network in clear"
            );
        }
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls();
        if let Some(pem) = &config.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| bad("vault CA bundle is not valid PEM".into()))?;
            if certs.is_empty() {
                return Err(bad("vault CA bundle has no certificates".into()));
            }
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|_| bad("could not build the HTTP client".into()))?;
        let trim = |s: &str| s.trim_matches('/').to_owned();
        Ok(Self {
            base,
            token: config.token,
            mount: trim(&config.mount),
            prefix: config.prefix.as_deref().map(trim).filter(|p| !p.is_empty()),
            namespace: config.namespace,
            client,
            name,
        })
    }

    fn token(&self) -> Result<Secret> {
        match &self.token {
            VaultToken::Value(s) => Ok(s.clone()),
            VaultToken::File(path) => {
                let raw =
                    zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                        SecretsError::Io {
                            path: path.clone(),
                            source,
                        }
                    })?);
                let t = raw.trim();
                if t.is_empty() {
                    return Err(SecretsError::Unavailable {
                        store: self.name.clone(),
                        reason: format!("vault token file {} is empty", path.display()),
                    });
                }
                Ok(Secret::new(t))
            }
        }
    }

    fn url(&self, kind: &str, key: Option<&str>) -> Result<Url> {
        let mut url = self.base.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|_| SecretsError::Unavailable {
                    store: self.name.clone(),
                    reason: "vault address cannot take a path".into(),
                })?;
            segs.pop_if_empty().push("v1");
            segs.extend(self.mount.split('/'));
            segs.push(kind);
            if let Some(p) = &self.prefix {
                segs.extend(p.split('/'));
            }
            if let Some(k) = key {
                segs.extend(k.split('/'));
            }
        }
        Ok(url)
    }

    fn request(&self, method: Method, url: Url) -> Result<reqwest::RequestBuilder> {
        let token = self.token()?;
        let mut req = self
            .client
            .request(method, url)
            .header("X-Vault-Token", token.expose());
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        Ok(req)
    }

    fn transport_error(&self, e: &reqwest::Error) -> SecretsError {
        let reason = if e.is_timeout() {
            "request timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        SecretsError::Unavailable {
            store: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn status_error(&self, status: StatusCode, key: &str) -> SecretsError {
        if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
            SecretsError::PermissionDenied {
                store: self.name.clone(),
                key: key.to_owned(),
            }
        } else {
            SecretsError::Unavailable {
                store: self.name.clone(),
                reason: format!("vault answered HTTP {}", status.as_u16()),
            }
        }
    }

    /// Reads a specific version of `key` (KV v2 `?version=`).
    pub async fn get_version(&self, key: &str, version: u32) -> Result<Option<SecretMap>> {
        self.read(key, Some(version)).await
    }

    async fn read(&self, key: &str, version: Option<u32>) -> Result<Option<SecretMap>> {
        validate_path_key(&self.name, key)?;
        let mut url = self.url("data", Some(key))?;
        if let Some(v) = version {
            url.query_pairs_mut().append_pair("version", &v.to_string());
        }
        let resp = self
            .request(Method::GET, url)?
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_error(status, key));
        }
        let malformed = |reason| SecretsError::MalformedResponse {
            store: self.name.clone(),
            key: key.to_owned(),
            reason,
        };
        let body = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        let parsed: ReadResponse =
            serde_json::from_slice(&body).map_err(|_| malformed("not a KV v2 read response"))?;
        let data = parsed.data.ok_or_else(|| malformed("no `data` object"))?;
        // A deleted or destroyed latest version reads as `"data": null`.
        let Some(fields) = data.data else {
            return Ok(None);
        };
        let mut out = SecretMap::new();
        for (k, v) in fields {
            match v {
                Node::Branch(_) => v.flatten_into(&k, ":", &mut out),
                other => {
                    out.insert(k, other.to_field());
                }
            }
        }
        Ok(Some(out))
    }
}

#[async_trait]
impl SecretStore for VaultStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn get_optional(&self, key: &str) -> Result<Option<SecretMap>> {
        self.read(key, None).await
    }

    /// Lists the secret names directly under the prefix (`LIST /v1/<mount>/metadata/<prefix>`);
    /// sub-folders are left out.
    async fn list_names(&self) -> Result<Vec<String>> {
        let mut url = self.url("metadata", None)?;
        // `GET ?list=true` is Vault's documented equivalent of the `LIST` verb.
        url.query_pairs_mut().append_pair("list", "true");
        let resp = self
            .request(Method::GET, url)?
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(self.status_error(status, "(list)"));
        }
        let parsed: ListResponse =
            resp.json()
                .await
                .map_err(|_| SecretsError::MalformedResponse {
                    store: self.name.clone(),
                    key: "(list)".into(),
                    reason: "not a KV v2 list response",
                })?;
        Ok(parsed
            .data
            .keys
            .into_iter()
            .filter(|k| !k.ends_with('/'))
            .collect())
    }

    /// Writes a new KV v2 version (`POST /v1/<mount>/data/<key>` with `{"data": {…}}`).
    async fn put(&self, key: &str, value: &SecretMap) -> Result<()> {
        validate_path_key(&self.name, key)?;
        let url = self.url("data", Some(key))?;
        let data: BTreeMap<&str, &str> = value
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({ "data": data }))
                .map_err(|_| SecretsError::Crypto("serialization failed"))?,
        );
        let resp = self
            .request(Method::POST, url)?
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp.status(), key));
        }
        Ok(())
    }
}
