//! The append-only audit log: who, what, when, outcome, from where. Never a secret value:
//! callers pass identifiers, versions, fingerprints and kids only.

use axum::{extract::State, response::Response};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

use super::{AdminError, AdminState, auth::Session, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Started,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Started => "started",
        }
    }
}

/// Append one row. A failure to write the audit log is logged loudly but does not undo the
/// action it describes (which has already happened).
pub async fn record(
    pool: &PgPool,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    detail: &str,
    address: &str,
) {
    let r = sqlx::query(
        "INSERT INTO admin_audit (actor, action, target, outcome, detail, address) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(outcome.as_str())
    .bind(detail)
    .bind(address)
    .execute(pool)
    .await;
    match r {
        Ok(_) => tracing::info!(
            audit = true,
            actor,
            action,
            target,
            outcome = outcome.as_str(),
            detail,
            address,
            "audit"
        ),
        Err(e) => tracing::error!(error = %e, actor, action, target, "audit log write failed"),
    }
}

/// One row as shown on the page.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub address: String,
}

pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<AuditRow>, AdminError> {
    let rows = sqlx::query(
        "SELECT at, actor, action, target, outcome, detail, address FROM admin_audit ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                at: super::inventory::fmt_time(Some(r.try_get::<OffsetDateTime, _>("at")?)),
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                outcome: r.try_get("outcome")?,
                detail: r.try_get("detail")?,
                address: r.try_get("address")?,
            })
        })
        .collect()
}

#[derive(askama::Template)]
#[template(path = "audit.html")]
struct AuditPage {
    user: String,
    csrf: String,
    rows: Vec<AuditRow>,
}

pub async fn page(
    State(state): State<AdminState>,
    session: Session,
) -> Result<Response, AdminError> {
    let rows = recent(&state.pool, 500).await?;
    render(&AuditPage {
        user: session.username,
        csrf: session.csrf,
        rows,
    })
}
