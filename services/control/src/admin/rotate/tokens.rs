//! The static tokens: signed again by the current key.

use axum::{Form, extract::State, response::Response};
use bulwark_pki::{layout::STATIC_TOKEN_IDS, rotate::reissue};

use super::{Ctx, Fields, Operation, Outcome, RotationError, start};
use crate::admin::{
    AdminError, AdminState, auth::Session, inventory::read_manifest, jobs::JobKind,
};

/// Re-issue system-, worker- and client-token.jwt (and the CLI profiles).
#[derive(Debug)]
pub struct ReissueTokens;

impl Operation for ReissueTokens {
    fn kind(&self) -> JobKind {
        JobKind::ReissueTokens
    }

    fn target(&self) -> &str {
        "static tokens"
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome, RotationError> {
        super::locked(&ctx.state, |lock, settings, clock| {
            Ok(reissue::static_tokens(lock, settings, clock)?)
        })
        .await?;
        let m = read_manifest(&ctx.state.cfg.certs_dir)?;
        let generations: Vec<String> = STATIC_TOKEN_IDS
            .iter()
            .map(|id| {
                let g = m.get(id).map(|e| e.generation).unwrap_or_default();
                format!("{id} generation {g}")
            })
            .collect();
        Ok(Outcome::Done(generations.join(", ")))
    }
}

pub async fn rotate(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    start(&state, &session, &form, |_, _| Ok(ReissueTokens)).await
}
