//! Rotations. Each is a confirmable POST form carrying the session's CSRF token.
//!
//! Certificate, token, JWT key and CA rotations are [`Operation`]s run as jobs by one runner
//! ([`start`], [`execute`]): CSRF check, confirmation, job row, the operation's steps on a
//! task, then the job's end state and its audit row. Each operation's file holds only the
//! steps that differ. OAuth secret and stored credential rotations answer at once because
//! their result page is the only place the new secret is ever shown.
//!
//! Safety rules: a failed step leaves the previous material in service (pki writes are
//! atomic and all-or-nothing); a rotation verifies propagation where it can before it calls
//! itself done; the JWT key is published before it signs and retired after the longest token
//! lifetime; a CA rotation keeps old and new in the trust bundle until the operator ends the
//! overlap. The one exception is the emergency revoke: a possibly compromised JWT key (and
//! every retired one) leaves the JWKS at once, without overlap.
//!
//! Every write to the certs directory holds the in-process `pki_lock` (so page actions queue
//! instead of failing) and pki's cross-process [`DirLock`] (so bulwark-init cannot interleave).

pub mod ca;
pub mod cert;
pub mod confirm;
pub mod credential;
mod error;
pub mod jwt;
pub mod oauth;
mod propagate;
pub mod revoke;
pub mod tokens;

use std::{collections::HashMap, future::Future, sync::Arc};

use axum::response::{IntoResponse, Redirect, Response};
use bulwark_pki::{Settings, lock::DirLock, manifest::Manifest, rotate::Clock};

pub use error::RotationError;

use super::{
    AdminError, AdminState,
    audit::{self, Action, AuditEntry},
    auth::Session,
    jobs::{Job, JobKind, JobState},
    render,
};

/// A submitted form.
pub(crate) type Fields = HashMap<String, String>;

pub(crate) fn field<'a>(form: &'a Fields, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or_default()
}

/// Actions need the confirmation box ticked (the form marks it required, the server checks).
fn confirmed(form: &Fields) -> Result<(), AdminError> {
    if field(form, "confirm") == "yes" {
        Ok(())
    } else {
        Err(AdminError::BadRequest(
            "tick the confirmation box to go ahead".into(),
        ))
    }
}

/// Reject a state-changing form without this session's CSRF token or the confirmation box.
pub(crate) fn guard(session: &Session, form: &Fields) -> Result<(), AdminError> {
    session.check_csrf(form)?;
    confirmed(form)
}

/// Who runs an action: the logged-in operator, or background work (empty address).
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub address: String,
}

impl Actor {
    pub fn background(name: &str) -> Actor {
        Actor {
            name: name.to_owned(),
            address: String::new(),
        }
    }

    /// This actor's audit row.
    pub fn entry<'a>(
        &'a self,
        action: Action,
        target: &'a str,
        outcome: audit::Outcome,
        detail: &'a str,
    ) -> AuditEntry<'a> {
        AuditEntry {
            actor: &self.name,
            action,
            target,
            outcome,
            detail,
            address: &self.address,
        }
    }
}

impl From<&Session> for Actor {
    fn from(s: &Session) -> Actor {
        Actor {
            name: s.username.clone(),
            address: s.address.clone(),
        }
    }
}

/// How an operation ended.
#[derive(Debug)]
pub enum Outcome {
    /// Finished; the detail goes to the last job line and the audit row.
    Done(String),
    /// Paused for the operator (the job page offers the next step); audited as started.
    Waiting(String),
}

/// What an operation's steps see: the admin state and the job to report progress on.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub state: AdminState,
    pub job: Job,
}

impl Ctx {
    /// One progress line on the job page.
    pub async fn step(&self, stage: &str, line: &str) {
        self.job.step(stage, line).await;
    }
}

/// One kind of job: what it is called and the steps that make it differ from the others.
pub trait Operation: Send + Sync + 'static {
    /// The job row's kind.
    fn kind(&self) -> JobKind;
    /// The audit action; the kind's own by default.
    fn action(&self) -> Action {
        self.kind().action()
    }
    /// What the job changes (an item id).
    fn target(&self) -> &str;
    /// The steps. An `Err` is the reason shown on the job page and audited as a failure.
    fn run(&self, ctx: &Ctx) -> impl Future<Output = Result<Outcome, RotationError>> + Send;
}

