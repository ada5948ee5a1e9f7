//! `manifest.json`: the inventory of every item in the certs directory.
//!
//! The manifest is written deterministically (fixed order, no "last checked" stamps) so an
//! idempotent `generate` leaves it byte-for-byte unchanged.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::jwt::Jwk;

pub const MANIFEST_FILE: &str = "manifest.json";

/// What an item is. Decides how it is checked and what it may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ItemKind {
    RootCa,
    IntermediateCa,
    ServerCert,
    InternodeCert,
    ClientCert,
    TrustBundle,
    JwtSigningKey,
    Token,
    CliConfig,
}

/// One row of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub kind: ItemKind,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key_path: Option<String>,
    /// The item this one is issued by or derived from.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub issuer: Option<String>,
    /// SHA-256 of the certificate DER, the token bytes, or the file contents.
    pub fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub serial: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub not_after: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kid: Option<String>,
    pub generation: u64,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub rotated_at: Option<OffsetDateTime>,
}

impl Entry {
    /// Whole days until `not_after` (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> Option<i64> {
        self.not_after.map(|na| (na - now).whole_days())
    }

    /// Inventory status at `now` given the renewal fraction.
    pub fn status(&self, now: OffsetDateTime, renew_fraction: f64) -> Status {
        match (self.not_before, self.not_after) {
            (_, Some(na)) if now >= na => Status::Expired,
            (Some(nb), Some(na)) if crate::cert::due_for_renewal(nb, na, now, renew_fraction) => {
                Status::RenewSoon
            }
            _ => Status::Valid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Expired,
    RenewSoon,
    Valid,
}

/// A JWT public key kept in the JWKS after rotation until every token it signed has expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredKey {
    pub jwk: Jwk,
    #[serde(with = "time::serde::rfc3339")]
    pub retire_after: OffsetDateTime,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub items: Vec<Entry>,
    #[serde(default)]
    pub retired_keys: Vec<RetiredKey>,
}

impl Manifest {
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.items.iter().find(|e| e.id == id)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}
