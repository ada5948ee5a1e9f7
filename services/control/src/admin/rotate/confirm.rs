//! The confirmation page (GET): every action button leads here first; its form posts the
//! action with the session's CSRF token and the confirmation box.

use axum::{
    extract::{Query, State},
    response::Response,
};

use super::{Fields, field};
use crate::admin::{AdminError, AdminState, auth::Session, render};

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
    Query(q): Query<Fields>,
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
