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
        ctx.step("issue", &format!("current CA fingerprint {before}"))
            .await;
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
        if self.id == layout::SERVER_CA
            && let Some(e) = m.get("temporal-server")
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
    job.set_state(JobState::Running, None).await;
    let ctx = Ctx {
        state: state.clone(),
        job,
    };
    let op = FinishCa { id: view.target };
    super::execute(&ctx, &Actor::from(&session), &op).await;
    Ok(Redirect::to(&format!("/admin/jobs/{id}")).into_response())
}
