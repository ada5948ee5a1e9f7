//! Who is calling: the verified client certificate, and the bearer token bound to it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bulwark_pki::TokenError;
use bulwark_pki::jwt::{Claims, Jwks, VerifyOptions};
use time::OffsetDateTime;

/// The caller's certificate as the gate uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The leaf's URI SAN (`spiffe://<domain>/client/<identity>`), empty if it has none.
    pub uri: String,
    /// RFC 8705 `x5t#S256` of the leaf.
    pub thumbprint: String,
}

impl Peer {
    pub fn from_der(der: &[u8]) -> Self {
        Peer {
            uri: bulwark_pki::binding::uri_san(der).unwrap_or_default(),
            thumbprint: bulwark_pki::binding::thumbprint_s256(der),
        }
    }

    /// The identity the policy names: the last segment after `/client/`, or the whole URI.
    pub fn identity(&self) -> &str {
        match self.uri.rsplit_once("/client/") {
            Some((_, id)) if !id.is_empty() => id,
            _ => &self.uri,
        }
    }
}

/// Parsed peers by leaf, so a connection's many calls parse its certificate once. Bounded:
/// cleared when full (only authenticated peers get here, and they are few).
#[derive(Debug, Default)]
pub struct PeerCache {
    peers: Mutex<HashMap<Arc<[u8]>, Arc<Peer>>>,
}

const PEER_CACHE_MAX: usize = 4096;

impl PeerCache {
    pub fn get(&self, der: &Arc<[u8]>) -> Arc<Peer> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = peers.get(der) {
            return p.clone();
        }
        if peers.len() >= PEER_CACHE_MAX {
            peers.clear();
        }
        let p = Arc::new(Peer::from_der(der));
        peers.insert(der.clone(), p.clone());
        p
    }
}

/// How a token must be bound to the certificate it arrives with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Binding {
    /// `cnf.uri` equals the certificate's URI SAN: survives client-certificate rotation,
    /// because an HTTP/2 connection (and its certificate) outlives the token on it.
    Identity,
    /// `cnf.x5t#S256` equals the certificate's thumbprint (RFC 8705 strictly).
    Certificate,
}

/// Why a call's credentials were refused (the message goes to the caller: never a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("no bearer token (send `authorization: Bearer <JWT>`)")]
    MissingToken,
    #[error("the bearer token was refused: {0}")]
    Token(TokenError),
    #[error("the token is not bound to a certificate (no `cnf` claim)")]
    Unbound,
    #[error("the token is bound to {bound:?}, but the connection's certificate is {presented:?}")]
    WrongCertificate { bound: String, presented: String },
    #[error("the token is bound to another certificate (x5t#S256 differs)")]
    WrongThumbprint,
}

/// `jwks.json`, re-read when it changes, and the tokens verified against it.
#[derive(Debug)]
pub struct Keys {
    path: PathBuf,
    jwks: ArcSwap<(Vec<u8>, Jwks)>,
    audience: String,
    max_lifetime: time::Duration,
    /// Verified claims by token: a token's signature is checked once, not on every call.
    /// Cleared on every JWKS change, so a revoked key takes effect at the next reload.
    verified: Mutex<HashMap<Box<str>, Arc<Claims>>>,
    /// Bumped (under the `verified` lock) on every JWKS change: a verification that began
    /// against the previous set does not enter the cache.
    generation: std::sync::atomic::AtomicU64,
}

const VERIFIED_MAX: usize = 8192;

impl Keys {
    pub fn load(
        path: impl Into<PathBuf>,
        audience: &str,
        max_lifetime: time::Duration,
    ) -> Result<Self, String> {
        let path = path.into();
        let (raw, jwks) = read_jwks(&path)?;
        Ok(Keys {
            path,
            jwks: ArcSwap::from_pointee((raw, jwks)),
            audience: audience.to_owned(),
            max_lifetime,
            verified: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `Ok(true)` when the file changed and the new set was taken.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let raw = std::fs::read(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        if raw == self.jwks.load().0 {
            return Ok(false);
        }
        let (raw, jwks) = read_jwks(&self.path)?;
        self.jwks.store(Arc::new((raw, jwks)));
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(true)
    }

    pub fn key_count(&self) -> usize {
        self.jwks.load().1.keys.len()
    }

    /// Verifies `token` (signature by a published key, audience, lifetime, expiry).
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Arc<Claims>, AuthError> {
        let leeway = bulwark_pki::jwt::DEFAULT_LEEWAY.whole_seconds();
        {
            let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(token) {
                // Only time can invalidate a verified token between JWKS changes.
                if now.unix_timestamp() < c.exp.saturating_add(leeway) {
                    return Ok(c.clone());
                }
                return Err(AuthError::Token(TokenError::Expired));
            }
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let jwks = self.jwks.load();
        let opts = VerifyOptions::new(self.max_lifetime).audience(&self.audience);
        let claims = Arc::new(
            bulwark_pki::jwt::verify(token, &jwks.1, now, &opts).map_err(AuthError::Token)?,
        );
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(std::sync::atomic::Ordering::Acquire) != generation {
            // The key set changed meanwhile: the result stands for this call only.
            return Ok(claims);
        }
        if cache.len() >= VERIFIED_MAX {
            cache.clear();
        }
        cache.insert(token.into(), claims.clone());
        Ok(claims)
    }
}

fn read_jwks(path: &Path) -> Result<(Vec<u8>, Jwks), String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let jwks: Jwks = serde_json::from_slice(&raw)
        .map_err(|e| format!("{}: not a JWK set: {e}", path.display()))?;
    if jwks.keys.is_empty() {
        return Err(format!("{}: the JWK set has no keys", path.display()));
    }
    Ok((raw, jwks))
}

/// The bearer token of an `authorization` header value.
pub fn bearer(value: Option<&http::HeaderValue>) -> Result<&str, AuthError> {
    let v = value
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::MissingToken)?;
    let (scheme, token) = v.trim().split_once(' ').ok_or(AuthError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token.trim())
}

/// The token must be bound to the certificate it came with.
pub fn check_binding(claims: &Claims, peer: &Peer, mode: Binding) -> Result<(), AuthError> {
    let cnf = claims.cnf.as_ref().ok_or(AuthError::Unbound)?;
    match mode {
        Binding::Identity => match cnf.uri.as_deref() {
            Some(uri) if !uri.is_empty() && uri == peer.uri => Ok(()),
            Some(uri) => Err(AuthError::WrongCertificate {
                bound: uri.to_owned(),
                presented: peer.uri.clone(),
            }),
            None => Err(AuthError::Unbound),
        },
        Binding::Certificate => {
            // A thumbprint is public (it is in the token), so a plain comparison leaks nothing.
            if cnf.x5t_s256 == peer.thumbprint {
                Ok(())
            } else {
                Err(AuthError::WrongThumbprint)
            }
        }
    }
}
