//! JWT signing keys, JWKS documents and compact-JWS tokens in the shape Temporal's default
//! claim mapper reads.
//!
//! Verification, the side that parses untrusted input, is `jsonwebtoken`'s, with the
//! algorithm pinned per key: a token is checked only with the algorithm of the key its `kid`
//! names. Signing frames our own claims with `jsonwebtoken`'s header type and signs with a
//! ring key pair parsed once per key: `jsonwebtoken::encode` parses the private key again
//! for every signature (`benches/jwt.rs` measures both). What this module adds is Bulwark's
//! rules: the RFC 7638 thumbprint as `kid`, and the claim checks below.
//!
//! Verification is deliberately strict: only ES256 and RS256, the key is chosen by `kid`, the
//! header algorithm must match the key's type, and `exp` and `iat` are mandatory. That closes
//! `alg: none`, HS256-with-the-public-key and unknown-key attacks in one place. The lifetime
//! (`exp - iat`) is bounded by the caller's maximum and `iat` may not lie in the future, so
//! even a leaked signing key cannot mint a token that outlives a revocation by more than
//! that maximum.

use std::{fmt, str::FromStr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use ring::{
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Result, TokenError};

/// The `cnf` claim type, defined with the binding rules in [`crate::binding`].
pub use crate::binding::Confirmation;

/// JWS algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    #[default]
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "RS256")]
    Rs256,
}

impl FromStr for JwtAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Ok(JwtAlgorithm::Es256),
            "RS256" => Ok(JwtAlgorithm::Rs256),
            _ => Err(Error::InvalidInput {
                what: "JWT algorithm",
                value: s.to_owned(),
                reason: "expected ES256 or RS256",
            }),
        }
    }
}

impl JwtAlgorithm {
    fn jose(self) -> Algorithm {
        match self {
            JwtAlgorithm::Es256 => Algorithm::ES256,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::Rs256 => "RS256",
        })
    }
}

/// A public key in JWK form (RFC 7517), EC P-256 or RSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub e: Option<String>,
}

impl Jwk {
    /// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        use sha2::Digest;
        let canonical = match self.kty.as_str() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                self.crv.as_deref().unwrap_or_default(),
                self.x.as_deref().unwrap_or_default(),
                self.y.as_deref().unwrap_or_default()
            ),
            _ => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                self.e.as_deref().unwrap_or_default(),
                self.n.as_deref().unwrap_or_default()
            ),
        };
        B64.encode(sha2::Sha256::digest(canonical.as_bytes()))
    }

    fn algorithm(&self) -> Option<JwtAlgorithm> {
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("EC", Some("P-256")) => Some(JwtAlgorithm::Es256),
            ("RSA", None) => Some(JwtAlgorithm::Rs256),
            _ => None,
        }
    }

    /// The verification key, or `None` for a JWK that is not a usable ES256/RS256 key.
    fn decoding_key(&self) -> Option<DecodingKey> {
        match self.algorithm()? {
            JwtAlgorithm::Es256 => {
                DecodingKey::from_ec_components(self.x.as_deref()?, self.y.as_deref()?).ok()
            }
            JwtAlgorithm::Rs256 => {
                DecodingKey::from_rsa_components(self.n.as_deref()?, self.e.as_deref()?).ok()
            }
        }
    }
}

/// A JWK Set document (`jwks.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// The private key, parsed once (signing is on the token endpoint's hot path).
enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A JWT signing key. `Debug` prints only the algorithm and `kid`.
pub struct SigningKey {
    alg: JwtAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    signer: Signer,
    jwk: Jwk,
    public_pem: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.jwk.kid)
            .field("key", &"...")
            .finish()
    }
}

const RSA_BITS: usize = 2048;

fn gen_err(reason: impl fmt::Display) -> Error {
    Error::Generate {
        what: "JWT signing key".into(),
        reason: reason.to_string(),
    }
}

