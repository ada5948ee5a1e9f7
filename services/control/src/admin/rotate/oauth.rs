//! An OAuth client secret: a new version, shown once; earlier versions keep working for the
//! grace window. When configured, the client's deployment secret store file is updated too
//! (not PKI: a JSON document the consuming service re-reads).

use std::path::Path;

use axum::{Form, extract::State, response::Response};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{Actor, Fields, RotationError, SecretPage, field, guard, one_time};
use crate::admin::{
    AdminError, AdminState,
    audit::{Action, Outcome},
    auth::Session,
    inventory::fmt_time,
};

fn grace(state: &AdminState, form: &Fields) -> Result<time::Duration, AdminError> {
    match field(form, "grace_hours").trim() {
        "" => Ok(state.cfg.oauth_grace),
        h => h
            .parse()
            .ok()
            .filter(|h| (0..=24 * 30).contains(h))
            .map(time::Duration::hours)
            .ok_or_else(|| AdminError::BadRequest("grace must be 0-720 hours".into())),
    }
}

pub async fn rotate(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    guard(&session, &form)?;
    let client = field(&form, "target").to_owned();
    let grace = grace(&state, &form)?;
    let actor = Actor::from(&session);
    let (version, secret) = match state.clients.rotate_secret(&client, grace).await {
        Ok(v) => v,
        Err(e) => {
            let reason = match e {
                bulwark_token_issuer::Error::UnknownClient(_) => {
                    RotationError::UnknownClient(client.clone())
                }
                other => {
                    tracing::error!(error = %other, "OAuth secret rotation failed");
                    RotationError::SecretUnchanged
                }
            }
            .to_string();
            actor
                .entry(
                    Action::RotateOauthSecret,
                    &client,
                    Outcome::Failure,
                    &reason,
                )
                .record(&state.pool)
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
        let path = dir.join(bulwark_token_issuer::deployment_secrets_file(&client));
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
    actor
        .entry(
            Action::RotateOauthSecret,
            &client,
            Outcome::Success,
            &detail,
        )
        .record(&state.pool)
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
fn write_deployment_secret(path: &Path, client: &str, secret: &str) -> Result<bool, RotationError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(RotationError::DeploymentSecretRead {
                path: path.to_owned(),
                source,
            });
        }
    };
    let parse = |source| RotationError::DeploymentSecretParse {
        path: path.to_owned(),
        source,
    };
    let mut doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(parse)?;
    let key = format!("{client}_client_secret");
    if !doc.contains_key(&key) {
        return Ok(false);
    }
    doc.insert(key, serde_json::Value::String(secret.to_owned()));
    let out = Zeroizing::new(serde_json::to_vec_pretty(&doc).map_err(parse)?);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(RotationError::DeploymentSecretPath(path.to_owned()));
    };
    let file = bulwark_pki::fs::PendingFile {
        name: name.to_owned(),
        contents: out,
        mode: bulwark_pki::fs::SECRET_MODE,
    };
    bulwark_pki::fs::write_all(dir, &[file])?;
    Ok(true)
}
