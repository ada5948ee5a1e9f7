//! The access token handed to callers.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use reqwest::header::HeaderValue;

use crate::secret::SecretString;

/// Where a token's lifetime came from, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifetimeSource {
    /// The response's `expires_in`, possibly shortened by the JWT's `exp - iat`.
    ExpiresIn,
    /// The JWT's `exp - iat`: both on the issuer's clock, so skew cancels out.
    JwtIssuedAt,
    /// The JWT's `exp` against our wall clock: subject to clock skew, used
    /// only when nothing better is available.
    JwtExpiryWallClock,
    /// Nothing usable; the token is refreshed on a fixed schedule.
    Unknown,
}

/// A bearer access token. Cheap to clone; `Debug` never shows the value.
#[derive(Clone)]
pub struct AccessToken(Arc<TokenInner>);

struct TokenInner {
    value: SecretString,
    header: HeaderValue,
    scope: Option<String>,
    generation: u64,
    obtained_at: Instant,
    lifetime: Option<Duration>,
    lifetime_source: LifetimeSource,
    expires_at: Option<Instant>,
    usable_until: Option<Instant>,
    expiry_time: Option<SystemTime>,
    refresh_at: Instant,
}

pub(crate) struct TokenParts {
    pub value: SecretString,
    pub header: HeaderValue,
    pub scope: Option<String>,
    pub generation: u64,
    pub obtained_at: Instant,
    pub obtained_wall: SystemTime,
    pub lifetime: Option<Duration>,
    pub lifetime_source: LifetimeSource,
    pub leeway: Duration,
    pub refresh_delay: Duration,
}

impl AccessToken {
    pub(crate) fn new(p: TokenParts) -> Self {
        let expires_at = p.lifetime.map(|l| p.obtained_at + l);
        Self(Arc::new(TokenInner {
            usable_until: expires_at.map(|e| e - p.leeway),
            expiry_time: p.lifetime.map(|l| p.obtained_wall + l),
            expires_at,
            value: p.value,
            header: p.header,
            scope: p.scope,
            generation: p.generation,
            obtained_at: p.obtained_at,
            lifetime: p.lifetime,
            lifetime_source: p.lifetime_source,
            refresh_at: p.obtained_at + p.refresh_delay,
        }))
    }

    /// The token. Do not log it.
    pub fn expose_secret(&self) -> &str {
        self.0.value.expose_secret()
    }

    /// `Bearer <token>`, marked sensitive so `http`'s `Debug` hides it.
    pub fn bearer_header(&self) -> HeaderValue {
        self.0.header.clone()
    }

    /// The granted scope, if the server reported it.
    pub fn scope(&self) -> Option<&str> {
        self.0.scope.as_deref()
    }

    /// 1 for the first token this manager obtained, then increasing.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    /// When the request for this token was sent (monotonic). Expiry is
    /// measured from here rather than from receipt, which errs on the early side.
    pub fn obtained_at(&self) -> Instant {
        self.0.obtained_at
    }

    /// The lifetime used for scheduling, if known.
    pub fn lifetime(&self) -> Option<Duration> {
        self.0.lifetime
    }

    /// Where [`AccessToken::lifetime`] came from.
    pub fn lifetime_source(&self) -> LifetimeSource {
        self.0.lifetime_source
    }

    /// Expiry on the monotonic clock, if known.
    pub fn expires_at(&self) -> Option<Instant> {
        self.0.expires_at
    }

    /// Expiry as wall-clock time, for display; if known.
    pub fn expiry_time(&self) -> Option<SystemTime> {
        self.0.expiry_time
    }

    /// When the manager plans to replace this token (monotonic).
    pub fn refresh_at(&self) -> Instant {
        self.0.refresh_at
    }

    /// Whether the token may still be handed out at `now` (expiry minus
    /// leeway). A token of unknown lifetime is usable until replaced.
    pub fn is_usable_at(&self, now: Instant) -> bool {
        self.0.usable_until.is_none_or(|until| now < until)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"...")
            .field("generation", &self.0.generation)
            .field("scope", &self.0.scope)
            .field("lifetime", &self.0.lifetime)
            .field("lifetime_source", &self.0.lifetime_source)
            .field("expiry_time", &self.0.expiry_time)
            .finish()
    }
}

/// The `kid` of an unverified JWT header; `None` for anything else (opaque tokens).
/// Used only to notice that the key which signed our own token was revoked.
pub(crate) fn jwt_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("kid")?.as_str().map(str::to_owned)
}

/// `exp - iat`, or `exp - wall_now`, from an unverified JWT payload.
///
/// Only timing is read from the payload; nothing here is trusted for
/// authorization, which is the server's job. Anything that is not a
/// well-formed JWT simply yields `None`.
pub(crate) fn jwt_lifetime(
    token: &str,
    wall_now: SystemTime,
) -> Option<(Duration, LifetimeSource)> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    if let Some(iat) = claims.get("iat").and_then(serde_json::Value::as_f64) {
        let life = exp - iat;
        return (life.is_finite() && life > 0.0)
            .then(|| (Duration::from_secs_f64(life), LifetimeSource::JwtIssuedAt));
    }
    let now = wall_now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let life = exp - now;
    (life.is_finite() && life > 0.0).then(|| {
        (
            Duration::from_secs_f64(life),
            LifetimeSource::JwtExpiryWallClock,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"ES256"}"#),
            e.encode(claims)
        )
    }

    #[test]
    fn jwt_lifetime_prefers_iat() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(5_000);
        let (l, s) = jwt_lifetime(&jwt(r#"{"iat":1000,"exp":1900}"#), now).unwrap();
        assert_eq!(
            (l, s),
            (Duration::from_secs(900), LifetimeSource::JwtIssuedAt)
        );
        let (l, s) = jwt_lifetime(&jwt(r#"{"exp":5600}"#), now).unwrap();
        assert_eq!(
            (l, s),
            (Duration::from_secs(600), LifetimeSource::JwtExpiryWallClock)
        );
        assert!(jwt_lifetime(&jwt(r#"{"exp":4000}"#), now).is_none());
        assert!(jwt_lifetime("opaque-token", now).is_none());
        assert!(jwt_lifetime("a.!!!.c", now).is_none());
    }
}