impl SigningKey {
    pub fn generate(alg: JwtAlgorithm) -> Result<Self> {
        let pkcs8 = match alg {
            JwtAlgorithm::Es256 => EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(gen_err)?
            .as_ref()
            .to_vec(),
            JwtAlgorithm::Rs256 => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                    .map_err(gen_err)?;
                key.to_pkcs8_der().map_err(gen_err)?.as_bytes().to_vec()
            }
        };
        Self::from_pkcs8(alg, Zeroizing::new(pkcs8)).map_err(gen_err)
    }

    /// Load a PKCS#8 PEM key; the algorithm follows from the key type.
    pub fn from_pem(pem: &str) -> std::result::Result<Self, String> {
        use rustls_pki_types::{PrivatePkcs8KeyDer, pem::PemObject};
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("not a PKCS#8 PEM private key: {e}"))?;
        let bytes = Zeroizing::new(der.secret_pkcs8_der().to_vec());
        Self::from_pkcs8(JwtAlgorithm::Es256, bytes.clone())
            .or_else(|_| Self::from_pkcs8(JwtAlgorithm::Rs256, bytes))
            .map_err(|_| "neither an EC P-256 nor an RSA key".to_owned())
    }

    fn from_pkcs8(
        alg: JwtAlgorithm,
        pkcs8: Zeroizing<Vec<u8>>,
    ) -> std::result::Result<Self, String> {
        let (signer, mut jwk, public_pem) = match alg {
            JwtAlgorithm::Es256 => {
                let kp = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &pkcs8,
                    &SystemRandom::new(),
                )
                .map_err(|e| e.to_string())?;
                let point = kp.public_key().as_ref();
                if point.len() != 65 {
                    return Err("unexpected EC point encoding".into());
                }
                let jwk = Jwk {
                    kty: "EC".into(),
                    kid: String::new(),
                    alg: "ES256".into(),
                    use_: "sig".into(),
                    crv: Some("P-256".into()),
                    x: Some(B64.encode(&point[1..33])),
                    y: Some(B64.encode(&point[33..65])),
                    n: None,
                    e: None,
                };
                let pem = ec_p256_spki_pem(point);
                (Signer::Ec(kp), jwk, pem)
            }
            JwtAlgorithm::Rs256 => {
                use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
                use rsa::traits::PublicKeyParts;
                let kp = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
                let rk = rsa::RsaPrivateKey::from_pkcs8_der(&pkcs8).map_err(|e| e.to_string())?;
                let public = rk.to_public_key();
                let jwk = Jwk {
                    kty: "RSA".into(),
                    kid: String::new(),
                    alg: "RS256".into(),
                    use_: "sig".into(),
                    crv: None,
                    x: None,
                    y: None,
                    n: Some(B64.encode(public.n().to_bytes_be())),
                    e: Some(B64.encode(public.e().to_bytes_be())),
                };
                let pem = public
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| e.to_string())?;
                (Signer::Rsa(kp), jwk, pem)
            }
        };
        jwk.kid = jwk.thumbprint();
        Ok(SigningKey {
            alg,
            pkcs8,
            signer,
            jwk,
            public_pem,
        })
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.jwk.kid
    }

    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    pub fn private_pem(&self) -> crate::keys::PrivateKeyPem {
        use base64::engine::general_purpose::STANDARD;
        let b64 = Zeroizing::new(STANDARD.encode(&*self.pkcs8));
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        crate::keys::PrivateKeyPem::new(out)
    }

    /// Sign `claims` as a compact JWS with `kid` and `typ: JWT` in the header.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        self.sign_json(claims)
    }

    /// Sign any claims object (tests use it for claims `Claims` would never produce).
    pub(crate) fn sign_json(&self, claims: &impl Serialize) -> Result<String> {
        let mut header = Header::new(self.alg.jose());
        header.kid = Some(self.kid().to_owned());
        header.typ = Some("JWT".into());
        let part = |v: &dyn erased_json::Json| v.to_b64();
        let input = format!("{}.{}", part(&header)?, part(claims)?);
        let sig = match &self.signer {
            Signer::Ec(kp) => kp
                .sign(&SystemRandom::new(), input.as_bytes())
                .map_err(gen_err)?
                .as_ref()
                .to_vec(),
            Signer::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public().modulus_len()];
                kp.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut sig,
                )
                .map_err(gen_err)?;
                sig
            }
        };
        Ok(format!("{input}.{}", B64.encode(sig)))
    }
}

