//! The JWT signing key, staged: publish the next key, wait for Temporal's JWKS refresh,
//! check a token it signed, switch (the old key stays published until every token it signed
//! has expired), re-issue the static tokens. Also what auto-renew runs when the key is due.

use axum::{Form, extract::State, response::Response};
use bulwark_pki::{
    jwt::{Jwks, VerifyOptions},
    layout,
    rotate::{jwt, reissue},
};

use super::{
    Ctx, Fields, Operation, Outcome, RotationError,
    propagate::{self, Unanswered},
    start,
};
use crate::admin::{
    AdminError, AdminState, auth::Session, inventory::fmt_time, jobs::JobKind, probe,
};

/// Rotate the JWT signing key with a publication overlap.
#[derive(Debug)]
pub struct RotateJwt;

impl Operation for RotateJwt {
    fn kind(&self) -> JobKind {
        JobKind::RotateJwtKey
    }

    fn target(&self) -> &str {
        layout::JWT_KEY_ID
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome, RotationError> {
        let state = &ctx.state;
        let prepared = super::locked(state, |lock, settings, clock| {
            Ok(jwt::prepare(lock, settings, clock)?)
        })
        .await?;
        let (old_kid, new_kid) = (
            prepared.current.kid().to_owned(),
            prepared.next.kid().to_owned(),
        );
        ctx.step(
            "published",
            &format!(
                "new key kid {new_kid} published in jwks.json beside kid {old_kid} (which still signs)"
            ),
        )
        .await;

        ctx.step(
            "propagating",
            &format!(
                "waiting {}s for Temporal's JWKS refresh",
                state.cfg.jwks_propagation.as_secs_f64()
            ),
        )
        .await;
        tokio::time::sleep(state.cfg.jwks_propagation).await;
        let claims = probe::probe_claims(
            &state.cfg.pki,
            super::probe_namespace(state),
            &state.cfg.certs_dir,
        );
        let token = prepared.next.sign(&claims)?;
        verify_next(ctx, &token, &new_kid).await?;

        // One hold of the directory lock for the switch and the tokens, so bulwark-init never
        // sees the new key beside tokens signed by the old one.
        let switched = super::locked(state, move |lock, settings, clock| {
            let activated = jwt::activate(lock, settings, &prepared, clock)?;
            let tokens = reissue::static_tokens(lock, settings, clock).map(|_| ());
            Ok((activated, tokens))
        })
        .await;
        // Also when a step after the switch failed: the key on disk may have changed.
        state.reload_signer();
        let (activated, tokens) = switched?;
        let retire = fmt_time(Some(activated.retire_after));
        ctx.step(
            "switched",
            &format!(
                "kid {} signs now; kid {} stays in jwks.json until {retire}",
                activated.new_kid, activated.old_kid
            ),
        )
        .await;
        tokens.map_err(RotationError::TokensNotReissued)?;
        ctx.step("tokens", "static tokens re-issued with the new key")
            .await;
        Ok(Outcome::Done(format!(
            "kid {} -> {}; old key retired after {retire}",
            activated.old_kid, activated.new_kid
        )))
    }
}

/// Temporal accepts a token of the next key (or, without a Temporal to ask, the published
/// jwks.json verifies it).
async fn verify_next(ctx: &Ctx, token: &str, kid: &str) -> Result<(), RotationError> {
    let cfg = &ctx.state.cfg;
    if let Some(target) = &cfg.temporal {
        return match propagate::token_answer(ctx, target, token, true).await {
            Ok(()) => {
                ctx.step(
                    "verified",
                    &format!(
                        "Temporal at {} accepted a token signed by kid {kid}",
                        target.address
                    ),
                )
                .await;
                Ok(())
            }
            Err(Unanswered::Stayed) => Err(RotationError::NewKeyRefused {
                address: target.address.clone(),
                kid: kid.to_owned(),
            }),
            Err(Unanswered::Probe(e)) => Err(RotationError::NewKeyUnchecked(e)),
        };
    }
    let path = cfg.certs_dir.join(layout::JWKS);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|source| bulwark_pki::Error::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
    let jwks: Jwks = serde_json::from_slice(&bytes).map_err(|e| bulwark_pki::Error::Corrupt {
        path,
        reason: e.to_string(),
    })?;
    let longest = cfg.pki.token_ttl.max(cfg.pki.access_token_ttl);
    bulwark_pki::jwt::verify(
        token,
        &jwks,
        time::OffsetDateTime::now_utc(),
        &VerifyOptions::new(longest).audience(&cfg.pki.audience),
    )
    .map_err(RotationError::NewKeyUnverified)?;
    ctx.step(
        "verified",
        "no Temporal address configured: a token signed by the new key verifies against the published jwks.json",
    )
    .await;
    Ok(())
}

pub async fn rotate(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    start(&state, &session, &form, |_, _| Ok(RotateJwt)).await
}
