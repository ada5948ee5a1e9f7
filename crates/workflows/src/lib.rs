//! # bulwark-workflows
//!
//! Workflow and activity definitions shared by `bulwark-api` (which starts workflows) and
//! `bulwark-worker` (which runs them): names, input/output types, validation and the
//! application-failure types activities report.
//!
//! Inputs carry credential *references* only ([`CredentialRef`]); results carry summaries and
//! digests only. Nothing defined here can hold a secret value.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

use bulwark_secrets::{CredentialRef, CredentialType};
use serde::{Deserialize, Serialize};

/// Task queue used when a caller does not name one.
pub const DEFAULT_TASK_QUEUE: &str = "bulwark-default";

/// Workflow type names (what Temporal stores and what callers pass as `workflow_type`).
pub mod workflow {
    /// `{"name": "..."}` → `{"greeting": "Hello, <name>!"}`.
    pub const GREETING: &str = "Greeting";
    /// Read-only named query against a Postgres database with a `basic` credential.
    pub const DATABASE_QUERY: &str = "DatabaseQuery";
    /// HTTPS call with an `oauth_client` or `api_key` credential.
    pub const HTTP_CALL: &str = "HttpCall";
    /// Every workflow type the reference worker registers.
    pub const ALL: [&str; 3] = [GREETING, DATABASE_QUERY, HTTP_CALL];
}

/// Activity type names.
pub mod activity {
    /// Builds the greeting.
    pub const GREET: &str = "bulwark.greet";
    /// Runs a named read-only query.
    pub const DATABASE_QUERY: &str = "bulwark.database_query";
    /// Performs the HTTPS call.
    pub const HTTP_CALL: &str = "bulwark.http_call";
}

/// Application-failure `type` values reported by activities and workflows. Those in
/// [`failure_type::NON_RETRYABLE`] are never retried; [`failure_type::TRANSIENT`] is retried
/// by the activity retry policy.
pub mod failure_type {
    /// The referenced credential does not exist in its store.
    pub const CREDENTIAL_NOT_FOUND: &str = "CredentialNotFound";
    /// The credential exists but is malformed, of the wrong type, or its store is misconfigured.
    pub const CREDENTIAL_INVALID: &str = "CredentialInvalid";
    /// The credential was refused by the system it is meant for.
    pub const UNAUTHORIZED: &str = "Unauthorized";
    /// The workflow input failed validation.
    pub const INVALID_INPUT: &str = "InvalidInput";
    /// The credential's `allowed_hosts` does not list the destination; it was not sent.
    pub const DESTINATION_NOT_ALLOWED: &str = "DestinationNotAllowed";
    /// A response body exceeded the worker's limit; reading stopped there.
    pub const RESPONSE_TOO_LARGE: &str = "ResponseTooLarge";
    /// A transient failure (network, store unavailable, 5xx); retried.
    pub const TRANSIENT: &str = "Transient";
    /// The failure types that are never retried.
    pub const NON_RETRYABLE: [&str; 6] = [
        CREDENTIAL_NOT_FOUND,
        CREDENTIAL_INVALID,
        UNAUTHORIZED,
        INVALID_INPUT,
        DESTINATION_NOT_ALLOWED,
        RESPONSE_TOO_LARGE,
    ];
}

/// Maximum length of a greeting name.
pub const MAX_NAME_LEN: usize = 200;
/// Maximum length of an `HttpCall` URL.
pub const MAX_URL_LEN: usize = 2048;

/// Input of [`workflow::GREETING`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreetingInput {
    /// Who to greet (1..=200 characters, no control characters).
    pub name: String,
}

/// Result of [`workflow::GREETING`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreetingOutput {
    /// `Hello, <name>!`
    pub greeting: String,
}

/// The fixed set of read-only queries `DatabaseQuery` may run. Raw SQL is never accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedQuery {
    /// Row count and total quantity of `public.inventory`.
    InventorySummary,
    /// Row count and total quantity of `public.inventory` rows with `quantity < 100`.
    LowStock,
}

impl NamedQuery {
    /// Every named query.
    pub const ALL: [NamedQuery; 2] = [NamedQuery::InventorySummary, NamedQuery::LowStock];

