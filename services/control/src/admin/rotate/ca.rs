//! An issuing CA with a trust-bundle overlap: begin (new CA, everything it signs re-issued,
//! the bundle trusts old and new; the job then waits), and the operator's end of it.

use axum::{
    Form,
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use bulwark_pki::{layout, rotate::ca};
use uuid::Uuid;

use super::{Actor, Ctx, Fields, Operation, Outcome, RotationError, field, ident, propagate};
use crate::admin::{
    AdminError, AdminState,
    audit::Action,
    auth::Session,
    inventory::read_manifest,
    jobs::{self, Job, JobKind, JobState},
};

/// Begin an issuing CA's overlap.
#[derive(Debug)]
pub struct RotateCa {
    pub id: String,
}

impl RotateCa {
    fn from_form(_: &AdminState, form: &Fields) -> Result<RotateCa, AdminError> {
        let id = field(form, "target").to_owned();
        if !ca::ISSUING_CAS.contains(&id.as_str()) {
            return Err(AdminError::BadRequest(
                bulwark_pki::Error::NotAnIssuingCa(id).to_string(),
            ));
        }
        Ok(RotateCa { id })
    }
}

impl Operation for RotateCa {
    fn kind(&self) -> JobKind {
        JobKind::RotateCa
    }

    fn target(&self) -> &str {
        &self.id
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome, RotationError> {
        let before = super::ident_now(&ctx.state, &self.id);
        ctx.step("issue", &format!("{BEFORE} {before}")).await;
        let id = self.id.clone();
        let report = super::locked(&ctx.state, move |lock, settings, clock| {
            Ok(ca::begin_overlap(lock, settings, &id, clock)?)
        })
        .await?;
        let m = read_manifest(&ctx.state.cfg.certs_dir)?;
        let after = ident(&m, &self.id);
        let reissued: Vec<&str> = report
            .changes
            .iter()
            .filter(|c| c.id != self.id)
            .map(|c| c.id.as_str())
            .collect();
        ctx.step(
            "overlap",
            &format!(
                "new CA {after}; trust bundle holds old and new; re-issued: {}",
                reissued.join(", ")
            ),
        )
        .await;
        await_operator(ctx, &self.id, &before, &after).await
    }
}

/// The first line of a CA job's log names the CA it replaces; a resume reads it back.
const BEFORE: &str = "current CA fingerprint";

/// After the overlap has begun: Temporal presents the re-issued server certificate (server
/// CA only), then the job waits for the operator to end the overlap.
async fn await_operator(
    ctx: &Ctx,
    id: &str,
    before: &str,
    after: &str,
) -> Result<Outcome, RotationError> {
    if id == layout::SERVER_CA
        && let Some(e) = read_manifest(&ctx.state.cfg.certs_dir)?.get("temporal-server")
    {
        propagate::server_shows(ctx, &e.fingerprint).await?;
    }
    ctx.step(
        "overlap",
        "waiting for the operator: end the overlap once every service has reloaded",
    )
    .await;
    Ok(Outcome::Waiting(format!(
        "CA {before} -> {after}; overlap started"
    )))
}

/// Resume an interrupted overlap on its own job. `begin_overlap` writes under the directory
/// lock and atomically, so either the CA in service is still the one the job's first line
/// recorded (the overlap never began: begin it now) or it is the new one (only the
/// propagation check and the wait for the operator remain). Beginning again in the second
/// case would issue a third CA and drop the first from the bundle while peers may use it.
#[derive(Debug)]
pub struct ResumeCa {
    pub id: String,
    /// The CA the interrupted run replaced, from its log; `None` if it never logged it.
    pub before: Option<String>,
}

impl Operation for ResumeCa {
    fn kind(&self) -> JobKind {
        JobKind::RotateCa
    }

    fn target(&self) -> &str {
        &self.id
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome, RotationError> {
        let now = super::ident_now(&ctx.state, &self.id);
        match &self.before {
            Some(before) if !now.is_empty() && now != "-" && *before != now => {
                ctx.step(
                    "overlap",
                    &format!(
                        "resumed: the interrupted run had begun the overlap ({before} -> {now})"
                    ),
                )
                .await;
                await_operator(ctx, &self.id, before, &now).await
            }
            _ => {
                ctx.step(
                    "issue",
                    "resumed: the interrupted run had not begun the overlap; beginning it",
                )
                .await;
                RotateCa {
                    id: self.id.clone(),
                }
                .run(ctx)
                .await
            }
        }
    }
}

/// The job page's Resume form for an interrupted CA overlap.
pub async fn resume(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    super::guard(&session, &form)?;
    let id = Uuid::parse_str(field(&form, "job")).map_err(|_| AdminError::NotFound)?;
    let view = jobs::get(&state.pool, id)
        .await?
        .ok_or(AdminError::NotFound)?;
    let refused = || {
        AdminError::BadRequest(
            "this job is not an interrupted CA overlap that can still be resumed".into(),
        )
    };
    if view.kind != JobKind::RotateCa
        || view.state != JobState::Interrupted
        || jobs::superseded(&state.pool, id).await?
    {
        return Err(refused());
    }
    let before = view
        .log
        .first()
        .and_then(|l| l.split_once(BEFORE))
        .map(|(_, fp)| fp.trim().to_owned());
    let job = Job::open(&state.pool, id);
    if !job.claim(JobState::Interrupted).await? {
        return Err(refused());
    }
    let ctx = Ctx {
        state: state.clone(),
        job,
    };
    let actor = Actor::from(&session);
    let op = ResumeCa {
        id: view.target,
        before,
    };
    tokio::spawn(async move { super::execute(&ctx, &actor, &op).await });
    Ok(Redirect::to(&format!("/admin/jobs/{id}")).into_response())
}

/// End an overlap: the trust bundle keeps only the current CA. Runs on the waiting job.
#[derive(Debug)]
pub struct FinishCa {
    pub id: String,
}

impl Operation for FinishCa {
    fn kind(&self) -> JobKind {
        JobKind::RotateCa
    }

    fn action(&self) -> Action {
        Action::RotateCaFinish
    }

    fn target(&self) -> &str {
        &self.id
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome, RotationError> {
        let id = self.id.clone();
        super::locked(&ctx.state, move |lock, settings, clock| {
            Ok(ca::end_overlap(lock, settings, &id, clock)?)
        })
        .await?;
        Ok(Outcome::Done(format!(
            "overlap ended: {}'s trust bundle holds only the new CA",
            self.id
        )))
    }
}

pub async fn rotate(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    super::start(&state, &session, &form, RotateCa::from_form).await
}

/// The job page's "end the overlap" form; answers once the bundle is trimmed.
pub async fn finish(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    super::guard(&session, &form)?;
    let id = Uuid::parse_str(field(&form, "job")).map_err(|_| AdminError::NotFound)?;
    let view = jobs::get(&state.pool, id)
        .await?
        .ok_or(AdminError::NotFound)?;
    if view.kind != JobKind::RotateCa || view.state != JobState::Waiting {
        return Err(AdminError::BadRequest(
            "this job is not waiting to end a CA overlap".into(),
        ));
    }
    let job = Job::open(&state.pool, id);
    if !job.claim(JobState::Waiting).await? {
        return Err(AdminError::BadRequest(
            "this overlap is already being ended".into(),
        ));
    }
    let ctx = Ctx {
        state: state.clone(),
        job,
    };
    let op = FinishCa { id: view.target };
    super::execute(&ctx, &Actor::from(&session), &op).await;
    Ok(Redirect::to(&format!("/admin/jobs/{id}")).into_response())
}
