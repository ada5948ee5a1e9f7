//! Rotations. Each is a confirmable POST form carrying the session's CSRF token.
//!
//! Certificate, token, JWT key and CA rotations run as [`Job`]s (progress on a page, state in
//! the database); OAuth secret and stored credential rotations answer at once because their
//! result page is the only place the new secret is ever shown.
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

use std::{collections::HashMap, path::Path};

use axum::{
    Form,
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
};
use bulwark_pki::{
    Mode,
    fs::{PUBLIC_MODE, PendingFile, SECRET_MODE},
    jwt::{Jwks, SigningKey, VerifyOptions},
    layout,
    lock::DirLock,
    manifest::{ItemKind, MANIFEST_FILE, Manifest, RetiredKey},
};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{
    AdminError, AdminState,
    audit::{self, Outcome},
    auth::Session,
    inventory::{fmt_time, read_manifest},
    jobs::{Job, JobKind, JobState},
    probe, render,
};

/// The next JWT signing key while it is published but not yet signing.
pub const JWT_NEXT: &str = "temporal-jwt-next.key";

const TOKEN_IDS: [&str; 3] = ["system-token", "worker-token", "client-token"];

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or_default()
}

/// Actions need the confirmation box ticked (the form marks it required, the server checks).
fn confirmed(form: &HashMap<String, String>) -> Result<(), AdminError> {
    if field(form, "confirm") == "yes" {
        Ok(())
    } else {
        Err(AdminError::BadRequest(
            "tick the confirmation box to go ahead".into(),
        ))
    }
}

fn job_redirect(job: &Job) -> Response {
    Redirect::to(&format!("/admin/jobs/{}", job.id)).into_response()
}

/// Run `pki::generate` on the blocking pool, holding the certs-directory lock.
pub(crate) async fn pki_generate(
    state: &AdminState,
    ids: Option<Vec<String>>,
) -> Result<bulwark_pki::Report, String> {
    let _guard = state.pki_lock.lock().await;
    pki_generate_locked(state, ids).await
}

async fn pki_generate_locked(
    state: &AdminState,
    ids: Option<Vec<String>>,
) -> Result<bulwark_pki::Report, String> {
    let dir = state.cfg.certs_dir.clone();
    let settings = state.cfg.pki.clone();
    tokio::task::spawn_blocking(move || {
        let now = OffsetDateTime::now_utc();
        match &ids {
            Some(ids) => bulwark_pki::generate(&dir, &settings, Mode::Rotate(ids), now),
            None => bulwark_pki::generate(&dir, &settings, Mode::Missing, now),
        }
    })
    .await
    .map_err(|e| format!("rotation task failed: {e}"))?
    .map_err(|e| e.to_string())
}

fn entry_ident(m: &Manifest, id: &str) -> String {
    m.get(id)
        .map(|e| e.kid.clone().unwrap_or_else(|| e.fingerprint.clone()))
        .unwrap_or_else(|| "-".into())
}

// ---------------------------------------------------------------------------------------
// Confirmation page (GET): every action button leads here first.

#[derive(askama::Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    user: String,
    csrf: String,
    action: String,
    target: String,
    title: String,
    explanation: String,
    post_to: String,
    extra_fields: bool,
    default_grace_hours: i64,
}