    /// The name used in workflow input.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NamedQuery::InventorySummary => "inventory_summary",
            NamedQuery::LowStock => "low_stock",
        }
    }

    /// The SQL text. Each returns one row: `(rows bigint, total bigint)`.
    #[must_use]
    pub fn sql(self) -> &'static str {
        match self {
            NamedQuery::InventorySummary => {
                "SELECT count(*)::bigint, coalesce(sum(quantity), 0)::bigint FROM public.inventory"
            }
            NamedQuery::LowStock => {
                "SELECT count(*)::bigint, coalesce(sum(quantity), 0)::bigint \
                 FROM public.inventory WHERE quantity < 100"
            }
        }
    }
}

impl fmt::Display for NamedQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Input of [`workflow::DATABASE_QUERY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseQueryInput {
    /// A `basic` credential (database role and password) by reference.
    pub credential: CredentialRef,
    /// Database name (the worker only allows the databases it is configured for).
    pub database: String,
    /// One of the named queries.
    pub query: NamedQuery,
}

/// Result of [`workflow::DATABASE_QUERY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseQueryOutput {
    /// The query that ran.
    pub query: NamedQuery,
    /// Database it ran against.
    pub database: String,
    /// Rows matched.
    pub row_count: i64,
    /// Sum of `quantity` over those rows.
    pub total_quantity: i64,
}

/// Input of [`workflow::HTTP_CALL`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCallInput {
    /// An `oauth_client` or `api_key` credential by reference.
    pub credential: CredentialRef,
    /// The `https://` URL to `GET`.
    pub url: String,
}

/// Result of [`workflow::HTTP_CALL`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCallOutput {
    /// HTTP status code.
    pub status: u16,
    /// Hex SHA-256 of the response body (the body itself is never returned).
    pub body_sha256: String,
    /// Length of the body in bytes.
    pub body_len: u64,
}

/// Why an input was refused. Messages name fields and references, never values of secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {workflow_type} input: {reason}")]
pub struct InputError {
    /// The workflow type whose input was refused.
    pub workflow_type: String,
    /// What is wrong.
    pub reason: String,
}

