//! `bulwark-init database`: migrate the Bulwark database and register the OAuth clients the
//! appliance needs, handing their credentials to the places that consume them.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use bulwark_pki::{
    fs::{PendingFile, SECRET_MODE, write_all},
    names::Namespace,
};
use bulwark_token_issuer::{ClientSecret, ClientStore, ScopeSet, deployment_secrets_file};
use zeroize::Zeroizing;

/// Operator credentials file (read by people and the end-to-end suites).
pub const OPERATOR_FILE: &str = "operator-credentials.json";
/// Clients whose credentials go to a deployment secret store of their own
/// ([`bulwark_token_issuer::deployment_secrets_file`], a `secretstores.local.file` JSON document).
const SERVICE_CLIENTS: [&str; 2] = ["api", "worker"];
/// The shared deployment secret store of earlier versions, migrated and removed.
const LEGACY_DEPLOYMENT_SECRETS: &str = "deployment-secrets.json";
/// The application secret store of the native stack, holding the reference workflows'
/// demo credentials (a `secretstores.local.file` JSON document).
pub const APP_SECRETS: &str = "app-secrets.json";
/// The initial password of bulwark-control's admin account (read by control at start-up,
/// which stores only its argon2id hash).
pub const ADMIN_PASSWORD: &str = "admin-password";
/// The OAuth client whose credentials the HttpCall reference workflow resolves by reference.
const HTTP_DEMO: &str = "http-demo";

struct Wanted {
    id: &'static str,
    description: &'static str,
    scopes: String,
    audience: &'static str,
}

fn wanted(namespaces: &[Namespace]) -> Vec<Wanted> {
    let temporal: Vec<String> = namespaces
        .iter()
        .map(|n| format!("temporal:{n}:write"))
        .collect();
    vec![
        Wanted {
            id: "api",
            description: "bulwark-api: starts and tracks workflows in Temporal",
            scopes: temporal.join(" "),
            audience: "temporal",
        },
        Wanted {
            id: "worker",
            description: "bulwark-worker: polls task queues and completes tasks",
            scopes: temporal.join(" "),
            audience: "temporal",
        },
        Wanted {
            id: HTTP_DEMO,
            description: "the HttpCall reference workflow's credential (read-only API access)",
            scopes: "workflows:read".into(),
            audience: "bulwark-api",
        },
        Wanted {
            id: "operator",
            description: "operators and scripts calling bulwark-api",
            scopes: "workflows:start workflows:read workflows:cancel".into(),
            audience: "bulwark-api",
        },
    ]
}

