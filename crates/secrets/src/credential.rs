//! Typed credentials, the field accessor parsers use, and the registry of parsers.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::allowed_hosts::AllowedHosts;
use crate::error::{Result, SecretsError};
use crate::reference::{CredentialRef, CredentialType};
use crate::secret::{REDACTED, Secret};
use crate::store::SecretMap;

/// Username and password.
#[derive(Clone, Debug, Serialize)]
pub struct BasicCredential {
    /// The user name (not treated as secret).
    pub username: String,
    /// The password.
    pub password: Secret,
    /// Destinations this credential may be sent to (`allowed_hosts`); `None`: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<AllowedHosts>,
}

/// An API key sent in an HTTP header.
#[derive(Clone, Debug, Serialize)]
pub struct ApiKeyCredential {
    /// The key.
    pub api_key: Secret,
    /// Header to send it in; default `X-API-Key`.
    pub header_name: String,
    /// Optional prefix put before the key in the header value (e.g. `Token`); a space
    /// separates them.
    pub prefix: Option<String>,
    /// Destinations this credential may be sent to (`allowed_hosts`); `None`: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<AllowedHosts>,
}

impl ApiKeyCredential {
    /// The header value: `"<prefix> <key>"` or just the key.
    #[must_use]
    pub fn header_value(&self) -> Secret {
        match &self.prefix {
            Some(p) => Secret::new(format!("{p} {}", self.api_key.expose())),
            None => self.api_key.clone(),
        }
    }
}

/// A bearer token.
#[derive(Clone, Debug, Serialize)]
pub struct BearerTokenCredential {
    /// The token.
    pub token: Secret,
    /// When the token stops being valid, if known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Destinations this credential may be sent to (`allowed_hosts`); `None`: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<AllowedHosts>,
}

impl BearerTokenCredential {
    /// True when `expires_at` is known and not in the future.
    #[must_use]
    pub fn is_expired(&self) -> bool {
        self.expires_at
            .is_some_and(|t| t <= OffsetDateTime::now_utc())
    }

    /// `"Bearer <token>"`.
    #[must_use]
    pub fn authorization_header(&self) -> Secret {
        Secret::new(format!("Bearer {}", self.token.expose()))
    }
}

/// OAuth2 client credentials, optionally with a current token pair.
#[derive(Clone, Debug, Serialize)]
pub struct OAuthClientCredential {
    /// Client id (not treated as secret).
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Token endpoint (`http` or `https` URL).
    pub token_url: String,
    /// Scopes to request (from a JSON array or a space/comma separated string).
    pub scopes: Vec<String>,
    /// A current access token, if the store holds one.
    pub access_token: Option<Secret>,
    /// A refresh token, if the store holds one.
    pub refresh_token: Option<Secret>,
    /// Expiry of `access_token`, if known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Destinations the access token may be sent to (`allowed_hosts`); `None`: any. The
    /// client secret goes only to `token_url`, which needs no entry: it is stored with the
    /// secret, so whoever could change it could change this list too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<AllowedHosts>,
}

impl OAuthClientCredential {
    /// True when an access token is present, has a known expiry, and that expiry has passed.
    #[must_use]
    pub fn is_access_token_expired(&self) -> bool {
        self.access_token.is_some()
            && self
                .expires_at
                .is_some_and(|t| t <= OffsetDateTime::now_utc())
    }
}

/// A client certificate with its private key.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateCredential {
    /// Certificate chain, PEM (public, not treated as secret).
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: Secret,
    /// CA bundle to trust, PEM, if any.
    pub ca_pem: Option<String>,
    /// Passphrase of an encrypted private key, if any.
    pub passphrase: Option<Secret>,
}

/// The value a custom credential parser produces. Implementors must keep secret material
/// in [`Secret`] fields (or otherwise make `Debug` redact it).
pub trait CustomCredential: fmt::Debug + Send + Sync + 'static {
    /// Upcast for [`Custom::downcast_ref`].
    fn as_any(&self) -> &dyn Any;
}

