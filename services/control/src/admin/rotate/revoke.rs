//! Emergency revoke: a new key signs at once, every earlier key leaves the JWKS at once, the
//! static tokens are re-issued; then Temporal is watched until it refuses the revoked key.

use axum::{Form, extract::State, response::Response};
use bulwark_pki::{layout, rotate::jwt};

use super::{
    Ctx, Fields, Operation, Outcome, RotationError,
    propagate::{self, Unanswered},
    start,
};
use crate::admin::{AdminError, AdminState, auth::Session, jobs::JobKind, probe};

/// Revoke the JWT signing key now, without overlap.
#[derive(Debug)]
pub struct RevokeJwt;

impl Operation for RevokeJwt {
    fn kind(&self) -> JobKind {
        JobKind::RevokeJwtKey
    }

    fn target(&self) -> &str {
        layout::JWT_KEY_ID
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome, RotationError> {
        let state = &ctx.state;
        let claims = probe::probe_claims(
            &state.cfg.pki,
            super::probe_namespace(state),
            &state.cfg.certs_dir,
        );
        let done = super::locked(state, move |lock, settings, clock| {
            // A token from the key being revoked, to show afterwards that Temporal refuses it.
            let old_token = jwt::current(lock.dir())
                .ok()
                .and_then(|k| k.sign(&claims).ok());
            // The pending next key of a rotation in progress goes too: it lived in the same
            // directory, and a revoke trusts nothing published before it.
            let revocation =
                jwt::revoke(lock, settings, clock).map_err(RotationError::RevokeFailed)?;
            Ok((revocation, old_token))
        })
        .await;
        // Sign with whatever key is on disk now, not at the next periodic check: also when a
        // later step failed after the key was already replaced.
        state.reload_signer();
        let (revocation, old_token) = done?;
        let revoked = match revocation.revoked.join(", ") {
            r if r.is_empty() => "-".to_owned(),
            r => r,
        };
        ctx.step(
            "revoked",
            &format!(
                "kid {} signs now and is the only key in jwks.json; removed: {revoked}",
                revocation.kid
            ),
        )
        .await;
        ctx.step(
            "tokens",
            "static tokens and CLI profiles re-issued with the new key; bulwark-control's token endpoint signs with it now",
        )
        .await;
        if let (Some(target), Some(old_token)) = (&state.cfg.temporal, old_token) {
            let waited_secs = (state.cfg.jwks_propagation * 3).as_secs();
            ctx.step(
                "propagating",
                &format!(
                    "waiting for Temporal at {} to refuse the revoked key (its JWKS refresh, up to {waited_secs}s)",
                    target.address
                ),
            )
            .await;
            match propagate::token_answer(ctx, target, &old_token, false).await {
                Ok(()) => {}
                Err(Unanswered::Stayed) => {
                    return Err(RotationError::RevokedKeyAccepted {
                        address: target.address.clone(),
                        waited_secs,
                    });
                }
                Err(Unanswered::Probe(e)) => return Err(RotationError::RevokedKeyUnchecked(e)),
            }
            ctx.step(
                "verified",
                &format!(
                    "Temporal at {} refuses tokens signed by the revoked key",
                    target.address
                ),
            )
            .await;
        }
        Ok(Outcome::Done(format!(
            "revoked {revoked}; kid {} signs",
            revocation.kid
        )))
    }
}

pub async fn revoke(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    start(&state, &session, &form, |_, _| Ok(RevokeJwt)).await
}