impl InputError {
    fn new(workflow_type: &str, reason: impl Into<String>) -> Self {
        Self {
            workflow_type: workflow_type.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Key names that carry secret values. Inputs end up in Temporal history, so a secret there
/// is a leak; callers must pass a credential reference instead.
const SECRET_FIELD_NAMES: [&str; 14] = [
    "password",
    "passwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "api_key",
    "apikey",
    "private_key",
    "key_pem",
    "passphrase",
    "authorization",
    "bearer",
];

/// Whether an object key names a secret: one of [`SECRET_FIELD_NAMES`] or ending in
/// `_<name>` (`db_password`), ignoring case and `-` vs `_` (`API-Key`).
fn is_secret_key(key: &str) -> bool {
    let norm = key.to_ascii_lowercase().replace('-', "_");
    SECRET_FIELD_NAMES
        .iter()
        .any(|s| norm == *s || norm.strip_suffix(s).is_some_and(|head| head.ends_with('_')))
}

/// An ECMA-262 (and Python `re`) pattern that matches exactly the keys [`is_secret_key`]
/// refuses, for the API's OpenAPI document: a schema-driven client then never generates an
/// input the API would refuse as secret-looking. Built from [`SECRET_FIELD_NAMES`] so the two
/// cannot drift; `(?![\s\S])` ends the match at the true end (`$` in Python also matches
/// before a final newline, where `is_secret_key` does not).
#[must_use]
pub fn secret_key_pattern() -> String {
    let names: Vec<String> = SECRET_FIELD_NAMES
        .iter()
        .map(|n| {
            n.chars()
                .map(|c| match c {
                    '_' => "[_-]".to_owned(),
                    c if c.is_ascii_alphabetic() => {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    }
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    format!("^(?:[\\s\\S]*[_-])?(?:{})(?![\\s\\S])", names.join("|"))
}

/// The path (below `root`, e.g. `input.items[0].API-Key`) of the first key anywhere in
/// `value` that names a secret. The one rule for the API (refusing a start) and the worker
/// (refusing an input), so the two cannot disagree about what counts as a secret.
pub fn secret_field_path(value: &serde_json::Value, root: &str) -> Option<String> {
    let at = |k: &str| {
        if root.is_empty() {
            k.to_owned()
        } else {
            format!("{root}.{k}")
        }
    };
    match value {
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            if is_secret_key(k) {
                Some(at(k))
            } else {
                secret_field_path(v, &at(k))
            }
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| secret_field_path(v, &format!("{root}[{i}]"))),
        _ => None,
    }
}

/// Fails when any object key in `value` (at any depth) looks like a secret field, e.g.
/// `password`. Inputs must carry references (`{"name", "credential_type", "store_name"}`).
pub fn reject_secret_fields(
    workflow_type: &str,
    value: &serde_json::Value,
) -> Result<(), InputError> {
    match secret_field_path(value, "") {
        Some(path) => Err(InputError::new(
            workflow_type,
            format!(
                "field `{path}` looks like a secret value; pass a credential reference \
                 ({{\"name\", \"credential_type\", \"store_name\"}}) instead"
            ),
        )),
        None => Ok(()),
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    workflow_type: &str,
    value: &serde_json::Value,
) -> Result<T, InputError> {
    // serde_json's messages quote field names and types, not values of strings.
    serde_json::from_value(value.clone()).map_err(|e| InputError::new(workflow_type, e.to_string()))
}

fn check_reference(
    workflow_type: &str,
    reference: &CredentialRef,
    allowed: &[CredentialType],
) -> Result<(), InputError> {
    reference
        .validate()
        .map_err(|e| InputError::new(workflow_type, format!("credential: {e}")))?;
    if !allowed.contains(&reference.credential_type) {
        let names: Vec<&str> = allowed.iter().map(CredentialType::as_str).collect();
        return Err(InputError::new(
            workflow_type,
            format!(
                "credential: {reference} has type `{}`; expected one of {}",
                reference.credential_type,
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

impl GreetingInput {
    /// Parses and validates the JSON input.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, InputError> {
        let input: Self = parse(workflow::GREETING, value)?;
        input.validate()?;
        Ok(input)
    }

    /// Checks the name is 1..=200 characters without control characters.
    pub fn validate(&self) -> Result<(), InputError> {
        let n = self.name.trim();
        if n.is_empty() || self.name.chars().count() > MAX_NAME_LEN {
            return Err(InputError::new(
                workflow::GREETING,
                format!("`name` must be 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        if self.name.chars().any(char::is_control) {
            return Err(InputError::new(
                workflow::GREETING,
                "`name` must not contain control characters",
            ));
        }
        Ok(())
    }
}

impl DatabaseQueryInput {
    /// Parses and validates the JSON input.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, InputError> {
        reject_secret_fields(workflow::DATABASE_QUERY, value)?;
        let input: Self = parse(workflow::DATABASE_QUERY, value)?;
        input.validate()?;
        Ok(input)
    }

    /// Checks the credential is a well-formed `basic` reference and the database name is an
    /// identifier.
    pub fn validate(&self) -> Result<(), InputError> {
        check_reference(
            workflow::DATABASE_QUERY,
            &self.credential,
            &[CredentialType::Basic],
        )?;
        let ok = !self.database.is_empty()
            && self.database.len() <= 63
            && self
                .database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(InputError::new(
                workflow::DATABASE_QUERY,
                "`database` must be 1 to 63 characters of A-Z a-z 0-9 _ -",
            ));
        }
        Ok(())
    }
}

impl HttpCallInput {
    /// Parses and validates the JSON input.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, InputError> {
        reject_secret_fields(workflow::HTTP_CALL, value)?;
        let input: Self = parse(workflow::HTTP_CALL, value)?;
        input.validate()?;
        Ok(input)
    }

    /// Checks the credential is an `oauth_client` or `api_key` reference and the URL is
    /// `https://` without user information.
    pub fn validate(&self) -> Result<(), InputError> {
        check_reference(
            workflow::HTTP_CALL,
            &self.credential,
            &[CredentialType::OAuthClient, CredentialType::ApiKey],
        )?;
        let url = self.url.as_str();
        if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(InputError::new(
                workflow::HTTP_CALL,
                format!("`url` must be at most {MAX_URL_LEN} characters without spaces"),
            ));
        }
        let Some(rest) = url.strip_prefix("https://") else {
            return Err(InputError::new(
                workflow::HTTP_CALL,
                "`url` must start with https://",
            ));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(InputError::new(workflow::HTTP_CALL, "`url` has no host"));
        }
        if authority.contains('@') {
            return Err(InputError::new(
                workflow::HTTP_CALL,
                "`url` must not contain user information; use a credential reference",
            ));
        }
        Ok(())
    }
}

/// Validates `input` for `workflow_type` (one of [`workflow::ALL`]). For the API: refuse a
/// start before it reaches Temporal. Unknown types are an error.
pub fn validate_input(workflow_type: &str, input: &serde_json::Value) -> Result<(), InputError> {
    match workflow_type {
        workflow::GREETING => GreetingInput::from_json(input).map(drop),
        workflow::DATABASE_QUERY => DatabaseQueryInput::from_json(input).map(drop),
        workflow::HTTP_CALL => HttpCallInput::from_json(input).map(drop),
        other => Err(InputError::new(
            other,
            format!("unknown workflow type; known: {}", workflow::ALL.join(", ")),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn greeting_validation() {
        assert!(validate_input("Greeting", &json!({"name": "Ada"})).is_ok());
        assert!(validate_input("Greeting", &json!({"name": ""})).is_err());
        assert!(validate_input("Greeting", &json!({"name": "a\u{7}"})).is_err());
        assert!(validate_input("Greeting", &json!({"name": "x".repeat(201)})).is_err());
        let e = validate_input("Greeting", &json!({"nam": "Ada"})).unwrap_err();
        assert!(e.reason.contains("nam"), "{e}");
        assert!(
            validate_input("Nope", &json!({}))
                .unwrap_err()
                .reason
                .contains("unknown")
        );
    }

    #[test]
    fn database_query_accepts_only_named_queries_and_basic_refs() {
        let ok = json!({"credential": {"name": "demo-db", "credential_type": "basic"},
                        "database": "demo", "query": "inventory_summary"});
        let parsed = DatabaseQueryInput::from_json(&ok).unwrap();
        assert_eq!(parsed.credential.store_name, "default");
        assert_eq!(parsed.query, NamedQuery::InventorySummary);

        let raw_sql = json!({"credential": {"name": "demo-db", "credential_type": "basic"},
                             "database": "demo", "query": "SELECT * FROM pg_authid"});
        assert!(DatabaseQueryInput::from_json(&raw_sql).is_err());

        let wrong_type = json!({"credential": {"name": "k", "credential_type": "api_key"},
                                "database": "demo", "query": "low_stock"});
        let e = DatabaseQueryInput::from_json(&wrong_type).unwrap_err();
        assert!(e.reason.contains("expected one of basic"), "{e}");

        let bad_db = json!({"credential": {"name": "demo-db", "credential_type": "basic"},
                            "database": "demo; drop", "query": "low_stock"});
        assert!(DatabaseQueryInput::from_json(&bad_db).is_err());
    }

    #[test]
    fn secret_values_are_refused_without_echoing_them() {
        let v = json!({"credential": {"name": "demo-db", "credential_type": "basic",
                                      "password": "hunter2-planted"},
                       "database": "demo", "query": "low_stock"});
        let e = DatabaseQueryInput::from_json(&v).unwrap_err();
        assert!(e.reason.contains("credential.password"), "{e}");
        assert!(!e.to_string().contains("hunter2-planted"));
        let v = json!({"credential": {"name": "x", "credential_type": "api_key"},
                       "url": "https://h/", "headers": [{"Authorization": "Bearer zzz"}]});
        assert!(HttpCallInput::from_json(&v).is_err());
    }

    #[test]
    fn one_rule_finds_secret_keys_at_any_depth_and_spelling() {
        let path = |v| secret_field_path(&v, "input");
        assert_eq!(
            path(json!({"db": {"password": "x"}})),
            Some("input.db.password".into())
        );
        assert_eq!(
            path(json!({"items": [{"API-Key": "x"}]})),
            Some("input.items[0].API-Key".into())
        );
        assert_eq!(
            path(json!({"db_password": "x"})),
            Some("input.db_password".into())
        );
        assert_eq!(path(json!({"Bearer": "x"})), Some("input.Bearer".into()));
        // Names that merely contain a secret word are not secrets.
        assert_eq!(
            path(json!({"max_tokens": 3, "tokenizer": "x", "credential_type": "basic"})),
            None
        );
    }

    #[test]
    fn http_call_urls() {
        let mk = |url: &str| json!({"credential": {"name": "c", "credential_type": "oauth_client"}, "url": url});
        assert!(HttpCallInput::from_json(&mk("https://127.0.0.1:8443/healthz")).is_ok());
        assert!(HttpCallInput::from_json(&mk("http://127.0.0.1/")).is_err());
        assert!(HttpCallInput::from_json(&mk("https://user:pw@host/")).is_err());
        assert!(HttpCallInput::from_json(&mk("https:///path")).is_err());
        assert!(HttpCallInput::from_json(&mk("https://h/ x")).is_err());
        let basic =
            json!({"credential": {"name": "c", "credential_type": "basic"}, "url": "https://h/"});
        assert!(HttpCallInput::from_json(&basic).is_err());
    }
}
