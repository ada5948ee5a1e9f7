//! Automatic renewal: every `renew_interval`, renew what has reached its renewal point
//! (`BULWARK_RENEW_AT` of its lifetime, default 2/3) and record it in the audit log.
//!
//! The JWT signing key is never renewed by a plain `generate` (which would switch keys at
//! once): when it is due, the staged rotation runs first (publish, wait, verify, switch).

use bulwark_pki::manifest::Status;
use time::OffsetDateTime;

use super::{
    AdminState,
    actions::{pki_generate, rotate_jwt_steps},
    audit::{self, Outcome},
    inventory::read_manifest,
    jobs::{Job, JobState},
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
    let now = OffsetDateTime::now_utc();
    let fraction = state.cfg.pki.renew_fraction();
    let jwt_due = read_manifest(&state.cfg.certs_dir)
        .ok()
        .and_then(|m| {
            m.get(bulwark_pki::layout::JWT_KEY_ID)
                .map(|e| e.status(now, fraction))
        })
        .is_some_and(|s| s != Status::Valid);
    if jwt_due {
        match Job::create(
            &state.pool,
            super::jobs::JobKind::RotateJwtKey,
            "jwt-key",
            ACTOR,
        )
        .await
        {
            Ok(job) => {
                let r = rotate_jwt_steps(state, &job).await;
                let (outcome, detail) = match &r {
                    Ok(d) => (Outcome::Success, d.clone()),
                    Err(e) => (Outcome::Failure, e.clone()),
                };
                job.step(if r.is_ok() { "done" } else { "failed" }, &detail)
                    .await;
                job.set_state(
                    if r.is_ok() {
                        JobState::Succeeded
                    } else {
                        JobState::Failed
                    },
                    r.as_ref().err().map(String::as_str),
                )
                .await;
                audit::record(
                    &state.pool,
                    ACTOR,
                    "rotate-jwt-key",
                    "jwt-key",
                    outcome,
                    &detail,
                    "",
                )
                .await;
                if r.is_err() {
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
    let generated = pki_generate(state, None).await;
    // generate may have re-issued the JWT key itself (e.g. a changed algorithm).
    state.reload_signer();
    match generated {
        Ok(report) if report.changes.is_empty() => Vec::new(),
        Ok(report) => {
            let ids: Vec<String> = report.changes.iter().map(|c| c.id.clone()).collect();
            let m = read_manifest(&state.cfg.certs_dir).ok();
            for c in &report.changes {
                let ident = m
                    .as_ref()
                    .and_then(|m| m.get(&c.id))
                    .map(|e| e.kid.clone().unwrap_or_else(|| e.fingerprint.clone()))
                    .unwrap_or_default();
                audit::record(
                    &state.pool,
                    ACTOR,
                    "renew",
                    &c.id,
                    Outcome::Success,
                    &format!("{}; now {ident}", c.reason),
                    "",
                )
                .await;
            }
            ids
        }
        Err(e) => {
            tracing::error!(error = %e, "automatic renewal failed; the current material stays in service");
            audit::record(&state.pool, ACTOR, "renew", "", Outcome::Failure, &e, "").await;
            Vec::new()
        }
    }
}
