//! `bulwark-init secrets`: the deployment's own secret files, so that no shell script derives
//! them (scripts/up.sh for the native stack and docker/init/bulwark-bootstrap.sh for compose
//! both call these):
//!
//! - `gen-password`: a random database password, generated once;
//! - `database-url`: the Bulwark database URL file (it holds a password);
//! - `app-secrets`: the demo credential in the application secret store;
//! - `components`: the secret-store component files that route credential references.
//!
//! No value read or generated here is ever printed or put in an error message.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use bulwark_pki::fs::{PendingFile, SECRET_MODE, write_all};
use clap::Subcommand;
use zeroize::Zeroizing;

/// Random bytes in a generated password: 48 hex digits, as `openssl rand -hex 24` made them.
const PASSWORD_BYTES: usize = 24;
/// The read-only role of the reference workflows' demo database (see
/// migrations/superuser/demo.sql).
const DEMO_DB_USER: &str = "bulwark_reader";

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Write a random password (48 hex digits and a line break) to FILE, mode 0600, unless FILE
    /// already holds one: a non-empty file is never replaced. Prints nothing.
    GenPassword {
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the Postgres URL of the Bulwark database to FILE (rewritten in place, so the file
    /// keeps the owner and mode it was given; created 0600). The password comes from a file.
    DatabaseUrl {
        #[arg(long)]
        out: PathBuf,
        /// File holding the role's password (one line).
        #[arg(long)]
        password_file: PathBuf,
        #[arg(long)]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "bulwark")]
        user: String,
        #[arg(long, default_value = "bulwark")]
        database: String,
    },
    /// Put the demo database credential (`demo-db`) into the application secret store FILE,
    /// keeping every other entry (bulwark-init database adds `demo-oauth`). Written atomically,
    /// mode 0600 (a group grant on the existing file is kept).
    AppSecrets {
        #[arg(long)]
        out: PathBuf,
        /// File holding the demo role's password (one line).
        #[arg(long)]
        demo_password_file: PathBuf,
        /// Where the worker may send the demo database credential (host:port; repeatable).
        /// Without it the entry has no `allowed_hosts`.
        #[arg(long = "demo-db-host")]
        demo_db_hosts: Vec<String>,
        /// Where the worker may send the `demo-oauth` credential, if that entry exists
        /// (host:port; repeatable). Without it the entry is left as it is.
        #[arg(long = "demo-oauth-host")]
        demo_oauth_hosts: Vec<String>,
    },
    /// Write the secret-store component files (`default.yaml`: the application store,
    /// `deployment.yaml`: the worker's deployment store) into DIR (created 0700), naming the
    /// store files in CREDENTIALS_DIR.
    Components {
        #[arg(long)]
        out: PathBuf,
        /// Where the worker finds app-secrets.json and deployment-secrets-worker.json.
        #[arg(long)]
        credentials_dir: PathBuf,
    },
}

pub fn run(command: SecretsCommand) -> anyhow::Result<()> {
    match command {
        SecretsCommand::GenPassword { out } => gen_password(&out),
        SecretsCommand::DatabaseUrl {
            out,
            password_file,
            host,
            port,
            user,
            database,
        } => {
            let password = read_one_line(&password_file)?;
            let url = database_url(&user, &password, &host, port, &database);
            write_in_place(&out, url.as_bytes())
        }
        SecretsCommand::AppSecrets {
            out,
            demo_password_file,
            demo_db_hosts,
            demo_oauth_hosts,
        } => {
            let password = read_one_line(&demo_password_file)?;
            let existing = bulwark_pki::fs::read_optional(&out)?.map(Zeroizing::new);
            let doc = app_secrets(
                existing.as_deref().map(Vec::as_slice),
                &password,
                &demo_db_hosts,
                &demo_oauth_hosts,
            )
            .with_context(|| format!("{} is not a JSON object", out.display()))?;
            let (dir, name) = split(&out)?;
            write_all(
                dir,
                &[PendingFile {
                    name,
                    contents: doc,
                    mode: SECRET_MODE,
                }],
            )?;
            Ok(())
        }
        SecretsCommand::Components {
            out,
            credentials_dir,
        } => {
            bulwark_pki::fs::ensure_dir(&out)?;
            let files: Vec<PendingFile> = components(&credentials_dir)
                .into_iter()
                .map(|(name, text)| PendingFile {
                    name: name.into(),
                    contents: Zeroizing::new(text.into_bytes()),
                    mode: SECRET_MODE,
                })
                .collect();
            write_all(&out, &files)?;
            Ok(())
        }
    }
}

/// The directory and file name of `path` (a relative name is in the current directory).
fn split(path: &Path) -> anyhow::Result<(&Path, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((dir, name.to_owned()))
}

fn gen_password(out: &Path) -> anyhow::Result<()> {
    match fs::metadata(out) {
        Ok(m) if m.len() > 0 => return Ok(()),
        Ok(m) if !m.is_file() => bail!("{} exists and is not a file", out.display()),
        Ok(_) | Err(_) => {}
    }
    let mut bytes = Zeroizing::new([0u8; PASSWORD_BYTES]);
    OsRng
        .try_fill_bytes(&mut bytes[..])
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let mut text = Zeroizing::new(String::with_capacity(PASSWORD_BYTES * 2 + 1));
    for b in bytes.iter() {
        // Writing to a String cannot fail.
        let _ = std::fmt::Write::write_fmt(&mut *text, format_args!("{b:02x}"));
    }
    text.push('\n');

    let (dir, name) = split(out)?;
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let staged = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_MODE)
            .open(&tmp)?;
        // The umask may have narrowed the mode further; 0600 exactly.
        f.set_permissions(fs::Permissions::from_mode(SECRET_MODE))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = staged {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    // Absent: a hard link never replaces a file that appeared meanwhile (another writer won
    // and its password stays). Present but empty: replace it.
    let placed = if out.exists() {
        fs::rename(&tmp, out)
    } else {
        match fs::hard_link(&tmp, out) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            r => r,
        }
    };
    let _ = fs::remove_file(&tmp);
    placed.with_context(|| format!("writing {}", out.display()))
}