fn read_json(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("{} is not a JSON object of strings", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub async fn run(
    url_file: &Path,
    out: &Path,
    connect_within: std::time::Duration,
    token_url: &str,
    namespaces: &[Namespace],
) -> anyhow::Result<()> {
    let pool = crate::admin::connect(url_file, connect_within).await?;
    tracing::info!("migrations applied");
    // Once an admin account exists the bootstrap file has done its job (and is deleted when
    // the password is changed): never write a new one that would not work.
    let admin_accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_users")
        .fetch_one(&pool)
        .await
        .context("counting admin accounts")?;
    let store = ClientStore::new(pool);

    bulwark_pki::fs::ensure_dir(out)?;
    let operator_path = out.join(OPERATOR_FILE);
    let mut services: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    // Before one file per client, both lived in one shared file: carry their entries over
    // (instead of re-keying clients that still work) and remove it once the new files exist.
    let legacy_path = out.join(LEGACY_DEPLOYMENT_SECRETS);
    let legacy = read_json(&legacy_path)?;
    for id in SERVICE_CLIENTS {
        let mut own = read_json(&out.join(deployment_secrets_file(id)))?;
        for key in [format!("{id}_client_id"), format!("{id}_client_secret")] {
            if let (false, Some(v)) = (own.contains_key(&key), legacy.get(&key)) {
                own.insert(key, v.clone());
            }
        }
        services.insert(id, own);
    }
    let app_path = out.join(APP_SECRETS);
    let mut app: serde_json::Map<String, serde_json::Value> = match std::fs::read(&app_path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("{} is not a JSON object", app_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", app_path.display())),
    };
    let operator = read_json(&operator_path)?;
    let mut operator_new: Option<ClientSecret> = None;

    for w in wanted(namespaces) {
        let scopes: ScopeSet = w.scopes.parse().context("built-in scopes")?;
        let have_secret = match w.id {
            "operator" => operator.contains_key("client_secret"),
            HTTP_DEMO => app
                .get("demo-oauth")
                .is_some_and(|v| v.get("client_secret").is_some()),
            id => services
                .get(id)
                .is_some_and(|m| m.contains_key(&format!("{id}_client_secret"))),
        };
        let secret = match store
            .register(w.id, w.description, &scopes, w.audience)
            .await?
        {
            Some(s) => {
                tracing::info!(client = w.id, "OAuth client registered");
                Some(s)
            }
            // Registered earlier but its secret was lost: issue a new one rather than leave
            // the appliance without credentials. The lost secret stops working at once.
            None if !have_secret => {
                tracing::warn!(
                    client = w.id,
                    "credentials missing for a registered client; rotating its secret"
                );
                Some(store.rotate_secret(w.id, time::Duration::ZERO).await?.1)
            }
            None => None,
        };
        if let Some(secret) = secret {
            if w.id == "operator" {
                operator_new = Some(secret);
            } else if w.id == HTTP_DEMO {
                app.insert(
                    "demo-oauth".into(),
                    serde_json::json!({"client_id": HTTP_DEMO, "client_secret": secret.expose(), "token_url": token_url, "scopes": "workflows:read"}),
                );
            } else if let Some(m) = services.get_mut(w.id) {
                m.insert(format!("{}_client_id", w.id), w.id.to_owned());
                m.insert(
                    format!("{}_client_secret", w.id),
                    secret.expose().to_owned(),
                );
            }
        }
    }

    let mut files = vec![PendingFile {
        name: APP_SECRETS.into(),
        contents: Zeroizing::new(serde_json::to_vec_pretty(&app)?),
        mode: SECRET_MODE,
    }];
    for (id, m) in &services {
        files.push(PendingFile {
            name: deployment_secrets_file(id),
            contents: Zeroizing::new(serde_json::to_vec_pretty(m)?),
            mode: SECRET_MODE,
        });
    }
    let operator_doc = match operator_new {
        Some(s) => Some(
            serde_json::json!({"client_id": "operator", "client_secret": s.expose(), "token_url": token_url}),
        ),
        None if operator.get("token_url").map(String::as_str) != Some(token_url) => {
            let mut o = operator.clone();
            o.insert("token_url".into(), token_url.into());
            Some(serde_json::to_value(o)?)
        }
        None => None,
    };
    if let Some(doc) = operator_doc {
        files.push(PendingFile {
            name: OPERATOR_FILE.into(),
            contents: Zeroizing::new(serde_json::to_vec_pretty(&doc)?),
            mode: SECRET_MODE,
        });
    }
    // The admin page's initial password: BULWARK_ADMIN_PASSWORD, else generated once.
    // An existing file is kept, so re-running init never changes it.
    if admin_accounts == 0 && !out.join(ADMIN_PASSWORD).exists() {
        let password = match std::env::var("BULWARK_ADMIN_PASSWORD") {
            Ok(p) if !p.is_empty() => Zeroizing::new(p),
            _ => Zeroizing::new(ClientSecret::generate()?.expose().to_owned()),
        };
        files.push(PendingFile {
            name: ADMIN_PASSWORD.into(),
            contents: Zeroizing::new(password.as_bytes().to_vec()),
            mode: SECRET_MODE,
        });
        tracing::info!(file = %out.join(ADMIN_PASSWORD).display(), "admin password written");
    }
    write_all(out, &files)?;
    if legacy_path.exists() {
        std::fs::remove_file(&legacy_path)
            .with_context(|| format!("removing the migrated {}", legacy_path.display()))?;
        tracing::info!(file = %legacy_path.display(), "shared deployment secret store split per client and removed");
    }
    println!(
        "database migrated; OAuth clients api, worker, http-demo, operator registered; credentials in {}",
        out.display()
    );
    Ok(())
}
