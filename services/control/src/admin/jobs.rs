//! Multi-step rotations as persistent jobs with visible progress. A job's log lines are
//! identifiers, fingerprints and kids only, never secret values.

use axum::{
    extract::{Path, State},
    response::Response,
};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AdminError, AdminState, auth::Session, inventory::fmt_time, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    /// Paused for an operator decision (e.g. ending a CA bundle overlap).
    Waiting,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Waiting => "waiting",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }
}

/// Handle on one job row.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pool: PgPool,
}

impl Job {
    pub async fn create(
        pool: &PgPool,
        kind: &str,
        target: &str,
        by: &str,
    ) -> Result<Job, AdminError> {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO admin_jobs (id, kind, target, state, stage, started_by) VALUES ($1, $2, $3, 'running', 'starting', $4)",
        )
        .bind(id.to_string())
        .bind(kind)
        .bind(target)
        .bind(by)
        .execute(pool)
        .await?;
        Ok(Job {
            id,
            pool: pool.clone(),
        })
    }

    pub fn open(pool: &PgPool, id: Uuid) -> Job {
        Job {
            id,
            pool: pool.clone(),
        }
    }

    /// Record progress: the current stage and a line for the log.
    pub async fn step(&self, stage: &str, line: &str) {
        let stamp = fmt_time(Some(OffsetDateTime::now_utc()));
        let r = sqlx::query(
            "UPDATE admin_jobs SET stage = $2, log = array_append(log, $3), updated_at = now() WHERE id = $1",
        )
        .bind(self.id.to_string())
        .bind(stage)
        .bind(format!("{stamp}  {line}"))
        .execute(&self.pool)
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, job = %self.id, "job progress not recorded");
        }
        tracing::info!(job = %self.id, stage, "{line}");
    }

    pub async fn set_state(&self, state: JobState, error: Option<&str>) {
        let r = sqlx::query(
            "UPDATE admin_jobs SET state = $2, error = $3, updated_at = now() WHERE id = $1",
        )
        .bind(self.id.to_string())
        .bind(state.as_str())
        .bind(error)
        .execute(&self.pool)
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, job = %self.id, "job state not recorded");
        }
    }
}

/// Mark jobs left running by a previous process as failed, so they can be retried.
pub async fn fail_interrupted(pool: &PgPool) -> Result<u64, AdminError> {
    Ok(sqlx::query(
        "UPDATE admin_jobs SET state = 'failed', error = 'interrupted by a restart of bulwark-control; the previous material is still in service; retry the action', updated_at = now() WHERE state = 'running'",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

#[derive(Debug, Clone)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub state: String,
    pub stage: String,
    pub log: Vec<String>,
    pub error: String,
    pub started_by: String,
    pub created_at: String,
    pub updated_at: String,
}

fn view(r: &sqlx::postgres::PgRow) -> Result<JobView, sqlx::Error> {
    Ok(JobView {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        target: r.try_get("target")?,
        state: r.try_get("state")?,
        stage: r.try_get("stage")?,
        log: r.try_get("log")?,
        error: r.try_get::<Option<String>, _>("error")?.unwrap_or_default(),
        started_by: r.try_get("started_by")?,
        created_at: fmt_time(Some(r.try_get("created_at")?)),
        updated_at: fmt_time(Some(r.try_get("updated_at")?)),
    })
}

const COLS: &str = "id, kind, target, state, stage, log, error, started_by, created_at, updated_at";

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<JobView>, AdminError> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM admin_jobs WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(view).transpose()?)
}

pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<JobView>, AdminError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM admin_jobs ORDER BY created_at DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(view).collect::<Result<_, _>>()?)
}

#[derive(askama::Template)]
#[template(path = "job.html")]
struct JobPage {
    user: String,
    csrf: String,
    job: JobView,
    refresh: bool,
}

pub async fn page(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id = Uuid::parse_str(&id).map_err(|_| AdminError::NotFound)?;
    let job = get(&state.pool, id).await?.ok_or(AdminError::NotFound)?;
    render(&JobPage {
        user: session.username,
        csrf: session.csrf,
        refresh: job.state == "running",
        job,
    })
}
