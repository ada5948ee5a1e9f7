//! A leaf certificate: re-issued, then (for temporal-server) seen on a fresh handshake.

use axum::{Form, extract::State, response::Response};
use bulwark_pki::rotate::reissue;

use super::{Ctx, Fields, Operation, Outcome, RotationError, field, ident, propagate, start};
use crate::admin::{
    AdminError, AdminState, auth::Session, inventory::read_manifest, jobs::JobKind,
};

/// Rotate one leaf certificate.
#[derive(Debug)]
pub struct RotateCert {
    pub id: String,
}

impl RotateCert {
    /// The form's target, if it is a leaf of this appliance.
    fn from_form(state: &AdminState, form: &Fields) -> Result<RotateCert, AdminError> {
        let id = field(form, "target").to_owned();
        if !reissue::leaf_ids(&state.cfg.pki).contains(&id) {
            return Err(AdminError::BadRequest(
                bulwark_pki::Error::NotALeaf(id).to_string(),
            ));
        }
        Ok(RotateCert { id })
    }
}

impl Operation for RotateCert {
    fn kind(&self) -> JobKind {
        JobKind::RotateCert
    }

    fn target(&self) -> &str {
        &self.id
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome, RotationError> {
        let before = super::ident_now(&ctx.state, &self.id);
        ctx.step("issue", &format!("current fingerprint {before}"))
            .await;
        let id = self.id.clone();
        let report = super::locked(&ctx.state, move |lock, settings, clock| {
            Ok(reissue::leaf(lock, settings, &id, clock)?)
        })
        .await?;
        let after = ident(&read_manifest(&ctx.state.cfg.certs_dir)?, &self.id);
        let changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
        ctx.step(
            "issued",
            &format!("new fingerprint {after} (changed: {})", changed.join(", ")),
        )
        .await;
        if self.id == "temporal-server" {
            propagate::server_shows(ctx, &after).await?;
        }
        Ok(Outcome::Done(format!("fingerprint {before} -> {after}")))
    }
}

pub async fn rotate(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    start(&state, &session, &form, RotateCert::from_form).await
}