mod erased_json {
    use super::{B64, Engine, Result, Serialize, gen_err};
    pub(super) trait Json {
        fn to_b64(&self) -> Result<String>;
    }
    impl<T: Serialize> Json for T {
        fn to_b64(&self) -> Result<String> {
            Ok(B64.encode(serde_json::to_vec(self).map_err(gen_err)?))
        }
    }
}

/// DER SubjectPublicKeyInfo prefix for an uncompressed P-256 point (id-ecPublicKey, prime256v1).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn ec_p256_spki_pem(point: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point);
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// Token scope; decides the permissions a static token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "temporal-system")]
    System,
    #[serde(rename = "temporal-worker")]
    Worker,
    #[serde(rename = "temporal-client")]
    Client,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::System, Scope::Worker, Scope::Client];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::System => "temporal-system",
            Scope::Worker => "temporal-worker",
            Scope::Client => "temporal-client",
        }
    }

    /// Permissions in Temporal's `<namespace>:<role>` form. Workers get `write` because
    /// Temporal's `worker` role alone cannot poll task queues.
    pub fn permissions(self, namespaces: &[crate::names::Namespace]) -> Vec<String> {
        match self {
            Scope::System => vec!["temporal-system:admin".to_owned()],
            Scope::Worker | Scope::Client => {
                namespaces.iter().map(|ns| format!("{ns}:write")).collect()
            }
        }
    }
}

/// The claims Bulwark mints. Temporal reads `permissions`; the rest is for auditing and
/// for Bulwark's own services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub permissions: Vec<String>,
    pub scope: String,
    /// The certificate the token is bound to (RFC 7800 / RFC 8705). Optional, so tokens
    /// minted before binding existed still parse; [`verify`] does not look at it: the
    /// binding is enforced where the caller's certificate is known (bulwark-gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl Claims {
    pub fn new(
        sub: &str,
        iss: &str,
        aud: &str,
        scope: &str,
        permissions: Vec<String>,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Self {
        let iat = now.unix_timestamp();
        Claims {
            sub: sub.to_owned(),
            iss: iss.to_owned(),
            aud: aud.to_owned(),
            iat,
            nbf: iat,
            exp: (now + ttl).unix_timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            permissions,
            scope: scope.to_owned(),
            cnf: None,
        }
    }

    /// The same claims bound to a certificate (see [`crate::binding`]).
    pub fn with_cnf(mut self, cnf: Confirmation) -> Self {
        self.cnf = Some(cnf);
        self
    }
}

/// Default leeway for `exp`/`nbf`/`iat`, matching what the Go JWT libraries typically allow.
pub const DEFAULT_LEEWAY: time::Duration = time::Duration::seconds(60);

/// What [`verify`] accepts beyond a valid signature by a published key. There is no
/// default maximum lifetime: each verifier states the longest lifetime it expects from the
/// issuer (e.g. the access-token or static-token TTL).
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// Required `aud`; `None` accepts any audience.
    pub audience: Option<&'a str>,
    /// Longest accepted `exp - iat`; a longer token is refused with
    /// [`TokenError::LifetimeTooLong`].
    pub max_lifetime: time::Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: time::Duration,
}

impl<'a> VerifyOptions<'a> {
    /// Any audience, [`DEFAULT_LEEWAY`], and tokens living at most `max_lifetime`.
    pub fn new(max_lifetime: time::Duration) -> Self {
        VerifyOptions {
            audience: None,
            max_lifetime,
            leeway: DEFAULT_LEEWAY,
        }
    }

    /// Require `aud` to equal `audience`.
    pub fn audience(mut self, audience: &'a str) -> Self {
        self.audience = Some(audience);
        self
    }

    pub fn leeway(mut self, leeway: time::Duration) -> Self {
        self.leeway = leeway;
        self
    }
}