/// A credential of a registered custom type.
#[derive(Clone, Debug)]
pub struct Custom {
    /// The registered type name.
    pub type_name: String,
    value: Arc<dyn CustomCredential>,
}

impl Custom {
    /// Wraps a parsed custom value.
    pub fn new(type_name: impl Into<String>, value: impl CustomCredential) -> Self {
        Self {
            type_name: type_name.into(),
            value: Arc::new(value),
        }
    }

    /// The parsed value, if it is a `T`.
    #[must_use]
    pub fn downcast_ref<T: CustomCredential>(&self) -> Option<&T> {
        self.value.as_any().downcast_ref()
    }
}

impl Serialize for Custom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Custom", 2)?;
        st.serialize_field("type_name", &self.type_name)?;
        st.serialize_field("value", REDACTED)?;
        st.end()
    }
}

/// A field map for custom types registered with
/// [`CredentialRegistry::register_fields`]: every field is kept as a [`Secret`].
#[derive(Clone, Debug)]
pub struct FieldsCredential {
    /// The fields, all secret.
    pub fields: BTreeMap<String, Secret>,
}

impl CustomCredential for FieldsCredential {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A live, typed credential. `Debug`, `Display` and `Serialize` redact every secret.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Credential {
    /// See [`BasicCredential`].
    Basic(BasicCredential),
    /// See [`ApiKeyCredential`].
    ApiKey(ApiKeyCredential),
    /// See [`BearerTokenCredential`].
    BearerToken(BearerTokenCredential),
    /// See [`OAuthClientCredential`].
    #[serde(rename = "oauth_client")]
    OAuthClient(OAuthClientCredential),
    /// See [`CertificateCredential`].
    Certificate(CertificateCredential),
    /// A registered custom type.
    Custom(Custom),
}

impl Credential {
    /// The type of this credential.
    #[must_use]
    pub fn credential_type(&self) -> CredentialType {
        match self {
            Self::Basic(_) => CredentialType::Basic,
            Self::ApiKey(_) => CredentialType::ApiKey,
            Self::BearerToken(_) => CredentialType::BearerToken,
            Self::OAuthClient(_) => CredentialType::OAuthClient,
            Self::Certificate(_) => CredentialType::Certificate,
            Self::Custom(c) => CredentialType::Custom(c.type_name.clone()),
        }
    }

    /// The basic credential, if this is one.
    #[must_use]
    pub fn as_basic(&self) -> Option<&BasicCredential> {
        match self {
            Self::Basic(c) => Some(c),
            _ => None,
        }
    }

    /// The API key credential, if this is one.
    #[must_use]
    pub fn as_api_key(&self) -> Option<&ApiKeyCredential> {
        match self {
            Self::ApiKey(c) => Some(c),
            _ => None,
        }
    }

    /// The bearer token credential, if this is one.
    #[must_use]
    pub fn as_bearer_token(&self) -> Option<&BearerTokenCredential> {
        match self {
            Self::BearerToken(c) => Some(c),
            _ => None,
        }
    }

    /// The OAuth client credential, if this is one.
    #[must_use]
    pub fn as_oauth_client(&self) -> Option<&OAuthClientCredential> {
        match self {
            Self::OAuthClient(c) => Some(c),
            _ => None,
        }
    }

    /// The certificate credential, if this is one.
    #[must_use]
    pub fn as_certificate(&self) -> Option<&CertificateCredential> {
        match self {
            Self::Certificate(c) => Some(c),
            _ => None,
        }
    }

    /// The custom credential, if this is one.
    #[must_use]
    pub fn as_custom(&self) -> Option<&Custom> {
        match self {
            Self::Custom(c) => Some(c),
            _ => None,
        }
    }

    /// The `allowed_hosts` of a credential type that has the field (`basic`, `api_key`,
    /// `bearer_token`, `oauth_client`); `None` when absent or the type has none.
    #[must_use]
    pub fn allowed_hosts(&self) -> Option<&AllowedHosts> {
        match self {
            Self::Basic(c) => c.allowed_hosts.as_ref(),
            Self::ApiKey(c) => c.allowed_hosts.as_ref(),
            Self::BearerToken(c) => c.allowed_hosts.as_ref(),
            Self::OAuthClient(c) => c.allowed_hosts.as_ref(),
            Self::Certificate(_) | Self::Custom(_) => None,
        }
    }

