//! A stored credential in the encrypted Postgres store: a new version of one field, the value
//! given in the form or generated (then shown once).

use axum::{Form, extract::State, response::Response};
use zeroize::Zeroizing;

use super::{Actor, Fields, RotationError, SecretPage, field, guard, one_time};
use crate::admin::{
    AdminError, AdminState,
    audit::{Action, Outcome},
    auth::{self, Session},
};

pub async fn rotate(
    State(state): State<AdminState>,
    session: Session,
    Form(form): Form<Fields>,
) -> Result<Response, AdminError> {
    guard(&session, &form)?;
    let Some(store) = &state.secrets else {
        return Err(AdminError::BadRequest(
            "no Postgres secret store is configured".into(),
        ));
    };
    let name = field(&form, "target").to_owned();
    let field_name = field(&form, "field").trim().to_owned();
    let provided = Zeroizing::new(field(&form, "value").to_owned());
    let actor = Actor::from(&session);
    let fail = |e: RotationError| {
        let (pool, actor, name) = (state.pool.clone(), actor.clone(), name.clone());
        async move {
            let reason = e.to_string();
            actor
                .entry(Action::RotateCredential, &name, Outcome::Failure, &reason)
                .record(&pool)
                .await;
            AdminError::BadRequest(reason)
        }
    };
    let current = match store.get_latest(&name).await {
        Ok(Some((_, map))) => map,
        Ok(None) => return Err(fail(RotationError::UnknownCredential(name.clone())).await),
        Err(source) => {
            let e = RotationError::CredentialRead {
                name: name.clone(),
                source,
            };
            return Err(fail(e).await);
        }
    };
    if field_name.is_empty() || !current.contains_key(&field_name) {
        let fields: Vec<&str> = current.keys().map(String::as_str).collect();
        let e = RotationError::UnknownField {
            name: name.clone(),
            fields: fields.join(", "),
        };
        return Err(fail(e).await);
    }
    let generated = provided.is_empty();
    let value = if generated {
        auth::random_token()?
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
        Err(source) => {
            let e = RotationError::CredentialWrite {
                name: name.clone(),
                source,
            };
            return Err(fail(e).await);
        }
    };
    let detail = format!("field {field_name}; version {version}");
    actor
        .entry(Action::RotateCredential, &name, Outcome::Success, &detail)
        .record(&state.pool)
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
