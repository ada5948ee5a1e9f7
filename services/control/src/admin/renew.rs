//! Automatic renewal: every `renew_interval`, renew what has reached its renewal point
//! (`BULWARK_RENEW_AT` of its lifetime, default 2/3) and record it in the audit log.
//!
//! The JWT signing key is never renewed by a plain `generate` (which would switch keys at
//! once): when it is due, the staged rotation runs first (publish, wait, verify, switch), as
//! a job of the same runner the page uses.

use bulwark_pki::{layout, manifest::Status, rotate::reissue};

use super::{
    AdminState,
    audit::{Action, Outcome},
    inventory::read_manifest,
    jobs::{Job, JobState},
    rotate::{self, Actor, Ctx, Operation, jwt::RotateJwt},
};

pub const ACTOR: &str = "auto-renew";

pub fn spawn(state: AdminState) {
    let Some(every) = state.cfg.renew_interval else {
        tracing::info!("automatic renewal disabled");
        return;
    };
    tokio::spawn(async move {
        loop {
            run_once(&state).await;
            tokio::time::sleep(every).await;
        }
    });
}

/// One renewal pass. Returns the ids of renewed items.
pub async fn run_once(state: &AdminState) -> Vec<String> {
    let now = state.clock.now();
    let fraction = state.cfg.pki.renew_fraction();
    let actor = Actor::background(ACTOR);
    let jwt_due = read_manifest(&state.cfg.certs_dir)
        .ok()
        .and_then(|m| m.get(layout::JWT_KEY_ID).map(|e| e.status(now, fraction)))
        .is_some_and(|s| s != Status::Valid);
    if jwt_due {
        let op = RotateJwt;
        match Job::create(&state.pool, op.kind(), op.target(), &actor.name).await {
            Ok(job) => {
                let ctx = Ctx {
                    state: state.clone(),
                    job,
                };
                if rotate::execute(&ctx, &actor, &op).await != JobState::Succeeded {
                    // Do not let `generate` switch the key unstaged; try again next pass.
                    return Vec::new();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "automatic renewal: cannot record the JWT job");
                return Vec::new();
            }
        }
    }
    let generated = rotate::locked(state, |lock, settings, clock| {
        Ok(reissue::due(lock, settings, clock)?)
    })
    .await;
    // generate may have re-issued the JWT key itself (e.g. a changed algorithm).
    state.reload_signer();
    match generated {
        Ok(report) if report.changes.is_empty() => Vec::new(),
        Ok(report) => {
            let m = read_manifest(&state.cfg.certs_dir).ok();
            for c in &report.changes {
                let ident = m
                    .as_ref()
                    .filter(|m| m.get(&c.id).is_some())
                    .map(|m| rotate::ident(m, &c.id))
                    .unwrap_or_default();
                let detail = format!("{}; now {ident}", c.reason);
                actor
                    .entry(Action::Renew, &c.id, Outcome::Success, &detail)
                    .record(&state.pool)
                    .await;
            }
            report.changes.into_iter().map(|c| c.id).collect()
        }
        Err(e) => {
            tracing::error!(error = %e, "automatic renewal failed; the current material stays in service");
            let reason = e.to_string();
            actor
                .entry(Action::Renew, "", Outcome::Failure, &reason)
                .record(&state.pool)
                .await;
            Vec::new()
        }
    }
}