    /// Expiry of the token this credential carries, if any (used to bound caching).
    #[must_use]
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        match self {
            Self::BearerToken(c) => c.expires_at,
            Self::OAuthClient(c) if c.access_token.is_some() => c.expires_at,
            _ => None,
        }
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic(c) => write!(
                f,
                "basic credential (username `{}`, password {REDACTED})",
                c.username
            ),
            Self::ApiKey(c) => write!(
                f,
                "api_key credential (header `{}`, key {REDACTED})",
                c.header_name
            ),
            Self::BearerToken(c) => match c.expires_at {
                Some(t) => write!(f, "bearer_token credential (token {REDACTED}, expires {t})"),
                None => write!(f, "bearer_token credential (token {REDACTED})"),
            },
            Self::OAuthClient(c) => write!(
                f,
                "oauth_client credential (client_id `{}`, token_url `{}`, client_secret {REDACTED})",
                c.client_id, c.token_url
            ),
            Self::Certificate(_) => write!(f, "certificate credential (key {REDACTED})"),
            Self::Custom(c) => write!(f, "{} credential ({REDACTED})", c.type_name),
        }
    }
}

macro_rules! display_via_credential {
    ($($t:ident => $v:ident),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&Credential::$v(self.clone()), f)
            }
        }
    )*};
}
display_via_credential!(
    BasicCredential => Basic,
    ApiKeyCredential => ApiKey,
    BearerTokenCredential => BearerToken,
    OAuthClientCredential => OAuthClient,
    CertificateCredential => Certificate
);

/// Field access for parsers: looks fields up in what the store returned and turns every
/// problem into an error that names the reference and the field, never the value.
///
/// Field names match loosely: case, `_` and `-` are ignored (`api_key`, `apiKey` and
/// `API-KEY` are the same field), with an exact match preferred.
#[derive(Debug)]
pub struct Fields<'a> {
    reference: &'a CredentialRef,
    map: &'a SecretMap,
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

impl<'a> Fields<'a> {
    /// Wraps what a store returned for `reference`.
    #[must_use]
    pub fn new(reference: &'a CredentialRef, map: &'a SecretMap) -> Self {
        Self { reference, map }
    }

    /// The reference being parsed.
    #[must_use]
    pub fn reference(&self) -> &CredentialRef {
        self.reference
    }

