//! The append-only audit log: who, what, when, outcome, from where. Never a secret value:
//! callers pass identifiers, versions, fingerprints and kids only.
//!
//! Refused logins are aggregated ([`RefusalLog`]) so that nobody can fill the disk through
//! the login form: per address and window, the first refusal is written at once and the
//! rest are counted in memory and written as one row when the window closes (or when the
//! entry is evicted, or at shutdown). Past [`ADDRESSES_PER_WINDOW`] addresses in a window,
//! further addresses share one entry, so a spray from a large address block adds a bounded
//! number of rows too. Successful logins and every admin action are one row each.

mod refusals;

use axum::{extract::State, response::Response};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

pub use super::action::Action;
use super::{AdminError, AdminState, auth::Session, render};
pub use refusals::{
    ADDRESSES_PER_WINDOW, RefusalLog, RefusalRow, flush_refusals, login_actor, refused,
};

/// How an action ended, as the `outcome` column spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// A staged action paused for the operator (a CA overlap); its end is a row of its own.
    Started,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Started => "started",
        }
    }
}

/// One row of the audit log. `address` is the client's address, empty for background work.
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: Action,
    pub target: &'a str,
    pub outcome: Outcome,
    pub detail: &'a str,
    pub address: &'a str,
}

impl AuditEntry<'_> {
    /// Append this row; see [`write`].
    pub async fn record(self, pool: &PgPool) {
        write(pool, self).await;
    }
}

/// Append one row. A failure to write the audit log is logged loudly but does not undo the
/// action it describes (which has already happened).
pub async fn write(pool: &PgPool, e: AuditEntry<'_>) {
    let action = e.action.as_str();
    let outcome = e.outcome.as_str();
    let r = sqlx::query(
        "INSERT INTO admin_audit (actor, action, target, outcome, detail, address) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.actor)
    .bind(action)
    .bind(e.target)
    .bind(outcome)
    .bind(e.detail)
    .bind(e.address)
    .execute(pool)
    .await;
    match r {
        Ok(_) => tracing::info!(
            audit = true,
            actor = e.actor,
            action,
            target = e.target,
            outcome,
            detail = e.detail,
            address = e.address,
            "audit"
        ),
        Err(err) => tracing::error!(
            error = %err,
            actor = e.actor,
            action,
            target = e.target,
            "audit log write failed"
        ),
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
