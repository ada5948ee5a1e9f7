//! The client-credentials grant (RFC 6749 section 4.4): authenticate the client, narrow the
//! scope, mint a short-lived JWT in the claim shape Temporal's default claim mapper reads.

use std::{net::IpAddr, sync::Arc, time::Duration as StdDuration};

use bulwark_pki::jwt::Claims;
use time::{Duration, OffsetDateTime};

use crate::{
    ratelimit::RateLimiter,
    scope::ScopeSet,
    secret::{ClientSecret, SecretHash},
    signer::KeyFile,
    store::ClientStore,
};

/// RFC 6749 section 5.2 error codes, plus rate limiting and internal failure. The messages
/// are fixed strings: nothing about why authentication failed, so nothing to enumerate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("the requested scope is invalid, unknown, or exceeds the scope granted to the client")]
    InvalidScope,
    #[error("only the client_credentials grant is supported")]
    UnsupportedGrantType,
    #[error("too many requests")]
    RateLimited(StdDuration),
    #[error("the server could not issue a token")]
    Internal,
}

impl GrantError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::InvalidClient => "invalid_client",
            GrantError::InvalidRequest(_) => "invalid_request",
            GrantError::InvalidScope => "invalid_scope",
            GrantError::UnsupportedGrantType => "unsupported_grant_type",
            GrantError::RateLimited(_) => "slow_down",
            GrantError::Internal => "server_error",
        }
    }
}

/// A parsed token request.
#[derive(Debug)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub client_id: String,
    pub client_secret: ClientSecret,
}

/// A minted access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
    pub client_id: String,
}

/// Settings for [`TokenIssuer`].
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    pub issuer: String,
    pub ttl: Duration,
    pub per_client_per_second: f64,
    pub per_client_burst: u32,
    pub per_address_per_second: f64,
    pub per_address_burst: u32,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        IssuerSettings {
            issuer: "bulwark".into(),
            ttl: Duration::minutes(15),
            per_client_per_second: 50.0,
            per_client_burst: 100,
            per_address_per_second: 100.0,
            per_address_burst: 200,
        }
    }
}

/// The authorization server's token issuance.
#[derive(Debug)]
pub struct TokenIssuer {
    store: ClientStore,
    key: Arc<KeyFile>,
    settings: IssuerSettings,
    by_client: RateLimiter,
    by_address: RateLimiter,
    /// Compared against when the client is unknown, so unknown and known clients take the
    /// same path and the same time.
    decoy: SecretHash,
}

impl TokenIssuer {
    pub fn new(store: ClientStore, key: Arc<KeyFile>, settings: IssuerSettings) -> Self {
        let decoy = ClientSecret::from_presented("bulwark-decoy-secret-never-issued").hash();
        TokenIssuer {
            by_client: RateLimiter::new(settings.per_client_per_second, settings.per_client_burst),
            by_address: RateLimiter::new(
                settings.per_address_per_second,
                settings.per_address_burst,
            ),
            store,
            key,
            settings,
            decoy,
        }
    }

    pub fn settings(&self) -> &IssuerSettings {
        &self.settings
    }

    pub fn store(&self) -> &ClientStore {
        &self.store
    }

    pub fn key(&self) -> &Arc<KeyFile> {
        &self.key
    }

    pub async fn issue(&self, req: TokenRequest, peer: IpAddr) -> Result<IssuedToken, GrantError> {
        self.by_address
            .check(&peer.to_string())
            .map_err(GrantError::RateLimited)?;
        match req.grant_type.as_deref() {
            Some("client_credentials") => {}
            Some(_) => return Err(GrantError::UnsupportedGrantType),
            None => return Err(GrantError::InvalidRequest("grant_type is required")),
        }
        self.by_client
            .check(&req.client_id)
            .map_err(GrantError::RateLimited)?;
        let record = self.store.lookup(&req.client_id).await.map_err(|e| {
            tracing::error!(error = %e, "client lookup failed");
            GrantError::Internal
        })?;
        let (client, hashes) = match record {
            Some(r) => (Some(r.client), r.secrets),
            None => (None, vec![(0, self.decoy)]),
        };
        // Check every acceptable hash without short-circuiting.
        let matched = hashes
            .iter()
            .fold(false, |acc, (_, h)| h.matches(&req.client_secret) | acc);
        let client = match client {
            Some(c) if matched && c.enabled => c,
            _ => return Err(GrantError::InvalidClient),
        };
        let granted = match req.scope.as_deref().map(str::trim) {
            None | Some("") => client.allowed.clone(),
            Some(s) => {
                let requested: ScopeSet = s.parse().map_err(|_| GrantError::InvalidScope)?;
                if !requested.is_subset(&client.allowed) {
                    return Err(GrantError::InvalidScope);
                }
                requested
            }
        };
        let key = self.key.current();
        let claims = Claims::new(
            &client.client_id,
            &self.settings.issuer,
            &client.audience,
            &granted.to_string(),
            granted.permissions(),
            OffsetDateTime::now_utc(),
            self.settings.ttl,
        );
        let access_token = key.sign(&claims).map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            GrantError::Internal
        })?;
        Ok(IssuedToken {
            access_token,
            expires_in: self.settings.ttl.whole_seconds(),
            scope: granted.to_string(),
            client_id: client.client_id,
        })
    }
}