/// Verify a compact JWS against `jwks` and return its claims.
///
/// Refused, after the signature checks: a token without `exp` or `iat`, one whose
/// `exp - iat` exceeds `opts.max_lifetime` ([`TokenError::LifetimeTooLong`]), one expired or
/// not yet valid (`nbf`, or an `iat` in the future, both beyond the leeway), and one for
/// another audience.
pub fn verify(
    token: &str,
    jwks: &Jwks,
    now: OffsetDateTime,
    opts: &VerifyOptions<'_>,
) -> std::result::Result<Claims, TokenError> {
    let token = token.trim();
    let (header_b64, _, _) = split3(token).ok_or(TokenError::Malformed)?;
    let header: Header = match jsonwebtoken::decode_header(token) {
        Ok(h) => h,
        // jsonwebtoken cannot name algorithms it does not know (`none`, `ES256K`, ...);
        // a header that parses as JSON with such an `alg` is a refused algorithm, the
        // rest is malformed.
        Err(_) => {
            let alg = B64
                .decode(header_b64)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
            return Err(match alg {
                Some(_) => TokenError::DisallowedAlgorithm,
                None => TokenError::Malformed,
            });
        }
    };
    let alg = match header.alg {
        Algorithm::ES256 => JwtAlgorithm::Es256,
        Algorithm::RS256 => JwtAlgorithm::Rs256,
        _ => return Err(TokenError::DisallowedAlgorithm),
    };
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| jwks.find(kid))
        .ok_or(TokenError::UnknownKey)?;
    if key.algorithm() != Some(alg) {
        return Err(TokenError::AlgorithmMismatch);
    }
    let decoding = key.decoding_key().ok_or(TokenError::UnknownKey)?;
    // The key's own algorithm only; every time-based and audience rule is Bulwark's, below,
    // so jsonwebtoken checks the signature and nothing else.
    let mut only_signature = Validation::new(alg.jose());
    only_signature.validate_exp = false;
    only_signature.validate_nbf = false;
    only_signature.validate_aud = false;
    only_signature.required_spec_claims.clear();
    only_signature.leeway = 0;
    let value: serde_json::Value =
        match jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &only_signature) {
            Ok(data) => data.claims,
            Err(e) => {
                return Err(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        TokenError::AlgorithmMismatch
                    }
                    _ => TokenError::Malformed,
                });
            }
        };
    if value.get("exp").and_then(|v| v.as_i64()).is_none() {
        return Err(TokenError::MissingExpiry);
    }
    if value.get("iat").and_then(|v| v.as_i64()).is_none() {
        return Err(TokenError::MissingIssuedAt);
    }
    let claims: Claims = serde_json::from_value(value).map_err(|_| TokenError::Malformed)?;
    // Saturating: the claims are attacker-chosen integers, and an overflow must not wrap
    // into an accepted token (or panic in a debug build).
    if claims.exp.saturating_sub(claims.iat) > opts.max_lifetime.whole_seconds() {
        return Err(TokenError::LifetimeTooLong);
    }
    let now = now.unix_timestamp();
    let leeway = opts.leeway.whole_seconds();
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    // A future `iat` would let a short `exp - iat` hide a long remaining life.
    if now.saturating_add(leeway) < claims.nbf || now.saturating_add(leeway) < claims.iat {
        return Err(TokenError::NotYetValid);
    }
    if let Some(aud) = opts.audience {
        if claims.aud != aud {
            return Err(TokenError::WrongAudience);
        }
    }
    Ok(claims)
}

