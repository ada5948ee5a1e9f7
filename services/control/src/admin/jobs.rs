//! Multi-step rotations as persistent jobs with visible progress. A job's log lines are
//! identifiers, fingerprints and kids only, never secret values.

use std::fmt;

use axum::{
    extract::{Path, State},
    response::Response,
};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AdminError, AdminState, action::Action, auth::Session, inventory::fmt_time, render};

/// What a job row does (its `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    RotateCert,
    ReissueTokens,
    RotateJwtKey,
    RevokeJwtKey,
    /// Begins an overlap; the job then waits for the operator to end it.
    RotateCa,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::RotateCert,
        JobKind::ReissueTokens,
        JobKind::RotateJwtKey,
        JobKind::RevokeJwtKey,
        JobKind::RotateCa,
    ];

    /// The audit action of the same name.
    pub fn action(self) -> Action {
        match self {
            JobKind::RotateCert => Action::RotateCert,
            JobKind::ReissueTokens => Action::ReissueTokens,
            JobKind::RotateJwtKey => Action::RotateJwtKey,
            JobKind::RevokeJwtKey => Action::RevokeJwtKey,
            JobKind::RotateCa => Action::RotateCa,
        }
    }

    /// The name stored in the database: the same as the audit action's.
    pub fn as_str(self) -> &'static str {
        self.action().as_str()
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The confirm page's `action` that resumes this kind of job by running it again, or
    /// `None` when running it again would not resume: a CA rotation would begin a second
    /// overlap (issue another CA), so an interrupted one is resumed on its own job instead
    /// (`rotate::ca::resume`).
    pub fn resume_action(self) -> Option<&'static str> {
        match self {
            JobKind::RotateCert => Some("cert"),
            JobKind::ReissueTokens => Some("tokens"),
            JobKind::RotateJwtKey => Some("jwt"),
            JobKind::RevokeJwtKey => Some("revoke-jwt"),
            JobKind::RotateCa => None,
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job is (its `state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    /// Paused for an operator decision (e.g. ending a CA bundle overlap).
    Waiting,
    Succeeded,
    Failed,
    /// Was running when control stopped (a crash, `kill -9`, a restart). Every step writes
    /// atomically and the rotations are resumable, so running the action again resumes it.
    Interrupted,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Running,
        JobState::Waiting,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Waiting => "waiting",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job row holds a kind or state this build does not know (written by another version).
#[derive(Debug, thiserror::Error)]
#[error("admin_jobs.{column} holds {value:?}, which this bulwark-control does not know")]
pub struct UnknownName {
    column: &'static str,
    value: String,
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
        kind: JobKind,
        target: &str,
        by: &str,
    ) -> Result<Job, AdminError> {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO admin_jobs (id, kind, target, state, stage, started_by) VALUES ($1, $2, $3, $4, 'starting', $5)",
        )
        .bind(id.to_string())
        .bind(kind.as_str())
        .bind(target)
        .bind(JobState::Running.as_str())
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

    /// Move the job from `from` to running, unless another request got there first (two
    /// clicks on Resume or End the overlap must not run the steps twice). True if claimed.
    pub async fn claim(&self, from: JobState) -> Result<bool, AdminError> {
        let r = sqlx::query(
            "UPDATE admin_jobs SET state = 'running', error = NULL, updated_at = now() WHERE id = $1 AND state = $2",
        )
        .bind(self.id.to_string())
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
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

/// Mark jobs left running by a previous process as interrupted, so they can be resumed.
pub async fn mark_interrupted(pool: &PgPool) -> Result<u64, AdminError> {
    Ok(sqlx::query(
        "UPDATE admin_jobs SET state = 'interrupted', error = 'interrupted by a stop of bulwark-control; the material in service is consistent (every step is written atomically); resume to finish the rotation', updated_at = now() WHERE state = 'running'",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

#[derive(Debug, Clone)]
pub struct JobView {
    pub id: String,
    pub kind: JobKind,
    pub target: String,
    pub state: JobState,
    pub stage: String,
    pub log: Vec<String>,
    pub error: String,
    pub started_by: String,
    pub created_at: String,
    pub updated_at: String,
}

fn parsed<T>(
    r: &sqlx::postgres::PgRow,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    let value: String = r.try_get(column)?;
    parse(&value).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(UnknownName { column, value }),
    })
}

fn view(r: &sqlx::postgres::PgRow) -> Result<JobView, sqlx::Error> {
    Ok(JobView {
        id: r.try_get("id")?,
        kind: parsed(r, "kind", JobKind::parse)?,
        target: r.try_get("target")?,
        state: parsed(r, "state", JobState::parse)?,
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

/// Whether a later job of the same kind and target succeeded: an interrupted job it
/// finished is no longer offered for resumption.
pub async fn superseded(pool: &PgPool, id: Uuid) -> Result<bool, AdminError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM admin_jobs j JOIN admin_jobs l
           ON l.kind = j.kind AND l.target = j.target AND l.created_at > j.created_at
         WHERE j.id = $1 AND l.state IN ('succeeded', 'waiting'))",
    )
    .bind(id.to_string())
    .fetch_one(pool)
    .await?)
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
    /// The confirm action that resumes this interrupted job, if any and still needed.
    resume: Option<&'static str>,
    /// An interrupted CA overlap, resumed on this job by the Resume form.
    resume_ca: bool,
}

pub async fn page(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id = Uuid::parse_str(&id).map_err(|_| AdminError::NotFound)?;
    let job = get(&state.pool, id).await?.ok_or(AdminError::NotFound)?;
    let resumable = job.state == JobState::Interrupted && !superseded(&state.pool, id).await?;
    let resume = job.kind.resume_action().filter(|_| resumable);
    render(&JobPage {
        user: session.username,
        csrf: session.csrf,
        refresh: job.state == JobState::Running,
        resume_ca: resumable && job.kind == JobKind::RotateCa,
        job,
        resume,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states_keep_their_stored_names() {
        let kinds: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "rotate-cert",
                "reissue-tokens",
                "rotate-jwt-key",
                "revoke-jwt-key",
                "rotate-ca"
            ]
        );
        let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            states,
            ["running", "waiting", "succeeded", "failed", "interrupted"]
        );
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        // The CA finish is an audit action, never a job kind.
        assert_eq!(JobKind::parse("rotate-ca-finish"), None);
        assert_eq!(JobState::parse("Running"), None);
    }
}
