//! `HttpCall`: an api_key or oauth_client credential sent to an https URL its
//! `allowed_hosts` permits; the response is only hashed, within a size cap.

use std::sync::{Arc, PoisonError};

use bulwark_secrets::{Credential, allowed_hosts};
use bulwark_token_client::{MemorySource, TokenManager};
use bulwark_workflows::{HttpCallInput, HttpCallOutput, failure_type};
use sha2::{Digest, Sha256};

use super::Activities;
use crate::failures::{self, Failure};

#[cfg(test)]
mod tests;

impl Activities {
    async fn oauth_token(
        &self,
        reference: &str,
        cred: &bulwark_secrets::OAuthClientCredential,
    ) -> Result<String, Failure> {
        let digest = hex::encode(Sha256::digest(cred.client_secret.expose().as_bytes()));
        let key = format!(
            "{reference}\n{}\n{digest}\n{}",
            cred.client_id, cred.token_url
        );
        let manager = {
            let mut map = self.oauth.lock().unwrap_or_else(PoisonError::into_inner);
            match map.get(&key) {
                Some(m) => m.clone(),
                None => {
                    let source = MemorySource::new()
                        .with("httpcall_client_id", cred.client_id.clone())
                        .with(
                            "httpcall_client_secret",
                            cred.client_secret.expose().to_owned(),
                        );
                    let m = TokenManager::builder(cred.token_url.clone(), "httpcall")
                        .ca_bundle_pem(self.ca_pem.clone())
                        .environment(Arc::new(MemorySource::new()))
                        .secret_store(Arc::new(source))
                        .scopes(cred.scopes.clone())
                        .build()
                        .map_err(|e| failures::from_auth(reference, &e))?;
                    // Drop managers of rotated secrets of the same reference.
                    map.retain(|k, _| !k.starts_with(&format!("{reference}\n")));
                    map.insert(key, m.clone());
                    m
                }
            }
        };
        let token = manager
            .get_access_token(false)
            .await
            .map_err(|e| failures::from_auth(reference, &e))?;
        Ok(token.expose_secret().to_owned())
    }

    pub(super) async fn http_call(&self, input: HttpCallInput) -> Result<HttpCallOutput, Failure> {
        input
            .validate()
            .map_err(|e| Failure::new(failure_type::INVALID_INPUT, e.to_string()))?;
        let url = reqwest::Url::parse(&input.url).map_err(|e| {
            Failure::new(
                failure_type::INVALID_INPUT,
                format!("`url` is invalid: {e}"),
            )
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let reference = input.credential.to_string();
        let cred = self.resolve(&input.credential).await?;
        // Before any token is fetched or header built: a credential goes only where its
        // store entry allows.
        self.check_destination(&reference, &cred, &url)?;
        let (header_name, header_value) = match cred.as_ref() {
            Credential::OAuthClient(c) => {
                let token = self.oauth_token(&reference, c).await?;
                ("authorization".to_owned(), format!("Bearer {token}"))
            }
            Credential::ApiKey(k) => (k.header_name.clone(), k.header_value().expose().to_owned()),
            _ => {
                return Err(Failure::new(
                    failure_type::CREDENTIAL_INVALID,
                    format!("{reference}: expected an oauth_client or api_key credential"),
                ));
            }
        };
        let mut value = reqwest::header::HeaderValue::from_str(&header_value).map_err(|_| {
            Failure::new(
                failure_type::CREDENTIAL_INVALID,
                format!("{reference}: value is not a valid HTTP header value"),
            )
        })?;
        value.set_sensitive(true);
        let resp = self
            .http
            .get(url)
            .header(header_name.as_str(), value)
            .send()
            .await
            .map_err(|e| {
                // reqwest errors name the URL (no credentials: user info is refused) and cause.
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                Failure::new(failure_type::TRANSIENT, format!("GET {host}: {what}"))
            })?;
        let status = resp.status().as_u16();
        if let Some(f) = failures::from_http_status(&reference, &host, status) {
            return Err(f);
        }
        let (body_sha256, body_len) = self.hash_body(resp, &host).await?;
        Ok(HttpCallOutput {
            status,
            body_sha256,
            body_len,
        })
    }

    /// Refuses to send `cred` to `url` unless its `allowed_hosts` lists the URL's host and
    /// port (or it has none and this worker does not require one).
    fn check_destination(
        &self,
        reference: &str,
        cred: &Credential,
        url: &reqwest::Url,
    ) -> Result<(), Failure> {
        // Input validation refuses `@` already; this holds whoever builds the URL.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Failure::new(
                failure_type::INVALID_INPUT,
                "`url` must not contain user information",
            ));
        }
        let destination = allowed_hosts::destination(url);
        match cred.allowed_hosts() {
            Some(list) if list.permits(url) => Ok(()),
            Some(_) => Err(Failure::new(
                failure_type::DESTINATION_NOT_ALLOWED,
                format!("{reference} is not allowed for host `{destination}` (allowed_hosts)"),
            )),
            None if self.http_policy.require_allowed_hosts => Err(Failure::new(
                failure_type::CREDENTIAL_INVALID,
                format!(
                    "{reference} has no allowed_hosts, which this worker requires; not sent to `{destination}`"
                ),
            )),
            None => Ok(()),
        }
    }

    /// Streams the body into SHA-256, stopping at `max_body_bytes`: a hostile server cannot
    /// make the worker buffer more than one chunk.
    async fn hash_body(
        &self,
        mut resp: reqwest::Response,
        host: &str,
    ) -> Result<(String, u64), Failure> {
        let max = self.http_policy.max_body_bytes;
        let too_large = || {
            Failure::new(
                failure_type::RESPONSE_TOO_LARGE,
                format!("GET {host}: response body exceeds {max} bytes"),
            )
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut hasher = Sha256::new();
        let mut len: u64 = 0;
        loop {
            let chunk = resp.chunk().await.map_err(|e| {
                let what = if e.is_timeout() {
                    "timed out reading the body"
                } else {
                    "reading the body failed"
                };
                Failure::new(failure_type::TRANSIENT, format!("GET {host}: {what}"))
            })?;
            let Some(chunk) = chunk else { break };
            len = len.saturating_add(chunk.len() as u64);
            if len > max {
                return Err(too_large());
            }
            hasher.update(&chunk);
        }
        Ok((hex::encode(hasher.finalize()), len))
    }
}
