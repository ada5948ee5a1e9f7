//! The client-credentials grant (RFC 6749 section 4.4): authenticate the client, narrow the
//! scope, mint a short-lived JWT in the claim shape Temporal's default claim mapper reads.

use std::{net::IpAddr, sync::Arc};

use bulwark_pki::{binding::Confirmation, jwt::Claims};
use time::{Duration, OffsetDateTime};

use crate::{
    ClientId,
    ratelimit::Rate,
    scope::ScopeSet,
    secret::{ClientSecret, SecretHash},
    signer::KeyFile,
    store::ClientStore,
    throttle::{LimiterKeys, Throttle, ThrottleSettings, Throttled},
};

/// The audience of tokens for Temporal (the audience registered for Temporal clients). A
/// granted token with it is bound to the client certificate it was requested over (`cnf`),
/// which bulwark-gate checks on every call.
pub const TEMPORAL_AUDIENCE: &str = "temporal";

/// The refusal of a Temporal-audience token request made without a client certificate.
pub const CERTIFICATE_REQUIRED: &str =
    "tokens for Temporal are bound to a client certificate: connect with this client's certificate";

/// The refusal of a Temporal-audience token request whose certificate names no identity.
pub const CERTIFICATE_WITHOUT_IDENTITY: &str =
    "the client certificate has no URI subject alternative name to bind a token to";

/// The longest client secret worth hashing. Issued secrets are 43 characters; this leaves
/// room for secrets set by other means without letting a caller make us hash megabytes.
pub const MAX_SECRET_LEN: usize = 256;

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
    RateLimited(Throttled),
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

/// A token request that has passed the syntax checks: built only by [`TokenRequest::new`].
#[derive(Debug)]
pub struct TokenRequest {
    scope: Option<String>,
    client_id: ClientId,
    client_secret: ClientSecret,
    /// The verified client certificate (leaf, DER) the request came over, if any.
    client_certificate: Option<Arc<[u8]>>,
}

impl TokenRequest {
    /// The checks that cost nothing and need no state. A client id that cannot be registered
    /// or an oversized secret is `invalid_client`, the same answer as a wrong secret, so the
    /// response tells a caller nothing about which ids exist or what shape they have.
    pub fn new(
        grant_type: Option<&str>,
        scope: Option<String>,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, GrantError> {
        let client_id = ClientId::parse(client_id).ok_or(GrantError::InvalidClient)?;
        if client_secret.is_empty() || client_secret.len() > MAX_SECRET_LEN {
            return Err(GrantError::InvalidClient);
        }
        match grant_type {
            Some("client_credentials") => {}
            Some(_) => return Err(GrantError::UnsupportedGrantType),
            None => return Err(GrantError::InvalidRequest("grant_type is required")),
        }
        Ok(TokenRequest {
            scope,
            client_id,
            client_secret: ClientSecret::from_presented(client_secret),
            client_certificate: None,
        })
    }

    /// The client certificate (leaf, DER) the request arrived over, verified by the listener
    /// against the client trust bundle. A token for Temporal is bound to it; without one such
    /// a token is refused.
    #[must_use]
    pub fn with_client_certificate(mut self, der: Arc<[u8]>) -> Self {
        self.client_certificate = Some(der);
        self
    }

    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }
}

/// A minted access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
    pub client_id: String,
    /// The identity (URI SAN) of the certificate the token is bound to, for logs; `None` for
    /// an unbound (bulwark-api audience) token.
    pub bound_identity: Option<String>,
}

/// Settings for [`TokenIssuer`]. The failure budgets are in [`ThrottleSettings`].
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    pub issuer: String,
    pub ttl: Duration,
    /// Tokens one authenticated client may get (charged only after its secret checked out).
    pub per_client_per_second: f64,
    pub per_client_burst: u32,
    /// Well-formed requests one address may make, authenticated or not. Generous: it only
    /// stops one address hammering.
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
    throttle: Throttle,
    /// Compared against when the client is unknown, so unknown and known clients take the
    /// same path and the same time.
    decoy: SecretHash,
}

impl TokenIssuer {
    /// An issuer with the default failure budgets ([`ThrottleSettings::default`]).
    pub fn new(store: ClientStore, key: Arc<KeyFile>, settings: IssuerSettings) -> Self {
        Self::with_throttle(store, key, settings, &ThrottleSettings::default())
    }