fn job_redirect(job: &Job) -> Response {
    Redirect::to(&format!("/admin/jobs/{}", job.id)).into_response()
}

/// The page side of every job: CSRF, confirmation, `make` (which checks the form and builds
/// the operation, or refuses with a 400), the job row, the steps on a task of their own;
/// answers with a redirect to the job page.
pub(crate) async fn start<O: Operation>(
    state: &AdminState,
    session: &Session,
    form: &Fields,
    make: impl FnOnce(&AdminState, &Fields) -> Result<O, AdminError>,
) -> Result<Response, AdminError> {
    guard(session, form)?;
    let op = make(state, form)?;
    let actor = Actor::from(session);
    let job = Job::create(&state.pool, op.kind(), op.target(), &actor.name).await?;
    let ctx = Ctx {
        state: state.clone(),
        job: job.clone(),
    };
    tokio::spawn(async move { execute(&ctx, &actor, &op).await });
    Ok(job_redirect(&job))
}

/// Run `op`'s steps on an existing job and record how it ended (job line, state, audit row).
/// Returns the job's end state.
pub(crate) async fn execute<O: Operation>(ctx: &Ctx, actor: &Actor, op: &O) -> JobState {
    let (action, target) = (op.action(), op.target());
    match op.run(ctx).await {
        Ok(Outcome::Done(detail)) => {
            ctx.step("done", &detail).await;
            ctx.job.set_state(JobState::Succeeded, None).await;
            let e = actor.entry(action, target, audit::Outcome::Success, &detail);
            e.record(&ctx.state.pool).await;
            JobState::Succeeded
        }
        Ok(Outcome::Waiting(detail)) => {
            ctx.job.set_state(JobState::Waiting, None).await;
            let e = actor.entry(action, target, audit::Outcome::Started, &detail);
            e.record(&ctx.state.pool).await;
            JobState::Waiting
        }
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(job = %ctx.job.id, %action, target, %reason, "rotation failed");
            ctx.step("failed", &reason).await;
            ctx.job.set_state(JobState::Failed, Some(&reason)).await;
            let e = actor.entry(action, target, audit::Outcome::Failure, &reason);
            e.record(&ctx.state.pool).await;
            JobState::Failed
        }
    }
}

/// Run `f` (pki verbs) on the blocking pool holding both locks of the certs directory, with
/// the admin state's settings and clock.
pub(crate) async fn locked<T: Send + 'static>(
    state: &AdminState,
    f: impl FnOnce(&DirLock, &Settings, &dyn Clock) -> Result<T, RotationError> + Send + 'static,
) -> Result<T, RotationError> {
    let _guard = state.pki_lock.lock().await;
    let dir = state.cfg.certs_dir.clone();
    let settings = state.cfg.pki.clone();
    let clock = Arc::clone(&state.clock);
    tokio::task::spawn_blocking(move || {
        let lock = DirLock::acquire(&dir)?;
        f(&lock, &settings, &*clock)
    })
    .await?
}

/// The manifest's id for an item: its kid (JWT key) or fingerprint; "-" when absent.
pub(crate) fn ident(m: &Manifest, id: &str) -> String {
    m.get(id)
        .map(|e| e.kid.clone().unwrap_or_else(|| e.fingerprint.clone()))
        .unwrap_or_else(|| "-".into())
}

/// The current ident of `id`, for a "before" line (empty when the manifest is unreadable).
pub(crate) fn ident_now(state: &AdminState, id: &str) -> String {
    super::inventory::read_manifest(&state.cfg.certs_dir)
        .map(|m| ident(&m, id))
        .unwrap_or_default()
}

/// The namespace a probe token asks for.
pub(crate) fn probe_namespace(state: &AdminState) -> &str {
    state
        .cfg
        .temporal
        .as_ref()
        .map(|t| t.namespace.as_str())
        .unwrap_or("default")
}

#[derive(askama::Template)]
#[template(path = "secret.html")]
pub(crate) struct SecretPage {
    pub user: String,
    pub csrf: String,
    pub title: String,
    pub what: String,
    pub secret: String,
    pub notes: Vec<String>,
}

/// The one page that shows a new secret. The page itself is `no-store` (admin middleware) so
/// the secret is not cached.
pub(crate) fn one_time(page: &SecretPage) -> Result<Response, AdminError> {
    render(page)
}
