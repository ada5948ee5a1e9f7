//! `bulwark-init`: creates, verifies, inspects and rotates Bulwark's identity material.
//!
//! Thin by design: argument parsing and output live here, everything else in `bulwark-pki`.
#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

mod admin;
mod database;
mod pki;
mod secrets;

use bulwark_pki::{Settings, cli::PkiArgs, names::Namespace, rotate::SystemClock};
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bulwark-init",
    version,
    about = "Bulwark identity material: CA, certificates, JWT keys, tokens"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        env = "BULWARK_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: bulwark_process::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create what is missing and renew what is due; a no-op when everything is valid.
    Generate {
        /// Output directory.
        #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
        out: PathBuf,
        /// Regenerate everything, valid or not.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Check every item; exit non-zero naming each problem.
    Verify {
        #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
        dir: PathBuf,
        /// Fraction of a lifetime after which an item is reported as due for renewal.
        #[arg(long, env = "BULWARK_RENEW_AT", default_value_t = 2.0 / 3.0)]
        renew_at: f64,
    },
    /// Print the inventory with days left.
    Inspect {
        #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "BULWARK_RENEW_AT", default_value_t = 2.0 / 3.0)]
        renew_at: f64,
    },
    /// Apply the Bulwark database migrations and register the appliance's OAuth clients.
    Database {
        /// File holding the database URL (contains a password, so never a flag).
        #[arg(long, env = "BULWARK_DATABASE_URL_FILE")]
        database_url_file: PathBuf,
        /// Directory for the operator credentials and the per-client deployment secret stores
        /// (created 0700).
        #[arg(long, env = "BULWARK_CREDENTIALS_DIR")]
        out: PathBuf,
        /// How long to keep retrying the database before giving up (it may still be
        /// starting, or its name not yet resolvable in a container network).
        #[arg(long, env = "BULWARK_DATABASE_CONNECT_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
        connect_timeout: std::time::Duration,
        /// Token endpoint written into the operator credentials.
        #[arg(
            long,
            env = "BULWARK_TOKEN_URL",
            default_value = "https://127.0.0.1:8443/oauth/token"
        )]
        token_url: String,
        #[arg(
            long = "namespace",
            env = "BULWARK_NAMESPACES",
            value_delimiter = ',',
            default_value = "default"
        )]
        namespaces: Vec<Namespace>,
    },
    /// The deployment's own secret files: database passwords and URL, the demo credential,
    /// the secret-store component files (for scripts/up.sh and the compose bootstrap).
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
    /// Admin page accounts, straight against the database (works with the page down).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Replace the named items (and what depends on them) even if they are valid. `jwt-key`
    /// switches at once; the old key stays published until its tokens have expired.
    Rotate {
        /// Item ids as listed by `inspect` (e.g. temporal-server, jwt-key, client-token).
        #[arg(required = true)]
        items: Vec<String>,
        #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
        dir: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Emergency revoke (the admin page's "Revoke now", with the page down): a new JWT key
    /// signs at once and is the only key in jwks.json; static tokens are re-issued.
    RevokeJwtKey {
        #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
        dir: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Clear any lock of an account; a running bulwark-control forgets that user's login
    /// backoffs within seconds.
    Unlock {
        user: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Set an account's password (creating the account if needed) and end its sessions.
    /// The password is read from --password-file, else from stdin; never from arguments.
    SetPassword {
        user: String,
        /// File holding the new password (one trailing line break is removed).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// The bootstrap password file (e.g. credentials/admin-password): deleted afterwards.
        #[arg(long)]
        bootstrap_file: Option<PathBuf>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Args, Debug)]
struct DatabaseArgs {
    /// File holding the database URL (contains a password, so never a flag).
    #[arg(long, env = "BULWARK_DATABASE_URL_FILE")]
    database_url_file: PathBuf,
    #[arg(long, env = "BULWARK_DATABASE_CONNECT_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    connect_timeout: std::time::Duration,
}

#[derive(Args, Debug)]
struct SettingsArgs {
    #[command(flatten)]
    pki: PkiArgs,
    /// `iss` claim of minted tokens.
    #[arg(long, env = "BULWARK_JWT_ISSUER", default_value = "bulwark")]
    issuer: String,
    /// Frontend address written into the Temporal CLI profiles.
    #[arg(
        long,
        env = "BULWARK_TEMPORAL_ADDRESS",
        default_value = "localhost:7233"
    )]
    temporal_address: String,
    /// Lifetime of bulwark-control's access tokens: a replaced JWT key stays published until
    /// the longer of this and the static token TTL has passed.
    #[arg(long, env = "BULWARK_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = bulwark_pki::cli::duration)]
    access_token_ttl: time::Duration,
}

impl SettingsArgs {
    fn into_settings(self) -> anyhow::Result<Settings> {
        let mut s = self
            .pki
            .into_settings(self.issuer, Some(self.temporal_address))?;
        s.access_token_ttl = self.access_token_ttl;
        s.validate()?;
        Ok(s)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    bulwark_process::init_logging(cli.log_format, "info");
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bulwark-init: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    let clock = SystemClock;
    match command {
        Command::Generate {
            out,
            force,
            settings,
        } => {
            pki::generate(&out, &settings.into_settings()?, force, &clock)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rotate {
            items,
            dir,
            settings,
        } => {
            pki::rotate(&dir, &settings.into_settings()?, &items, &clock)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::RevokeJwtKey { dir, settings } => {
            pki::revoke_jwt_key(&dir, &settings.into_settings()?, &clock)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Database {
            database_url_file,
            out,
            connect_timeout,
            token_url,
            namespaces,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(database::run(
                &database_url_file,
                &out,
                connect_timeout,
                &token_url,
                &{
                    let mut n = namespaces;
                    n.sort();
                    n.dedup();
                    n
                },
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { command } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                match command {
                    AdminCommand::Unlock { user, db } => {
                        let pool =
                            admin::connect(&db.database_url_file, db.connect_timeout).await?;
                        admin::unlock(&pool, &user).await?;
                        println!("{user}: unlocked");
                    }
                    AdminCommand::SetPassword {
                        user,
                        password_file,
                        bootstrap_file,
                        db,
                    } => {
                        // Read (and check) before connecting: a bad password fails fast.
                        let password = admin::read_password(password_file.as_deref())?;
                        let pool =
                            admin::connect(&db.database_url_file, db.connect_timeout).await?;
                        let (created, ended) =
                            admin::set_password(&pool, &user, &password, bootstrap_file.as_deref())
                                .await?;
                        println!(
                            "{user}: {}; {ended} sessions ended",
                            if created {
                                "account created with the new password"
                            } else {
                                "password changed"
                            }
                        );
                    }
                }
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Secrets { command } => {
            secrets::run(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { dir, renew_at } => Ok(pki::verify(&dir, renew_at, &clock)),
        Command::Inspect {
            dir,
            json,
            renew_at,
        } => {
            pki::inspect(&dir, json, renew_at, &clock)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap checks argument uniqueness only when parsing; a clash between our flags and the
    /// flattened PKI settings must fail here, not at start-up.
    #[test]
    fn arguments_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
