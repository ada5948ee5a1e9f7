//! Propagation checks on the Temporal frontend, polled until they pass or time out.

use super::{Ctx, RotationError};
use crate::admin::probe::{self, ProbeError};

/// Poll fresh handshakes to Temporal until the leaf shows `expected`.
pub(crate) async fn server_shows(ctx: &Ctx, expected: &str) -> Result<(), RotationError> {
    let cfg = &ctx.state.cfg;
    let Some(target) = &cfg.temporal else {
        ctx.step(
            "verify",
            "propagation check skipped: no Temporal address configured",
        )
        .await;
        return Ok(());
    };
    let timeout = cfg.cert_propagation_timeout;
    ctx.step(
        "propagating",
        &format!(
            "waiting for {} to present the new certificate (up to {}s)",
            target.address,
            timeout.as_secs()
        ),
    )
    .await;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last;
    loop {
        match probe::server_fingerprint(target, &cfg.certs_dir).await {
            Ok(fp) if fp == expected => {
                ctx.step(
                    "verified",
                    &format!("a fresh handshake to {} shows {fp}", target.address),
                )
                .await;
                return Ok(());
            }
            Ok(fp) => last = format!("still presenting {fp}"),
            Err(e) => last = e.to_string(),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RotationError::CertNotObserved {
                address: target.address.clone(),
                waited_secs: timeout.as_secs(),
                last,
            });
        }
        tokio::time::sleep(cfg.poll_interval).await;
    }
}

/// Why [`token_answer`] gave up.
pub(crate) enum Unanswered {
    /// Temporal kept giving the other answer until the deadline.
    Stayed,
    /// The last probe failed at the deadline.
    Probe(ProbeError),
}

/// Poll Temporal with `token` until its acceptance is `want`, for up to three JWKS refreshes.
pub(crate) async fn token_answer(
    ctx: &Ctx,
    target: &crate::admin::TemporalTarget,
    token: &str,
    want: bool,
) -> Result<(), Unanswered> {
    let cfg = &ctx.state.cfg;
    let deadline = tokio::time::Instant::now() + cfg.jwks_propagation * 3;
    loop {
        let answer = probe::token_accepted(target, &cfg.certs_dir, token).await;
        let late = tokio::time::Instant::now() >= deadline;
        match answer {
            Ok(got) if got == want => return Ok(()),
            Ok(_) if late => return Err(Unanswered::Stayed),
            Err(e) if late => return Err(Unanswered::Probe(e)),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "probe failed; retrying"),
        }
        tokio::time::sleep(cfg.poll_interval).await;
    }
}