    pub fn with_throttle(
        store: ClientStore,
        key: Arc<KeyFile>,
        settings: IssuerSettings,
        throttle: &ThrottleSettings,
    ) -> Self {
        let decoy = ClientSecret::from_presented("bulwark-decoy-secret-never-issued").hash();
        TokenIssuer {
            throttle: Throttle::new(
                Rate::new(settings.per_address_per_second, settings.per_address_burst),
                Rate::new(settings.per_client_per_second, settings.per_client_burst),
                throttle,
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

    /// The number of keys each limiter holds now.
    pub fn limiter_keys(&self) -> LimiterKeys {
        self.throttle.keys()
    }

    /// Steps 2-5 of [`crate::throttle`]; step 1 was [`TokenRequest::new`].
    pub async fn issue(&self, req: TokenRequest, peer: IpAddr) -> Result<IssuedToken, GrantError> {
        self.throttle.admit(peer).map_err(GrantError::RateLimited)?;
        self.throttle
            .check_failures(&req.client_id, peer)
            .map_err(GrantError::RateLimited)?;
        let record = self
            .store
            .lookup(req.client_id.as_str())
            .await
            .map_err(|e| {
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
            _ => {
                // The client id has the registered shape, so it is safe to log; how many of
                // these lines a caller can cause is bounded by the failure budgets.
                tracing::info!(client = %req.client_id, %peer, "client authentication failed");
                self.throttle.record_failure(&req.client_id, peer);
                return Err(GrantError::InvalidClient);
            }
        };
        // Only a caller holding the secret gets here, so only the client itself can use up
        // its issuance budget.
        self.throttle
            .admit_issuance(&req.client_id)
            .map_err(GrantError::RateLimited)?;
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
        let cnf = if client.audience == TEMPORAL_AUDIENCE {
            Some(bind(&req)?)
        } else {
            None
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
        let bound_identity = cnf.as_ref().and_then(|c| c.uri.clone());
        let claims = match cnf {
            Some(c) => claims.with_cnf(c),
            None => claims,
        };
        let access_token = key.sign(&claims).map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            GrantError::Internal
        })?;
        Ok(IssuedToken {
            access_token,
            expires_in: self.settings.ttl.whole_seconds(),
            scope: granted.to_string(),
            client_id: client.client_id,
            bound_identity,
        })
    }
}

/// The `cnf` claim for a Temporal token: the request's certificate, or a refusal.
fn bind(req: &TokenRequest) -> Result<Confirmation, GrantError> {
    let der = req
        .client_certificate
        .as_deref()
        .ok_or(GrantError::InvalidRequest(CERTIFICATE_REQUIRED))?;
    Confirmation::for_certificate(der).map_err(|e| match e {
        bulwark_pki::binding::BindingError::NoUriSan => {
            GrantError::InvalidRequest(CERTIFICATE_WITHOUT_IDENTITY)
        }
        // The listener's verifier parsed it, so this is a bug of ours, not the caller's.
        other => {
            tracing::error!(error = %other, client = %req.client_id, "cannot read a verified client certificate");
            GrantError::Internal
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request() -> TokenRequest {
        TokenRequest::new(
            Some("client_credentials"),
            None,
            "worker",
            "a-secret-of-some-length",
        )
        .unwrap()
    }

    fn leaf(dir: &std::path::Path, name: &str) -> Arc<[u8]> {
        let pem = std::fs::read_to_string(dir.join(name)).unwrap();
        let b64: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        Arc::from(der)
    }

    #[test]
    fn temporal_tokens_bind_to_the_request_certificate_or_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        bulwark_pki::generate(
            &dir,
            &bulwark_pki::Settings::default(),
            bulwark_pki::Mode::Missing,
            OffsetDateTime::now_utc(),
        )
        .unwrap();

        assert_eq!(
            bind(&request()).unwrap_err(),
            GrantError::InvalidRequest(CERTIFICATE_REQUIRED)
        );

        let der = leaf(&dir, "client-worker.crt");
        let cnf = bind(&request().with_client_certificate(der.clone())).unwrap();
        assert_eq!(cnf.x5t_s256, bulwark_pki::binding::thumbprint_s256(&der));
        assert_eq!(
            cnf.uri.as_deref(),
            Some("spiffe://bulwark.local/client/worker")
        );

        // A certificate naming no identity (a server leaf: DNS names only) binds nothing.
        let server = leaf(&dir, "control-server.crt");
        assert_eq!(
            bind(&request().with_client_certificate(server)).unwrap_err(),
            GrantError::InvalidRequest(CERTIFICATE_WITHOUT_IDENTITY)
        );
        assert_eq!(
            bind(&request().with_client_certificate(Arc::from(&b"junk"[..]))).unwrap_err(),
            GrantError::Internal
        );
    }
}