    /// The field names present (never values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    fn lookup(&self, field: &str) -> Option<&'a Secret> {
        if let Some(v) = self.map.get(field) {
            return Some(v);
        }
        let want = normalize(field);
        self.map
            .iter()
            .find(|(k, _)| normalize(k) == want)
            .map(|(_, v)| v)
    }

    /// A required secret field: missing or blank is an error.
    pub fn required(&self, field: &str) -> Result<Secret> {
        match self.lookup(field) {
            None => Err(SecretsError::MissingField {
                reference: Box::new(self.reference.clone()),
                field: field.to_owned(),
            }),
            Some(v) if v.is_blank() => Err(SecretsError::EmptyField {
                reference: Box::new(self.reference.clone()),
                field: field.to_owned(),
            }),
            Some(v) => Ok(v.clone()),
        }
    }

    /// An optional secret field: missing or blank gives `None`.
    #[must_use]
    pub fn optional(&self, field: &str) -> Option<Secret> {
        self.lookup(field).filter(|v| !v.is_blank()).cloned()
    }

    /// A required non-secret field (user name, URL, client id), trimmed.
    pub fn required_plain(&self, field: &str) -> Result<String> {
        self.required(field).map(|v| v.expose().trim().to_owned())
    }

    /// An optional non-secret field, trimmed.
    #[must_use]
    pub fn optional_plain(&self, field: &str) -> Option<String> {
        self.optional(field).map(|v| v.expose().trim().to_owned())
    }

    /// An error saying `field` is invalid for `reason` (which must not contain the value).
    #[must_use]
    pub fn invalid(&self, field: &str, reason: impl Into<String>) -> SecretsError {
        SecretsError::InvalidField {
            reference: Box::new(self.reference.clone()),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// An optional timestamp: RFC 3339 or integer Unix seconds.
    pub fn optional_timestamp(&self, field: &str) -> Result<Option<OffsetDateTime>> {
        let Some(raw) = self.optional_plain(field) else {
            return Ok(None);
        };
        if let Ok(t) = OffsetDateTime::parse(&raw, &Rfc3339) {
            return Ok(Some(t));
        }
        raw.parse::<i64>()
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .map(Some)
            .ok_or_else(|| self.invalid(field, "not an RFC 3339 timestamp or Unix seconds"))
    }
}

/// Parses fields into a credential of a custom type.
pub type ParserFn = dyn Fn(&Fields<'_>) -> Result<Custom> + Send + Sync;

/// Parsers for credential types, keyed by type name. The five built-in types are always
/// present and cannot be replaced.
#[derive(Clone, Default)]
pub struct CredentialRegistry {
    custom: HashMap<String, Arc<ParserFn>>,
}

impl fmt::Debug for CredentialRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.custom.keys().collect();
        names.sort();
        f.debug_struct("CredentialRegistry")
            .field("custom_types", &names)
            .finish()
    }
}