fn split3(token: &str) -> Option<(&str, &str, &str)> {
    let mut it = token.split('.');
    let parts = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || parts.0.is_empty() || parts.1.is_empty() || parts.2.is_empty() {
        return None;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> VerifyOptions<'static> {
        VerifyOptions::new(time::Duration::hours(2))
    }

    fn claims(ttl: i64) -> Claims {
        Claims::new(
            "test",
            "bulwark",
            "temporal",
            "temporal-client",
            vec!["default:write".into()],
            OffsetDateTime::now_utc(),
            time::Duration::seconds(ttl),
        )
    }

    #[test]
    fn es256_roundtrip_and_rejections() {
        let key = SigningKey::generate(JwtAlgorithm::Es256).unwrap();
        let jwks = Jwks {
            keys: vec![key.jwk().clone()],
        };
        let now = OffsetDateTime::now_utc();
        let token = key.sign(&claims(3600)).unwrap();
        assert_eq!(
            verify(&token, &jwks, now, &opts().audience("temporal"))
                .unwrap()
                .permissions,
            ["default:write"]
        );
        assert_eq!(
            verify(&token, &jwks, now, &opts().audience("other")),
            Err(TokenError::WrongAudience)
        );

        let expired = key.sign(&claims(-3600)).unwrap();
        assert_eq!(
            verify(&expired, &jwks, now, &opts()),
            Err(TokenError::Expired)
        );

        // Tamper with the payload: swap in admin permissions, keep the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(3600);
        c.permissions = vec!["temporal-system:admin".into()];
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(serde_json::to_vec(&c).unwrap()),
            parts[2]
        );
        assert_eq!(
            verify(&forged, &jwks, now, &opts()),
            Err(TokenError::BadSignature)
        );

        // alg: none
        let none_header = B64.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid()));
        let none = format!("{none_header}.{}.x", parts[1]);
        assert_eq!(
            verify(&none, &jwks, now, &opts()),
            Err(TokenError::DisallowedAlgorithm)
        );

        // A different key claiming our kid.
        let other = SigningKey::generate(JwtAlgorithm::Es256).unwrap();
        let other_token = other.sign(&claims(3600)).unwrap();
        let op: Vec<&str> = other_token.split('.').collect();
        let hdr = B64.encode(format!(
            r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#,
            key.kid()
        ));
        let imposter = format!("{hdr}.{}.{}", op[1], op[2]);
        assert_eq!(
            verify(&imposter, &jwks, now, &opts()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn rs256_roundtrip_and_algorithm_pinning() {
        let rsa = SigningKey::generate(JwtAlgorithm::Rs256).unwrap();
        let ec = SigningKey::generate(JwtAlgorithm::Es256).unwrap();
        let jwks = Jwks {
            keys: vec![rsa.jwk().clone(), ec.jwk().clone()],
        };
        let now = OffsetDateTime::now_utc();
        let token = rsa.sign(&claims(600)).unwrap();
        assert_eq!(verify(&token, &jwks, now, &opts()).unwrap().sub, "test");
        // A reloaded key (PEM on disk) signs tokens the published JWK verifies.
        let reloaded = SigningKey::from_pem(rsa.private_pem().expose()).unwrap();
        assert_eq!(reloaded.kid(), rsa.kid());
        verify(&reloaded.sign(&claims(600)).unwrap(), &jwks, now, &opts()).unwrap();

        let parts: Vec<&str> = token.split('.').collect();
        let with_header = |alg: &str, kid: &str| {
            let h = B64.encode(format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"JWT"}}"#));
            format!("{h}.{}.{}", parts[1], parts[2])
        };
        // The RSA key's token relabelled ES256: the key's type decides, not the header.
        assert_eq!(
            verify(&with_header("ES256", rsa.kid()), &jwks, now, &opts()),
            Err(TokenError::AlgorithmMismatch)
        );
        // HS256 with a public key as the MAC secret is refused before any key is used.
        assert_eq!(
            verify(&with_header("HS256", rsa.kid()), &jwks, now, &opts()),
            Err(TokenError::DisallowedAlgorithm)
        );
        // The RSA signature under the EC key's kid.
        assert_eq!(
            verify(&with_header("RS256", ec.kid()), &jwks, now, &opts()),
            Err(TokenError::AlgorithmMismatch)
        );
        // Unknown kid, and garbage.
        assert_eq!(
            verify(&with_header("RS256", "nope"), &jwks, now, &opts()),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            verify("a.b", &jwks, now, &opts()),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(
                &format!("{}.{}.@@", parts[0], parts[1]),
                &jwks,
                now,
                &opts()
            ),
            Err(TokenError::Malformed)
        );
    }

    /// Sign arbitrary claims (the fields `Claims` would always set can be left out).
    fn sign_raw(key: &SigningKey, claims: &serde_json::Value) -> String {
        key.sign_json(claims).unwrap()
    }

    #[test]
    fn lifetime_is_bounded_by_the_maximum() {
        let key = SigningKey::generate(JwtAlgorithm::Es256).unwrap();
        let jwks = Jwks {
            keys: vec![key.jwk().clone()],
        };
        let now = OffsetDateTime::now_utc();
        let max = time::Duration::hours(1);
        let opts = VerifyOptions::new(max);
        let mint = |ttl: time::Duration| {
            let c = Claims::new("t", "bulwark", "temporal", "s", vec![], now, ttl);
            key.sign(&c).unwrap()
        };
        // Exactly at the maximum: accepted.
        verify(&mint(max), &jwks, now, &opts).unwrap();
        // One second over: refused, although it is validly signed and not expired.
        assert_eq!(
            verify(&mint(max + time::Duration::SECOND), &jwks, now, &opts),
            Err(TokenError::LifetimeTooLong)
        );
        // A leaked key cannot hide a long life behind an `iat` in the future.
        let t = now.unix_timestamp();
        let future_iat = serde_json::json!({
            "sub": "t", "iss": "bulwark", "aud": "temporal", "scope": "s", "permissions": [],
            "jti": "j", "iat": t + 86_400 * 365, "nbf": t, "exp": t + 86_400 * 365 + 60,
        });
        assert_eq!(
            verify(&sign_raw(&key, &future_iat), &jwks, now, &opts),
            Err(TokenError::NotYetValid)
        );
        // Attacker-chosen extremes neither wrap into acceptance nor panic.
        let extreme = serde_json::json!({
            "sub": "t", "iss": "bulwark", "aud": "temporal", "scope": "s", "permissions": [],
            "jti": "j", "iat": i64::MIN, "nbf": i64::MIN, "exp": i64::MAX,
        });
        assert_eq!(
            verify(&sign_raw(&key, &extreme), &jwks, now, &opts),
            Err(TokenError::LifetimeTooLong)
        );
        let at_max = serde_json::json!({
            "sub": "t", "iss": "bulwark", "aud": "temporal", "scope": "s", "permissions": [],
            "jti": "j", "iat": i64::MAX, "nbf": t, "exp": i64::MAX,
        });
        assert_eq!(
            verify(&sign_raw(&key, &at_max), &jwks, now, &opts),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn missing_iat_is_refused() {
        let key = SigningKey::generate(JwtAlgorithm::Es256).unwrap();
        let jwks = Jwks {
            keys: vec![key.jwk().clone()],
        };
        let now = OffsetDateTime::now_utc();
        let t = now.unix_timestamp();
        let mut claims = serde_json::json!({
            "sub": "t", "iss": "bulwark", "aud": "temporal", "scope": "s", "permissions": [],
            "jti": "j", "iat": t, "nbf": t, "exp": t + 60,
        });
        // The same claims with iat verify, so the refusal below is about iat alone.
        verify(&sign_raw(&key, &claims), &jwks, now, &opts()).unwrap();
        claims.as_object_mut().unwrap().remove("iat");
        assert_eq!(
            verify(&sign_raw(&key, &claims), &jwks, now, &opts()),
            Err(TokenError::MissingIssuedAt)
        );
    }

    #[test]
    fn rs256_roundtrip_and_kid_is_thumbprint() {
        let key = SigningKey::generate(JwtAlgorithm::Rs256).unwrap();
        let jwks = Jwks {
            keys: vec![key.jwk().clone()],
        };
        let token = key.sign(&claims(60)).unwrap();
        verify(&token, &jwks, OffsetDateTime::now_utc(), &opts()).unwrap();
        assert_eq!(key.kid(), key.jwk().thumbprint());
        let reloaded = SigningKey::from_pem(key.private_pem().expose()).unwrap();
        assert_eq!(reloaded.kid(), key.kid());
        assert_eq!(reloaded.algorithm(), JwtAlgorithm::Rs256);
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // The RSA example key from RFC 7638 section 3.1.
        let jwk = Jwk {
            kty: "RSA".into(),
            kid: String::new(),
            alg: "RS256".into(),
            use_: "sig".into(),
            crv: None,
            x: None,
            y: None,
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
        };
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn signing_key_debug_is_redacted() {
        let key = SigningKey::generate(JwtAlgorithm::Es256).unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains("\"...\""));
        assert!(!dbg.contains("PRIVATE"));
    }
}