pub async fn confirm(
    State(state): State<AdminState>,
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    let action = field(&q, "action").to_owned();
    let target = field(&q, "target").to_owned();
    let propagation = humantime_secs(state.cfg.jwks_propagation);
    let (title, explanation, post_to, extra) = match action.as_str() {
        "cert" => (
            format!("Rotate the certificate {target}"),
            "A new key and certificate are issued and written atomically; services reload them on their refresh interval. For temporal-server the page then waits until a fresh TLS handshake shows the new fingerprint. The previous certificate stays valid until it expires.".to_owned(),
            "/admin/rotate/cert",
            false,
        ),
        "tokens" => (
            "Re-issue the static tokens".to_owned(),
            "system-token.jwt, worker-token.jwt and client-token.jwt (and the CLI profiles) are signed again with the current key. Tokens already handed out stay valid until they expire.".to_owned(),
            "/admin/rotate/tokens",
            false,
        ),
        "jwt" => (
            "Rotate the JWT signing key".to_owned(),
            format!("A new key is generated and published in jwks.json while the current key keeps signing. After {propagation} (Temporal's JWKS refresh) a token signed by the new key is checked; only then does the new key start signing and the static tokens are re-issued. The old public key stays in the JWKS until every token it signed has expired."),
            "/admin/rotate/jwt",
            false,
        ),
        "revoke-jwt" => (
            "Revoke the JWT signing key now (emergency)".to_owned(),
            format!("Use this when the signing key may be compromised. A new key is generated and signs at once; jwks.json then holds only the new key: the current key and every retired key still published are removed immediately, with no overlap, because any of them may be in the wrong hands. The static tokens and CLI profiles are re-issued with the new key. Every token signed earlier stops working: Temporal refuses them after its JWKS refresh (about {propagation}), Bulwark services at once; bulwark-api and the workers notice their token's key is gone and fetch a new token without a restart. Anyone holding an old static token needs the new one."),
            "/admin/revoke/jwt",
            false,
        ),
        "ca" => (
            format!("Rotate the issuing CA {target}"),
            "A new CA is issued and every certificate it signs is re-issued. The trust bundle holds the old and the new CA (overlap) until you end the overlap on the job page, once every service has reloaded.".to_owned(),
            "/admin/rotate/ca",
            false,
        ),
        "oauth" => (
            format!("Rotate the OAuth client secret of {target}"),
            "A new secret version is issued and shown once on the next page. Earlier secrets keep working for the grace window below, then stop.".to_owned(),
            "/admin/rotate/oauth",
            true,
        ),
        "credential" => (
            format!("Rotate the stored credential {target}"),
            "A new version of the credential is written to the encrypted store; readers get it on their next resolution. Leave the value empty to generate a random one (shown once).".to_owned(),
            "/admin/rotate/credential",
            true,
        ),
        _ => return Err(AdminError::NotFound),
    };
    render(&ConfirmPage {
        user: session.username,
        csrf: session.csrf,
        action,
        target,
        title,
        explanation,
        post_to: post_to.to_owned(),
        extra_fields: extra,
        default_grace_hours: state.cfg.oauth_grace.whole_hours(),
    })
}