impl CredentialRegistry {
    /// A registry with only the built-in types.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a parser for `type_name` (`a-z 0-9 _ . -`, starting with a letter).
    /// Fails for a built-in name or a name already registered.
    pub fn register<F>(&mut self, type_name: &str, parser: F) -> Result<()>
    where
        F: Fn(&Fields<'_>) -> Result<Custom> + Send + Sync + 'static,
    {
        let parsed: CredentialType = type_name.parse()?;
        if parsed.is_builtin() || self.custom.contains_key(type_name) {
            return Err(SecretsError::DuplicateCredentialType {
                type_name: type_name.to_owned(),
            });
        }
        self.custom.insert(type_name.to_owned(), Arc::new(parser));
        Ok(())
    }

    /// Registers a custom type whose value is the listed fields, each kept as a [`Secret`]
    /// in a [`FieldsCredential`]; `required` fields must be present and non-blank.
    pub fn register_fields(
        &mut self,
        type_name: &str,
        required: &[&str],
        optional: &[&str],
    ) -> Result<()> {
        let required: Vec<String> = required.iter().map(|s| (*s).to_owned()).collect();
        let optional: Vec<String> = optional.iter().map(|s| (*s).to_owned()).collect();
        let name = type_name.to_owned();
        self.register(type_name, move |f| {
            let mut fields = BTreeMap::new();
            for r in &required {
                fields.insert(r.clone(), f.required(r)?);
            }
            for o in &optional {
                if let Some(v) = f.optional(o) {
                    fields.insert(o.clone(), v);
                }
            }
            Ok(Custom::new(name.clone(), FieldsCredential { fields }))
        })
    }

    /// True when `t` is built in or registered.
    #[must_use]
    pub fn knows(&self, t: &CredentialType) -> bool {
        match t {
            CredentialType::Custom(name) => self.custom.contains_key(name),
            _ => true,
        }
    }

    /// Parses `map` (what the store returned) as the type `reference` names.
    pub fn parse(&self, reference: &CredentialRef, map: &SecretMap) -> Result<Credential> {
        let f = Fields::new(reference, map);
        match &reference.credential_type {
            CredentialType::Basic => parse_basic(&f),
            CredentialType::ApiKey => parse_api_key(&f),
            CredentialType::BearerToken => parse_bearer(&f),
            CredentialType::OAuthClient => parse_oauth(&f),
            CredentialType::Certificate => parse_certificate(&f),
            CredentialType::Custom(name) => match self.custom.get(name) {
                Some(parser) => parser(&f).map(Credential::Custom),
                None => Err(SecretsError::UnknownCredentialType {
                    reference: Box::new(reference.clone()),
                }),
            },
        }
    }
}

/// The optional `allowed_hosts` field (see [`crate::allowed_hosts`]).
fn parse_allowed_hosts(f: &Fields<'_>) -> Result<Option<AllowedHosts>> {
    let Some(raw) = f.lookup("allowed_hosts") else {
        return Ok(None);
    };
    AllowedHosts::parse(raw.expose())
        .map(Some)
        .map_err(|e| f.invalid("allowed_hosts", e.to_string()))
}

fn parse_basic(f: &Fields<'_>) -> Result<Credential> {
    Ok(Credential::Basic(BasicCredential {
        username: f.required_plain("username")?,
        password: f.required("password")?,
        allowed_hosts: parse_allowed_hosts(f)?,
    }))
}

fn parse_api_key(f: &Fields<'_>) -> Result<Credential> {
    let header_name = f
        .optional_plain("header_name")
        .unwrap_or_else(|| "X-API-Key".to_owned());
    let valid_header = header_name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_header {
        return Err(f.invalid("header_name", "not a valid HTTP header name"));
    }
    let api_key = f.required("api_key")?;
    if api_key.expose().chars().any(|c| c.is_control()) {
        return Err(f.invalid("api_key", "contains control characters"));
    }
    Ok(Credential::ApiKey(ApiKeyCredential {
        api_key,
        header_name,
        prefix: f.optional_plain("prefix"),
        allowed_hosts: parse_allowed_hosts(f)?,
    }))
}

fn parse_bearer(f: &Fields<'_>) -> Result<Credential> {
    let token = f.required("token")?;
    if token.expose().chars().any(|c| c.is_control()) {
        return Err(f.invalid("token", "contains control characters"));
    }
    Ok(Credential::BearerToken(BearerTokenCredential {
        token,
        expires_at: f.optional_timestamp("expires_at")?,
        allowed_hosts: parse_allowed_hosts(f)?,
    }))
}

fn parse_scopes(f: &Fields<'_>) -> Result<Vec<String>> {
    let Some(raw) = f.optional("scopes").or_else(|| f.optional("scope")) else {
        return Ok(Vec::new());
    };
    let raw = raw.expose().trim();
    if raw.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(raw)
            .map_err(|_| f.invalid("scopes", "not a JSON array of strings"));
    }
    Ok(raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

fn parse_oauth(f: &Fields<'_>) -> Result<Credential> {
    let client_id = f.required_plain("client_id")?;
    let client_secret = f.required("client_secret")?;
    let token_url = f.required_plain("token_url")?;
    match reqwest::Url::parse(&token_url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
        _ => return Err(f.invalid("token_url", "not an http(s) URL")),
    }
    Ok(Credential::OAuthClient(OAuthClientCredential {
        client_id,
        client_secret,
        token_url,
        scopes: parse_scopes(f)?,
        access_token: f.optional("access_token"),
        refresh_token: f.optional("refresh_token"),
        expires_at: f.optional_timestamp("expires_at")?,
        allowed_hosts: parse_allowed_hosts(f)?,
    }))
}

fn is_pem(s: &str) -> bool {
    s.contains("-----BEGIN ") && s.contains("-----END ")
}

fn parse_certificate(f: &Fields<'_>) -> Result<Credential> {
    let cert_pem = f.required_plain("cert_pem")?;
    if !is_pem(&cert_pem) {
        return Err(f.invalid("cert_pem", "not PEM"));
    }
    let key_pem = f.required("key_pem")?;
    if !is_pem(key_pem.expose()) {
        return Err(f.invalid("key_pem", "not PEM"));
    }
    let ca_pem = f.optional_plain("ca_pem");
    if ca_pem.as_deref().is_some_and(|c| !is_pem(c)) {
        return Err(f.invalid("ca_pem", "not PEM"));
    }
    Ok(Credential::Certificate(CertificateCredential {
        cert_pem,
        key_pem,
        ca_pem,
        passphrase: f.optional("passphrase"),
    }))
}