/// The content of a one-line secret file, without its line break. More than one line, a
/// carriage return or an empty file is refused (naming the file, never the content).
fn read_one_line(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let raw = Zeroizing::new(
        fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let value = raw.trim_end_matches('\n');
    if value.contains(['\n', '\r']) {
        bail!("{} must hold one line", path.display());
    }
    if value.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(Zeroizing::new(value.to_owned()))
}

/// RFC 3986 userinfo encoding: everything but the unreserved characters is percent-encoded,
/// so an operator's password with `@`, `/` or `:` still makes a valid URL (sqlx decodes it).
fn encode_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn database_url(
    user: &str,
    password: &str,
    host: &str,
    port: u16,
    database: &str,
) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "postgres://{}:{}@{host}:{port}/{database}\n",
        encode_userinfo(user),
        Zeroizing::new(encode_userinfo(password)).as_str()
    ))
}

/// Rewrite `path` in place: the compose stack's URL file lives in a directory its writer may
/// not create files in, and the file keeps the owner and mode the bootstrap gave it.
fn write_in_place(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(SECRET_MODE)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if !existed {
        f.set_permissions(fs::Permissions::from_mode(SECRET_MODE))
            .with_context(|| format!("setting permissions on {}", path.display()))?;
    }
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The application secret store with the demo credential set: `existing` (if any) keeps
/// every other entry; `demo-db` is replaced; `demo-oauth`, if present, gets `oauth_hosts` as
/// its `allowed_hosts` when any are given (the worker refuses to send a credential elsewhere).
pub fn app_secrets(
    existing: Option<&[u8]>,
    demo_password: &str,
    db_hosts: &[String],
    oauth_hosts: &[String],
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut doc: serde_json::Map<String, serde_json::Value> = match existing {
        // serde's message can quote the offending value, which may be a secret: only where.
        Some(b) => serde_json::from_slice(b).map_err(|e| {
            anyhow::anyhow!(
                "not a JSON object of secrets (line {}, column {})",
                e.line(),
                e.column()
            )
        })?,
        None => serde_json::Map::new(),
    };
    let mut demo = serde_json::json!({
        "username": DEMO_DB_USER,
        "password": demo_password.trim(),
    });
    if !db_hosts.is_empty() {
        demo["allowed_hosts"] = serde_json::json!(db_hosts);
    }
    doc.insert("demo-db".into(), demo);
    if !oauth_hosts.is_empty() {
        if let Some(oauth) = doc.get_mut("demo-oauth").and_then(|v| v.as_object_mut()) {
            oauth.insert("allowed_hosts".into(), serde_json::json!(oauth_hosts));
        }
    }
    Ok(Zeroizing::new(serde_json::to_vec_pretty(&doc)?))
}

/// The two component files (name, text): the application store and the worker's deployment
/// store, both local files under `credentials_dir`, both resolvable only by the worker.
pub fn components(credentials_dir: &Path) -> [(&'static str, String); 2] {
    // A JSON string is a YAML double-quoted scalar: any path stays one value.
    let path = |file: &str| {
        serde_json::Value::String(credentials_dir.join(file).display().to_string()).to_string()
    };
    let file = |comment: &str, name: &str, secrets_file: String| {
        format!(
            "# {comment}\n# Written by `bulwark-init secrets components`.\n\
             apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n\
             spec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n\
             \x20   - name: secretsFile\n      value: {secrets_file}\n\
             # Only the worker resolves credentials.\nscopes:\n  - worker\n"
        )
    };
    [
        (
            "default.yaml",
            file(
                "Application credentials for the reference workflows.",
                "default",
                path(crate::database::APP_SECRETS),
            ),
        ),
        (
            "deployment.yaml",
            file(
                "The deployment secret store: the worker's own OAuth client credentials.",
                "deployment",
                path(&bulwark_token_issuer::deployment_secrets_file("worker")),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn userinfo_is_percent_encoded_and_hex_is_unchanged() {
        assert_eq!(encode_userinfo("0a1b2c"), "0a1b2c");
        assert_eq!(encode_userinfo("p@ss:w/rd%"), "p%40ss%3Aw%2Frd%25");
        assert_eq!(
            database_url("bulwark", "abc", "127.0.0.1", 15432, "bulwark").as_str(),
            "postgres://bulwark:abc@127.0.0.1:15432/bulwark\n"
        );
    }

    #[test]
    fn app_secrets_keeps_other_entries_and_sets_hosts() {
        let before = br#"{"demo-oauth": {"client_id": "http-demo"}, "other": 1}"#;
        let out = app_secrets(
            Some(before),
            " pw \n",
            &["127.0.0.1:15432".into()],
            &["127.0.0.1:8444".into()],
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["other"], 1);
        assert_eq!(v["demo-db"]["password"], "pw");
        assert_eq!(v["demo-db"]["allowed_hosts"][0], "127.0.0.1:15432");
        assert_eq!(v["demo-oauth"]["allowed_hosts"][0], "127.0.0.1:8444");
        assert_eq!(v["demo-oauth"]["client_id"], "http-demo");
    }

    #[test]
    fn app_secrets_without_hosts_has_no_allowed_hosts_and_adds_no_oauth_entry() {
        let out = app_secrets(None, "pw", &[], &["127.0.0.1:8444".into()]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"demo-db": {"username": "bulwark_reader", "password": "pw"}})
        );
        assert!(app_secrets(Some(b"[1]"), "pw", &[], &[]).is_err());
    }
}
