//! The inventory dashboard: every item with status, days left, fingerprint or kid,
//! generation and last rotation, most urgent first.

use axum::{extract::State, response::Response};
use bulwark_pki::manifest::{ItemKind, MANIFEST_FILE, Manifest, Status};
use sqlx::Row;
use time::OffsetDateTime;

use super::{AdminError, AdminState, auth::Session, jobs, render, rotate::RotationError};

pub fn fmt_time(t: Option<OffsetDateTime>) -> String {
    let Some(t) = t else { return "-".into() };
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Expired => "expired",
        Status::RenewSoon => "renew soon",
        Status::Valid => "valid",
    }
}

fn kind_str(k: ItemKind) -> &'static str {
    match k {
        ItemKind::RootCa => "root CA",
        ItemKind::IntermediateCa => "issuing CA",
        ItemKind::ServerCert => "server cert",
        ItemKind::InternodeCert => "internode cert",
        ItemKind::ClientCert => "client cert",
        ItemKind::TrustBundle => "trust bundle",
        ItemKind::JwtSigningKey => "JWT signing key",
        ItemKind::Token => "static token",
        ItemKind::CliConfig => "CLI config",
        _ => "other",
    }
}

/// Which action (if any) rotates an item: `(action, label)`.
pub fn action_for(id: &str, kind: ItemKind) -> Option<(&'static str, &'static str)> {
    match kind {
        ItemKind::ServerCert | ItemKind::InternodeCert | ItemKind::ClientCert => {
            Some(("cert", "Rotate certificate"))
        }
        ItemKind::IntermediateCa => Some(("ca", "Rotate CA (overlap)")),
        ItemKind::JwtSigningKey => Some(("jwt", "Rotate signing key")),
        ItemKind::Token => Some(("tokens", "Re-issue static tokens")),
        _ if id == bulwark_pki::layout::ROOT_CA => None,
        _ => None,
    }
}

/// One row of the dashboard.
#[derive(Debug, Clone)]
pub struct ItemRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub status_class: String,
    pub days_left: String,
    pub ident: String,
    pub ident_full: String,
    pub generation: String,
    pub rotated: String,
    pub not_after: String,
    pub action: String,
    pub action_label: String,
    rank: (u8, i64),
}

/// The manifest as dashboard rows, most urgent first.
pub fn manifest_rows(manifest: &Manifest, now: OffsetDateTime, fraction: f64) -> Vec<ItemRow> {
    let mut rows: Vec<ItemRow> = manifest
        .items
        .iter()
        .filter(|e| e.kind != ItemKind::CliConfig)
        .map(|e| {
            let status = e.status(now, fraction);
            let days = e.days_left(now);
            let (ident, ident_full) = match &e.kid {
                Some(kid) => (format!("kid {kid}"), kid.clone()),
                None => (
                    e.fingerprint.chars().take(16).collect::<String>(),
                    e.fingerprint.clone(),
                ),
            };
            let (action, label) = action_for(&e.id, e.kind).unwrap_or(("", ""));
            ItemRow {
                id: e.id.clone(),
                kind: kind_str(e.kind).into(),
                status: status_str(status).into(),
                status_class: status_str(status).replace(' ', "-"),
                days_left: days.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
                ident,
                ident_full,
                generation: e.generation.to_string(),
                rotated: fmt_time(e.rotated_at.or(e.not_before)),
                not_after: fmt_time(e.not_after),
                action: action.into(),
                action_label: label.into(),
                rank: (status as u8, days.unwrap_or(i64::MAX)),
            }
        })
        .collect();
    rows.sort_by_key(|r| r.rank);
    rows
}

/// The manifest, for display and for "before/after" lines (read-only: pki writes it).
pub fn read_manifest(dir: &std::path::Path) -> Result<Manifest, RotationError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(source) => return Err(RotationError::ManifestRead { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|source| RotationError::ManifestParse { path, source })
}

#[derive(Debug, Clone)]
pub struct RetiredRow {
    pub kid: String,
    pub retire_after: String,
}

#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: String,
    pub audience: String,
    pub version: i32,
    pub rotated: String,
    pub grace_until: String,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub name: String,
    pub version: i32,
    pub rotated: String,
}

#[derive(askama::Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    user: String,
    csrf: String,
    items: Vec<ItemRow>,
    manifest_error: String,
    retired: Vec<RetiredRow>,
    clients: Vec<ClientRow>,
    credentials: Option<Vec<CredentialRow>>,
    jobs: Vec<jobs::JobView>,
    renew_percent: u32,
}

pub async fn dashboard(
    State(state): State<AdminState>,
    session: Session,
) -> Result<Response, AdminError> {
    let now = OffsetDateTime::now_utc();
    let fraction = state.cfg.pki.renew_fraction();
    let (items, retired, manifest_error) = match read_manifest(&state.cfg.certs_dir) {
        Ok(m) => (
            manifest_rows(&m, now, fraction),
            m.retired_keys
                .iter()
                .map(|k| RetiredRow {
                    kid: k.jwk.kid.clone(),
                    retire_after: fmt_time(Some(k.retire_after)),
                })
                .collect(),
            String::new(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "inventory: manifest unreadable");
            (Vec::new(), Vec::new(), e.to_string())
        }
    };
    let clients = state
        .clients
        .list()
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?
        .into_iter()
        .map(|c| ClientRow {
            id: c.client.client_id,
            audience: c.client.audience,
            version: c.current_version,
            rotated: fmt_time(Some(c.rotated_at)),
            grace_until: fmt_time(c.grace_until),
            enabled: c.client.enabled,
        })
        .collect();
    let credentials = match &state.cfg_secrets_namespace() {
        Some(ns) => Some(credential_rows(&state, ns).await?),
        None => None,
    };
    render(&Dashboard {
        user: session.username,
        csrf: session.csrf,
        items,
        manifest_error,
        retired,
        clients,
        credentials,
        jobs: jobs::recent(&state.pool, 8).await?,
        renew_percent: (fraction * 100.0).round() as u32,
    })
}

pub async fn credential_rows(
    state: &AdminState,
    namespace: &str,
) -> Result<Vec<CredentialRow>, AdminError> {
    let Some(store) = &state.secrets else {
        return Ok(Vec::new());
    };
    let rows = sqlx::query(
        "SELECT name, MAX(version) AS version, MAX(created_at) AS rotated
           FROM bulwark_secret_versions WHERE store = $1 AND deleted_at IS NULL
          GROUP BY name ORDER BY MAX(created_at), name",
    )
    .bind(namespace)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CredentialRow {
                name: r.try_get("name")?,
                version: r.try_get("version")?,
                rotated: fmt_time(r.try_get("rotated")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AdminError::from)
}

impl super::Admin {
    /// The partition of the secret table the admin page manages, when a store is configured.
    pub fn cfg_secrets_namespace(&self) -> Option<String> {
        self.secrets
            .as_ref()
            .map(|_| self.secrets_namespace.clone())
    }
}