fn humantime_secs(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------
// Certificates

fn leaf_cert_ids(state: &AdminState) -> Vec<String> {
    layout::cert_specs(&state.cfg.pki)
        .into_iter()
        .filter(|s| s.is_leaf())
        .map(|s| s.id)
        .collect()
}

pub async fn rotate_cert(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    confirmed(&form)?;
    let target = field(&form, "target").to_owned();
    if !leaf_cert_ids(&state).contains(&target) {
        return Err(AdminError::BadRequest(format!(
            "{target:?} is not a leaf certificate of this appliance"
        )));
    }
    let job = Job::create(&state.pool, JobKind::RotateCert, &target, &session.username).await?;
    let st = state.clone();
    let j = job.clone();
    tokio::spawn(async move { run_rotate_cert(st, j, target, session).await });
    Ok(job_redirect(&job))
}

async fn run_rotate_cert(state: AdminState, job: Job, target: String, session: Session) {
    let before = read_manifest(&state.cfg.certs_dir)
        .map(|m| entry_ident(&m, &target))
        .unwrap_or_default();
    job.step("issue", &format!("current fingerprint {before}"))
        .await;
    let result = rotate_cert_steps(&state, &job, &target, &before).await;
    finish(&state, &job, &session, "rotate-cert", &target, result).await;
}

async fn rotate_cert_steps(
    state: &AdminState,
    job: &Job,
    target: &str,
    before: &str,
) -> Result<String, String> {
    let report = pki_generate(state, Some(vec![target.to_owned()])).await?;
    let m = read_manifest(&state.cfg.certs_dir)?;
    let after = entry_ident(&m, target);
    let changed: Vec<&str> = report.changes.iter().map(|c| c.id.as_str()).collect();
    job.step(
        "issued",
        &format!("new fingerprint {after} (changed: {})", changed.join(", ")),
    )
    .await;
    if target == "temporal-server" {
        verify_server_fingerprint(state, job, &after).await?;
    }
    Ok(format!("fingerprint {before} -> {after}"))
}

/// Poll fresh handshakes to Temporal until the leaf shows `expected`.
async fn verify_server_fingerprint(
    state: &AdminState,
    job: &Job,
    expected: &str,
) -> Result<(), String> {
    let Some(target) = &state.cfg.temporal else {
        job.step(
            "verify",
            "propagation check skipped: no Temporal address configured",
        )
        .await;
        return Ok(());
    };
    job.step(
        "propagating",
        &format!(
            "waiting for {} to present the new certificate (up to {}s)",
            target.address,
            state.cfg.cert_propagation_timeout.as_secs()
        ),
    )
    .await;
    let deadline = tokio::time::Instant::now() + state.cfg.cert_propagation_timeout;
    let mut last;
    loop {
        match probe::server_fingerprint(target, &state.cfg.certs_dir).await {
            Ok(fp) if fp == expected => {
                job.step(
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
            return Err(format!(
                "the new certificate was not observed on {} within {}s ({last}); the previous certificate remains valid, so nothing is broken; retry the check by rotating again or wait for the server's refresh",
                target.address,
                state.cfg.cert_propagation_timeout.as_secs()
            ));
        }
        tokio::time::sleep(state.cfg.poll_interval).await;
    }
}

/// Record a job's outcome in the job row and the audit log.
async fn finish(
    state: &AdminState,
    job: &Job,
    session: &Session,
    action: &str,
    target: &str,
    result: Result<String, String>,
) {
    match result {
        Ok(detail) => {
            job.step("done", &detail).await;
            job.set_state(JobState::Succeeded, None).await;
            audit::record(
                &state.pool,
                &session.username,
                action,
                target,
                Outcome::Success,
                &detail,
                &session.address,
            )
            .await;
        }
        Err(reason) => {
            tracing::warn!(job = %job.id, action, target, reason = %reason, "rotation failed");
            job.step("failed", &reason).await;
            job.set_state(JobState::Failed, Some(&reason)).await;
            audit::record(
                &state.pool,
                &session.username,
                action,
                target,
                Outcome::Failure,
                &reason,
                &session.address,
            )
            .await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Static tokens

pub async fn rotate_tokens(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    confirmed(&form)?;
    let job = Job::create(
        &state.pool,
        JobKind::ReissueTokens,
        "static tokens",
        &session.username,
    )
    .await?;
    let st = state.clone();
    let j = job.clone();
    tokio::spawn(async move {
        let ids: Vec<String> = TOKEN_IDS.iter().map(|s| (*s).to_owned()).collect();
        let result = pki_generate(&st, Some(ids)).await.and_then(|_| {
            let m = read_manifest(&st.cfg.certs_dir)?;
            Ok(TOKEN_IDS
                .iter()
                .map(|id| {
                    let g = m.get(id).map(|e| e.generation).unwrap_or_default();
                    format!("{id} generation {g}")
                })
                .collect::<Vec<_>>()
                .join(", "))
        });
        finish(&st, &j, &session, "reissue-tokens", "static tokens", result).await;
    });
    Ok(job_redirect(&job))
}

// ---------------------------------------------------------------------------------------
// JWT signing key: publish, wait, verify, switch, retire later.

pub async fn rotate_jwt(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    confirmed(&form)?;
    let job = Job::create(
        &state.pool,
        JobKind::RotateJwtKey,
        layout::JWT_KEY_ID,
        &session.username,
    )
    .await?;
    let st = state.clone();
    let j = job.clone();
    tokio::spawn(async move {
        let result = rotate_jwt_steps(&st, &j).await;
        finish(
            &st,
            &j,
            &session,
            "rotate-jwt-key",
            layout::JWT_KEY_ID,
            result,
        )
        .await;
    });
    Ok(job_redirect(&job))
}

fn jwks_json(current: &SigningKey, retired: &[RetiredKey]) -> Vec<u8> {
    let jwks = Jwks {
        keys: std::iter::once(current.jwk().clone())
            .chain(
                retired
                    .iter()
                    .filter(|r| r.jwk.kid != current.kid())
                    .map(|r| r.jwk.clone()),
            )
            .collect(),
    };
    let mut v = serde_json::to_vec_pretty(&jwks).unwrap_or_default();
    v.push(b'\n');
    v
}

fn read_key(path: &Path) -> Result<SigningKey, String> {
    let pem = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?,
    );
    SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

fn secret_file(name: &str, contents: Vec<u8>) -> PendingFile {
    PendingFile {
        name: name.into(),
        contents: Zeroizing::new(contents),
        mode: SECRET_MODE,
    }
}

fn public_file(name: &str, contents: Vec<u8>) -> PendingFile {
    PendingFile {
        name: name.into(),
        contents: Zeroizing::new(contents),
        mode: PUBLIC_MODE,
    }
}

/// Stage 1: make sure a next key exists and is published in jwks.json. It is recorded in
/// the manifest's retired keys (with a horizon) so any later `generate` keeps publishing it.
/// Resumable: an existing next key (from an interrupted run) is reused.
fn publish_next_key(
    dir: &Path,
    settings: &bulwark_pki::Settings,
) -> Result<(SigningKey, SigningKey), String> {
    let _lock = DirLock::acquire(dir).map_err(|e| e.to_string())?;
    let current = read_key(&dir.join(layout::JWT_PRIVATE))?;
    let next_path = dir.join(JWT_NEXT);
    let next = if next_path.exists() {
        read_key(&next_path)?
    } else {
        SigningKey::generate(settings.jwt_algorithm).map_err(|e| e.to_string())?
    };
    let mut m = read_manifest(dir)?;
    let now = OffsetDateTime::now_utc();
    m.retired_keys.retain(|k| k.jwk.kid != next.kid());
    m.retired_keys.push(RetiredKey {
        jwk: next.jwk().clone(),
        // Publication horizon for a key that never started signing; a later run that
        // switches to it removes this entry.
        retire_after: now + time::Duration::days(1),
    });
    bulwark_pki::fs::write_all(
        dir,
        &[
            secret_file(JWT_NEXT, next.private_pem().expose().as_bytes().to_vec()),
            public_file(layout::JWKS, jwks_json(&current, &m.retired_keys)),
            public_file(MANIFEST_FILE, m.to_json()),
        ],
    )
    .map_err(|e| e.to_string())?;
    Ok((current, next))
}

/// Stage 3: the next key signs; the old one is retired after the longest token lifetime.
fn switch_to_next(
    lock: &DirLock,
    settings: &bulwark_pki::Settings,
    old: &SigningKey,
    next: &SigningKey,
    retire_after: OffsetDateTime,
) -> Result<(), String> {
    let dir = lock.dir();
    // A revoke while this rotation waited replaced the key and unpublished `old` and `next`;
    // switching now would publish them again.
    let current = read_key(&dir.join(layout::JWT_PRIVATE))?;
    if current.kid() != old.kid() || !dir.join(JWT_NEXT).exists() {
        return Err(format!(
            "the signing key changed while this rotation waited (kid {} signs now, e.g. after a revoke); nothing was switched",
            current.kid()
        ));
    }
    let mut m = read_manifest(dir)?;
    let now = OffsetDateTime::now_utc();
    m.retired_keys
        .retain(|k| k.jwk.kid != next.kid() && k.jwk.kid != old.kid() && k.retire_after > now);
    m.retired_keys.push(RetiredKey {
        jwk: old.jwk().clone(),
        retire_after,
    });
    let entry = m
        .items
        .iter_mut()
        .find(|e| e.id == layout::JWT_KEY_ID)
        .ok_or("manifest.json has no jwt-key entry")?;
    entry.kid = Some(next.kid().to_owned());
    entry.fingerprint = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(next.public_pem().as_bytes()))
    };
    entry.generation += 1;
    entry.rotated_at = Some(now);
    entry.not_before = Some(now);
    entry.not_after = Some(now + settings.jwt_key_lifetime);
    bulwark_pki::fs::write_all(
        dir,
        &[
            secret_file(
                layout::JWT_PRIVATE,
                next.private_pem().expose().as_bytes().to_vec(),
            ),
            public_file(layout::JWT_PUBLIC, next.public_pem().as_bytes().to_vec()),
            public_file(layout::JWKS, jwks_json(next, &m.retired_keys)),
            public_file(MANIFEST_FILE, m.to_json()),
        ],
    )
    .map_err(|e| e.to_string())?;
    std::fs::remove_file(dir.join(JWT_NEXT)).map_err(|e| format!("removing {JWT_NEXT}: {e}"))?;
    Ok(())
}

pub(crate) async fn rotate_jwt_steps(state: &AdminState, job: &Job) -> Result<String, String> {
    let dir = state.cfg.certs_dir.clone();
    let settings = state.cfg.pki.clone();
    let (old, next) = {
        let _guard = state.pki_lock.lock().await;
        let (d, s) = (dir.clone(), settings.clone());
        tokio::task::spawn_blocking(move || publish_next_key(&d, &s))
            .await
            .map_err(|e| e.to_string())??
    };
    job.step(
        "published",
        &format!(
            "new key kid {} published in jwks.json beside kid {} (which still signs)",
            next.kid(),
            old.kid()
        ),
    )
    .await;

    job.step(
        "propagating",
        &format!(
            "waiting {}s for Temporal's JWKS refresh",
            state.cfg.jwks_propagation.as_secs_f64()
        ),
    )
    .await;
    tokio::time::sleep(state.cfg.jwks_propagation).await;

    let token = next
        .sign(&probe::probe_claims(
            &settings,
            state
                .cfg
                .temporal
                .as_ref()
                .map(|t| t.namespace.as_str())
                .unwrap_or("default"),
        ))
        .map_err(|e| e.to_string())?;
    match &state.cfg.temporal {
        Some(target) => {
            let deadline = tokio::time::Instant::now() + state.cfg.jwks_propagation * 3;
            loop {
                match probe::token_accepted(target, &dir, &token).await {
                    Ok(true) => break,
                    Ok(false) if tokio::time::Instant::now() < deadline => {}
                    Ok(false) => {
                        return Err(format!(
                            "Temporal at {} still refuses tokens signed by kid {}; the old key keeps signing; retry later (the new key stays published)",
                            target.address,
                            next.kid()
                        ));
                    }
                    Err(e) if tokio::time::Instant::now() < deadline => {
                        tracing::debug!(error = %e, "probe failed; retrying");
                    }
                    Err(e) => {
                        return Err(format!(
                            "could not check the new key against Temporal ({e}); the old key keeps signing; retry later"
                        ));
                    }
                }
                tokio::time::sleep(state.cfg.poll_interval).await;
            }
            job.step(
                "verified",
                &format!(
                    "Temporal at {} accepted a token signed by kid {}",
                    target.address,
                    next.kid()
                ),
            )
            .await;
        }
        None => {
            let bytes = tokio::fs::read(dir.join(layout::JWKS))
                .await
                .map_err(|e| format!("reading jwks.json: {e}"))?;
            let jwks: Jwks =
                serde_json::from_slice(&bytes).map_err(|e| format!("parsing jwks.json: {e}"))?;
            bulwark_pki::jwt::verify(
                &token,
                &jwks,
                OffsetDateTime::now_utc(),
                &VerifyOptions::new(settings.token_ttl.max(state.cfg.access_token_ttl))
                    .audience(&settings.audience),
            )
            .map_err(|e| format!("a token signed by the new key does not verify against the published jwks.json: {e}"))?;
            job.step(
                "verified",
                "no Temporal address configured: a token signed by the new key verifies against the published jwks.json",
            )
            .await;
        }
    }

    let longest = settings.token_ttl.max(state.cfg.access_token_ttl) + time::Duration::minutes(1);
    let retire_after = OffsetDateTime::now_utc() + longest;
    {
        let _guard = state.pki_lock.lock().await;
        let (d, s, o, n) = (dir.clone(), settings.clone(), old, next);
        // One hold of the directory lock for the switch and the tokens, so bulwark-init never
        // sees the new key beside tokens signed by the old one.
        let switched = tokio::task::spawn_blocking(move || {
            let lock = DirLock::acquire(&d).map_err(|e| e.to_string())?;
            switch_to_next(&lock, &s, &o, &n, retire_after)?;
            let ids: Vec<String> = TOKEN_IDS.iter().map(|s| (*s).to_owned()).collect();
            let tokens = bulwark_pki::generate_locked(
                &lock,
                &s,
                Mode::Rotate(&ids),
                OffsetDateTime::now_utc(),
            )
            .map(|_| ())
            .map_err(|e| e.to_string());
            Ok::<_, String>((o, n, tokens))
        })
        .await;
        // Also when a step after the switch failed: the key on disk may have changed.
        state.reload_signer();
        let (old, next, tokens) = switched.map_err(|e| e.to_string())??;
        job.step(
            "switched",
            &format!(
                "kid {} signs now; kid {} stays in jwks.json until {}",
                next.kid(),
                old.kid(),
                fmt_time(Some(retire_after))
            ),
        )
        .await;
        tokens.map_err(|e| {
            format!("the new key signs, but re-issuing the static tokens failed ({e}); the old tokens stay valid until they expire; use \"Re-issue static tokens\" to retry")
        })?;
        job.step("tokens", "static tokens re-issued with the new key")
            .await;
        Ok(format!(
            "kid {} -> {}; old key retired after {}",
            old.kid(),
            next.kid(),
            fmt_time(Some(retire_after))
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Emergency revoke: new key signs at once, every earlier key leaves the JWKS at once.

pub async fn revoke_jwt(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    confirmed(&form)?;
    let job = Job::create(
        &state.pool,
        JobKind::RevokeJwtKey,
        layout::JWT_KEY_ID,
        &session.username,
    )
    .await?;
    let st = state.clone();
    let j = job.clone();
    tokio::spawn(async move {
        let result = revoke_jwt_steps(&st, &j).await;
        finish(
            &st,
            &j,
            &session,
            "revoke-jwt-key",
            layout::JWT_KEY_ID,
            result,
        )
        .await;
    });
    Ok(job_redirect(&job))
}

/// Revoke under both locks; a pending next key (from a rotation in progress) is discarded
/// too: it lived in the same directory, and a revoke trusts nothing published before it.
fn revoke_now(
    dir: &Path,
    settings: &bulwark_pki::Settings,
    probe_claims: &bulwark_pki::jwt::Claims,
) -> Result<(bulwark_pki::Revocation, Option<String>), String> {
    let lock = DirLock::acquire(dir).map_err(|e| e.to_string())?;
    // A token from the key being revoked, to show afterwards that Temporal refuses it.
    let old_token = read_key(&dir.join(layout::JWT_PRIVATE))
        .ok()
        .and_then(|k| k.sign(probe_claims).ok());
    let revocation = bulwark_pki::revoke_jwt_key_locked(&lock, settings, OffsetDateTime::now_utc())
        .map_err(|e| {
            format!("revoking failed ({e}); nothing was changed, the current key still signs")
        })?;
    match std::fs::remove_file(dir.join(JWT_NEXT)) {
        Ok(()) => tracing::warn!("discarded the pending next JWT key of an unfinished rotation"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "the key is revoked, but removing {JWT_NEXT} failed: {e}"
            ));
        }
    }
    Ok((revocation, old_token))
}

pub(crate) async fn revoke_jwt_steps(state: &AdminState, job: &Job) -> Result<String, String> {
    let dir = state.cfg.certs_dir.clone();
    let settings = state.cfg.pki.clone();
    let namespace = state
        .cfg
        .temporal
        .as_ref()
        .map(|t| t.namespace.clone())
        .unwrap_or_else(|| "default".into());
    let claims = probe::probe_claims(&settings, &namespace);
    let (revocation, old_token) = {
        let _guard = state.pki_lock.lock().await;
        let (d, s, c) = (dir.clone(), settings.clone(), claims.clone());
        let done = tokio::task::spawn_blocking(move || revoke_now(&d, &s, &c)).await;
        // Sign with whatever key is on disk now, not at the next periodic check: also when a
        // later step failed after the key was already replaced.
        state.reload_signer();
        done.map_err(|e| e.to_string())??
    };
    let revoked = revocation.revoked.join(", ");
    job.step(
        "revoked",
        &format!(
            "kid {} signs now and is the only key in jwks.json; removed: {}",
            revocation.kid,
            if revoked.is_empty() { "-" } else { &revoked }
        ),
    )
    .await;
    job.step(
        "tokens",
        "static tokens and CLI profiles re-issued with the new key; bulwark-control's token endpoint signs with it now",
    )
    .await;

    if let (Some(target), Some(old_token)) = (&state.cfg.temporal, old_token) {
        job.step(
            "propagating",
            &format!(
                "waiting for Temporal at {} to refuse the revoked key (its JWKS refresh, up to {}s)",
                target.address,
                (state.cfg.jwks_propagation * 3).as_secs()
            ),
        )
        .await;
        let deadline = tokio::time::Instant::now() + state.cfg.jwks_propagation * 3;
        loop {
            match probe::token_accepted(target, &dir, &old_token).await {
                Ok(false) => break,
                Ok(true) if tokio::time::Instant::now() < deadline => {}
                Ok(true) => {
                    return Err(format!(
                        "the key is revoked on disk, but Temporal at {} still accepts tokens signed by it after {}s; check its JWKS refresh (jwtKeyProvider.refreshInterval)",
                        target.address,
                        (state.cfg.jwks_propagation * 3).as_secs()
                    ));
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "probe failed; retrying");
                }
                Err(e) => {
                    return Err(format!(
                        "the key is revoked on disk, but Temporal could not be checked ({e})"
                    ));
                }
            }
            tokio::time::sleep(state.cfg.poll_interval).await;
        }
        job.step(
            "verified",
            &format!(
                "Temporal at {} refuses tokens signed by the revoked key",
                target.address
            ),
        )
        .await;
    }
    Ok(format!(
        "revoked {}; kid {} signs",
        if revoked.is_empty() { "-" } else { &revoked },
        revocation.kid
    ))
}

// ---------------------------------------------------------------------------------------
// CA rotation with bundle overlap (staged, resumable).

fn issuing_cas() -> [&'static str; 3] {
    [layout::INTERNODE_CA, layout::CLIENT_CA, layout::SERVER_CA]
}

pub async fn rotate_ca(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    confirmed(&form)?;
    let target = field(&form, "target").to_owned();
    if !issuing_cas().contains(&target.as_str()) {
        return Err(AdminError::BadRequest(format!(
            "{target:?} is not an issuing CA; the root CA is rotated from the command line"
        )));
    }
    let job = Job::create(&state.pool, JobKind::RotateCa, &target, &session.username).await?;
    let st = state.clone();
    let j = job.clone();
    tokio::spawn(async move {
        let before = read_manifest(&st.cfg.certs_dir)
            .map(|m| entry_ident(&m, &target))
            .unwrap_or_default();
        j.step("issue", &format!("current CA fingerprint {before}"))
            .await;
        let result = async {
            let report = pki_generate(&st, Some(vec![target.clone()])).await?;
            let m = read_manifest(&st.cfg.certs_dir)?;
            let after = entry_ident(&m, &target);
            let reissued: Vec<String> = report
                .changes
                .iter()
                .filter(|c| c.id != target)
                .map(|c| c.id.clone())
                .collect();
            j.step(
                "overlap",
                &format!(
                    "new CA {after}; trust bundle holds old and new; re-issued: {}",
                    reissued.join(", ")
                ),
            )
            .await;
            if target == layout::SERVER_CA {
                if let Some(e) = m.get("temporal-server") {
                    verify_server_fingerprint(&st, &j, &e.fingerprint).await?;
                }
            }
            Ok::<_, String>(format!("CA {before} -> {after}"))
        }
        .await;
        match result {
            Ok(detail) => {
                j.step(
                    "overlap",
                    "waiting for the operator: end the overlap once every service has reloaded",
                )
                .await;
                j.set_state(JobState::Waiting, None).await;
                audit::record(
                    &st.pool,
                    &session.username,
                    "rotate-ca",
                    &target,
                    Outcome::Started,
                    &format!("{detail}; overlap started"),
                    &session.address,
                )
                .await;
            }
            Err(e) => finish(&st, &j, &session, "rotate-ca", &target, Err(e)).await,
        }
    });
    Ok(job_redirect(&job))
}

/// End a CA overlap: the trust bundle keeps only the current CA.
pub async fn finish_ca(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    confirmed(&form)?;
    let id = Uuid::parse_str(field(&form, "job")).map_err(|_| AdminError::NotFound)?;
    let view = super::jobs::get(&state.pool, id)
        .await?
        .ok_or(AdminError::NotFound)?;
    if view.kind != JobKind::RotateCa || view.state != JobState::Waiting {
        return Err(AdminError::BadRequest(
            "this job is not waiting to end a CA overlap".into(),
        ));
    }
    let job = Job::open(&state.pool, id);
    job.set_state(JobState::Running, None).await;
    let target = view.target.clone();
    let result = async {
        let _guard = state.pki_lock.lock().await;
        let dir = state.cfg.certs_dir.clone();
        let settings = state.cfg.pki.clone();
        let t = target.clone();
        tokio::task::spawn_blocking(move || {
            let lock = DirLock::acquire(&dir).map_err(|e| e.to_string())?;
            trim_bundle(lock.dir(), &t)?;
            bulwark_pki::generate_locked(&lock, &settings, Mode::Missing, OffsetDateTime::now_utc())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok::<_, String>(format!(
            "overlap ended: {target}'s trust bundle holds only the new CA"
        ))
    }
    .await;
    finish(&state, &job, &session, "rotate-ca-finish", &target, result).await;
    Ok(job_redirect(&job))
}

fn trim_bundle(dir: &Path, ca_id: &str) -> Result<(), String> {
    let Some((_, file, _)) = layout::BUNDLES.iter().find(|b| b.2 == ca_id) else {
        // The server CA has no bundle of its own: clients trust the root.
        return Ok(());
    };
    let m = read_manifest(dir)?;
    let current = m
        .get(ca_id)
        .ok_or_else(|| format!("{ca_id} missing from manifest.json"))?
        .fingerprint
        .clone();
    let path = dir.join(file);
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {file}: {e}"))?;
    let certs = bulwark_pki::cert::parse_pem_chain(&bytes, &path).map_err(|e| e.to_string())?;
    let keep: String = certs
        .iter()
        .filter(|c| c.fingerprint == current)
        .map(|c| bulwark_pki::cert::pem_cert(&c.der))
        .collect();
    if keep.is_empty() {
        return Err(format!(
            "{file} does not contain the current {ca_id}; not changing it"
        ));
    }
    bulwark_pki::fs::write_all(dir, &[public_file(file, keep.into_bytes())])
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// OAuth client secrets and stored credentials: the new secret is shown exactly once.

#[derive(askama::Template)]
#[template(path = "secret.html")]
struct SecretPage {
    user: String,
    csrf: String,
    title: String,
    what: String,
    secret: String,
    notes: Vec<String>,
}

fn one_time(page: &SecretPage) -> Result<Response, AdminError> {
    // The page itself is `no-store` (admin middleware) so the secret is not cached.
    render(page)
}

pub async fn rotate_oauth(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    confirmed(&form)?;
    let client = field(&form, "target").to_owned();
    let grace = match field(&form, "grace_hours").trim() {
        "" => state.cfg.oauth_grace,
        h => {
            let hours: i64 = h
                .parse()
                .ok()
                .filter(|h| (0..=24 * 30).contains(h))
                .ok_or_else(|| AdminError::BadRequest("grace must be 0-720 hours".into()))?;
            time::Duration::hours(hours)
        }
    };
    let (version, secret) = match state.clients.rotate_secret(&client, grace).await {
        Ok(v) => v,
        Err(e) => {
            let reason = match e {
                bulwark_oauth::Error::UnknownClient(_) => format!("unknown client {client:?}"),
                other => {
                    tracing::error!(error = %other, "OAuth secret rotation failed");
                    "the database refused the change; the previous secret is unchanged".into()
                }
            };
            audit::record(
                &state.pool,
                &session.username,
                "rotate-oauth-secret",
                &client,
                Outcome::Failure,
                &reason,
                &session.address,
            )
            .await;
            return Err(AdminError::BadRequest(reason));
        }
    };
    let grace_end = OffsetDateTime::now_utc() + grace;
    let mut notes = vec![format!(
        "Earlier secrets of {client} keep working until {}.",
        fmt_time(Some(grace_end))
    )];
    if let Some(dir) = &state.cfg.deployment_secrets_dir {
        let path = dir.join(bulwark_oauth::deployment_secrets_file(&client));
        match write_deployment_secret(&path, &client, secret.expose()) {
            Ok(true) => notes.push(format!(
                "Written to the deployment secret store ({}) as {client}_client_secret; services re-read it on their next token refresh.",
                path.display()
            )),
            Ok(false) => notes.push(format!(
                "{client} is not in the deployment secret store; hand the secret to its consumer before the grace window ends."
            )),
            Err(e) => {
                tracing::error!(error = %e, "updating the deployment secret store failed");
                notes.push("Updating the deployment secret store FAILED; hand the secret to the consumer yourself before the grace window ends.".into());
            }
        }
    }
    let detail = format!(
        "version {version}; previous versions valid until {}",
        fmt_time(Some(grace_end))
    );
    audit::record(
        &state.pool,
        &session.username,
        "rotate-oauth-secret",
        &client,
        Outcome::Success,
        &detail,
        &session.address,
    )
    .await;
    one_time(&SecretPage {
        user: session.username,
        csrf: session.csrf,
        title: format!("New secret for OAuth client {client}"),
        what: format!("client {client}, secret version {version}"),
        secret: secret.expose().to_owned(),
        notes,
    })
}

/// Replace `<client>_client_secret` in a deployment secret store file, atomically and 0600.
/// Returns false when the file does not hold that client.
fn write_deployment_secret(path: &Path, client: &str, secret: &str) -> Result<bool, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.to_string()),
    };
    let mut doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|e| format!("not a JSON object: {e}"))?;
    let key = format!("{client}_client_secret");
    if !doc.contains_key(&key) {
        return Ok(false);
    }
    doc.insert(key, serde_json::Value::String(secret.to_owned()));
    let out = Zeroizing::new(serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?);
    let dir = path.parent().ok_or("no parent directory")?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("bad file name")?;
    bulwark_pki::fs::write_all(dir, &[secret_file(name, out.to_vec())])
        .map_err(|e| e.to_string())?;
    Ok(true)
}

pub async fn rotate_credential(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    session.check_csrf(&form)?;
    confirmed(&form)?;
    let Some(store) = &state.secrets else {
        return Err(AdminError::BadRequest(
            "no Postgres secret store is configured".into(),
        ));
    };
    let name = field(&form, "target").to_owned();
    let field_name = field(&form, "field").trim().to_owned();
    let provided = Zeroizing::new(field(&form, "value").to_owned());
    let fail = |reason: String| {
        let (st, s, n) = (state.clone(), session.clone(), name.clone());
        async move {
            audit::record(
                &st.pool,
                &s.username,
                "rotate-credential",
                &n,
                Outcome::Failure,
                &reason,
                &s.address,
            )
            .await;
            AdminError::BadRequest(reason)
        }
    };
    let current = match store.get_latest(&name).await {
        Ok(Some((_, map))) => map,
        Ok(None) => return Err(fail(format!("no stored credential named {name:?}")).await),
        Err(e) => return Err(fail(format!("reading {name:?}: {e}")).await),
    };
    if field_name.is_empty() || !current.contains_key(&field_name) {
        let fields: Vec<&str> = current.keys().map(String::as_str).collect();
        return Err(fail(format!(
            "choose one of the fields of {name:?}: {}",
            fields.join(", ")
        ))
        .await);
    }
    let generated = provided.is_empty();
    let value = if generated {
        super::auth::random_token()?
    } else {
        provided.to_string()
    };
    let mut next = current.clone();
    next.insert(
        field_name.clone(),
        bulwark_secrets::Secret::new(value.clone()),
    );
    let version = match store.put_version(&name, &next).await {
        Ok(v) => v,
        Err(e) => return Err(fail(format!("writing a new version of {name:?}: {e}")).await),
    };
    let detail = format!("field {field_name}; version {version}");
    audit::record(
        &state.pool,
        &session.username,
        "rotate-credential",
        &name,
        Outcome::Success,
        &detail,
        &session.address,
    )
    .await;
    one_time(&SecretPage {
        user: session.username,
        csrf: session.csrf,
        title: format!("New version of {name}"),
        what: format!("{name}, field {field_name}, version {version}"),
        secret: if generated { value } else { String::new() },
        notes: vec![if generated {
            "The generated value is shown once. Update the system that checks it (e.g. the database user's password) to match.".into()
        } else {
            "The value you entered is stored; it is not shown again.".into()
        }],
    })
}

/// Entry kind of a manifest item (for tests and the renewal task).
pub fn kind_of(m: &Manifest, id: &str) -> Option<ItemKind> {
    m.get(id).map(|e| e.kind)
}
