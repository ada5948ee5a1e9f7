//! Bearer-token authentication for the API: tokens minted by bulwark-control, verified
//! against the JWKS on disk (re-read when it changes), audience `bulwark-api`, scopes per
//! route. A token living longer than the configured maximum (`exp - iat`) is refused even
//! when validly signed: control never mints one, so it can only come from a leaked key.

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime},
};

use axum::http::{HeaderMap, header};
use bulwark_pki::jwt::{Claims, Jwks, VerifyOptions, verify};
use time::OffsetDateTime;

/// Why a request was not authenticated or not authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No bearer token: 401 with a bare challenge.
    Missing,
    /// A token that did not verify (expired, tampered, unknown key, wrong audience): 401.
    Invalid,
    /// A validly signed token issued or valid from a time beyond the leeway in this
    /// service's future: 401, and the message points at the clocks. Said only after the
    /// signature verified, so it tells a forger nothing.
    NotYetValid,
    /// A valid token without the scope the route needs: 403.
    InsufficientScope(&'static str),
}

#[derive(Debug)]
struct Cached {
    // Shared, so the per-request read is a reference-count bump rather than a deep copy.
    jwks: Arc<Jwks>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// Verifies bearer tokens against a JWKS file.
#[derive(Debug)]
pub struct Verifier {
    path: PathBuf,
    audience: String,
    max_lifetime: time::Duration,
    cache: RwLock<Cached>,
}

const RECHECK: Duration = Duration::from_secs(2);

/// Default longest accepted token lifetime: control's access tokens live 15 minutes by
/// default, so an hour leaves room for a longer configured TTL without accepting days.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// The maximum must admit every token control legitimately mints for the API.
pub fn check_max_lifetime(
    max_lifetime: Duration,
    access_token_ttl: Duration,
) -> Result<(), String> {
    if max_lifetime < access_token_ttl {
        return Err(format!(
            "the maximum token lifetime ({}s) is shorter than the access-token TTL ({}s): every token would be refused",
            max_lifetime.as_secs(),
            access_token_ttl.as_secs()
        ));
    }
    Ok(())
}

impl Verifier {
    pub fn new(jwks_path: PathBuf, audience: impl Into<String>) -> Self {
        Verifier {
            path: jwks_path,
            audience: audience.into(),
            max_lifetime: time::Duration::try_from(DEFAULT_MAX_LIFETIME)
                .unwrap_or(time::Duration::HOUR),
            cache: RwLock::new(Cached {
                jwks: Arc::new(Jwks::default()),
                modified: None,
                checked: Instant::now() - RECHECK * 2,
            }),
        }
    }

    /// Refuse tokens whose `exp - iat` exceeds `max` (default [`DEFAULT_MAX_LIFETIME`]).
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        // Saturate: an absurdly large setting means "no practical bound", not an error.
        self.max_lifetime = time::Duration::try_from(max).unwrap_or(time::Duration::MAX);
        self
    }

    fn jwks(&self) -> Arc<Jwks> {
        if let Ok(c) = self.cache.read() {
            if c.checked.elapsed() < RECHECK {
                return c.jwks.clone();
            }
        }
        let mut c = match self.cache.write() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        c.checked = Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified != c.modified {
            match std::fs::read(&self.path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Jwks>(&b).map_err(|e| e.to_string()))
            {
                Ok(j) => {
                    c.jwks = Arc::new(j);
                    c.modified = modified;
                }
                Err(e) => {
                    tracing::warn!(error = %e, path = %self.path.display(), "JWKS unreadable; keeping the previous key set")
                }
            }
        }
        c.jwks.clone()
    }

    /// Authenticate the request and require `scope`.
    pub fn authorize(&self, headers: &HeaderMap, scope: &'static str) -> Result<Claims, Denied> {
        let value = headers.get(header::AUTHORIZATION).ok_or(Denied::Missing)?;
        let value = value.to_str().map_err(|_| Denied::Invalid)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(Denied::Missing)?;
        let claims = verify(
            token.trim(),
            &self.jwks(),
            OffsetDateTime::now_utc(),
            &VerifyOptions::new(self.max_lifetime).audience(&self.audience),
        )
        .map_err(|e| {
            tracing::info!(reason = %e, "bearer token rejected");
            match e {
                bulwark_pki::error::TokenError::NotYetValid => Denied::NotYetValid,
                _ => Denied::Invalid,
            }
        })?;
        if claims.scope.split(' ').any(|s| s == scope) {
            Ok(claims)
        } else {
            Err(Denied::InsufficientScope(scope))
        }
    }

    /// Whether a key set is loaded (for readiness).
    pub fn has_keys(&self) -> bool {
        !self.jwks().keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maximum_below_the_access_token_ttl_is_refused() {
        let m = Duration::from_secs(60);
        assert!(check_max_lifetime(DEFAULT_MAX_LIFETIME, Duration::from_secs(900)).is_ok());
        assert!(check_max_lifetime(m, m).is_ok());
        let err = check_max_lifetime(m, m + Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("shorter than the access-token TTL"), "{err}");
    }
}
