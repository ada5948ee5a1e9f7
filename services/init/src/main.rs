//! `bulwark-init`: creates, verifies, inspects and rotates Bulwark's identity material.
//!
//! Thin by design: argument parsing and output live here, everything else in `bulwark-pki`.
#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

mod database;

use anyhow::Context;
use bulwark_pki::{
    Mode, Settings,
    jwt::JwtAlgorithm,
    keys::KeyAlgorithm,
    manifest::{MANIFEST_FILE, Manifest},
    names::{Identity, Namespace, San},
    verify::{Severity, verify_dir},
};
use clap::{Args, Parser, Subcommand};
use time::OffsetDateTime;

#[derive(Parser, Debug)]
#[command(
    name = "bulwark-init",
    version,
    about = "Bulwark identity material: CA, certificates, JWT keys, tokens"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, env = "BULWARK_LOG_FORMAT", default_value = "text", global = true, value_parser = ["text", "json"])]
    log_format: String,
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
        /// Directory for the operator credentials and the deployment secret store (0700).
        #[arg(long, env = "BULWARK_CREDENTIALS_DIR")]
        out: PathBuf,
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
    /// Replace the named items (and what depends on them) even if they are valid.
    Rotate {
        /// Item ids as listed by `inspect` (e.g. temporal-server, jwt-key, client-token).
        #[arg(required = true)]
        items: Vec<String>,
        #[arg(long, env = "BULWARK_CERTS_DIR", default_value = "certs")]
        dir: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

fn duration(s: &str) -> Result<time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30d, 24h, 15m)"))?;
    time::Duration::try_from(d).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
struct SettingsArgs {
    /// Root CA lifetime.
    #[arg(long, env = "BULWARK_CA_LIFETIME", default_value = "3650d", value_parser = duration)]
    ca_lifetime: time::Duration,
    /// Issuing (intermediate) CA lifetime.
    #[arg(long, env = "BULWARK_INTERMEDIATE_LIFETIME", default_value = "1825d", value_parser = duration)]
    intermediate_lifetime: time::Duration,
    /// Leaf certificate lifetime.
    #[arg(long, env = "BULWARK_LEAF_LIFETIME", default_value = "30d", value_parser = duration)]
    leaf_lifetime: time::Duration,
    /// JWT signing key lifetime before it is rotated.
    #[arg(long, env = "BULWARK_JWT_KEY_LIFETIME", default_value = "90d", value_parser = duration)]
    jwt_key_lifetime: time::Duration,
    /// Static token lifetime.
    #[arg(long, env = "BULWARK_TOKEN_TTL", default_value = "24h", value_parser = duration)]
    token_ttl: time::Duration,
    /// Fraction of a lifetime after which an item is renewed.
    #[arg(long, env = "BULWARK_RENEW_AT", default_value_t = 2.0 / 3.0)]
    renew_at: f64,
    /// Certificate key algorithm: ecdsa-p256 or ecdsa-p384.
    #[arg(long, env = "BULWARK_KEY_ALGORITHM", default_value = "ecdsa-p256")]
    key_algorithm: KeyAlgorithm,
    /// JWT signing algorithm: ES256 or RS256.
    #[arg(long, env = "BULWARK_JWT_ALGORITHM", default_value = "ES256")]
    jwt_algorithm: JwtAlgorithm,
    /// Temporal frontend certificate SANs (DNS names or IPs).
    #[arg(
        long = "server-san",
        env = "BULWARK_SERVER_SANS",
        value_delimiter = ',',
        default_value = "temporal,temporal-server,localhost,127.0.0.1"
    )]
    server_sans: Vec<San>,
    /// Temporal internode certificate SANs.
    #[arg(
        long = "internode-san",
        env = "BULWARK_INTERNODE_SANS",
        value_delimiter = ',',
        default_value = "temporal-internode,localhost,127.0.0.1"
    )]
    internode_sans: Vec<San>,
    /// bulwark-control HTTPS certificate SANs.
    #[arg(
        long = "control-san",
        env = "BULWARK_CONTROL_SANS",
        value_delimiter = ',',
        default_value = "bulwark-control,localhost,127.0.0.1"
    )]
    control_sans: Vec<San>,
    /// bulwark-api HTTPS certificate SANs.
    #[arg(
        long = "api-san",
        env = "BULWARK_API_SANS",
        value_delimiter = ',',
        default_value = "bulwark-api,localhost,127.0.0.1"
    )]
    api_sans: Vec<San>,
    /// Client identities that get their own certificate.
    #[arg(
        long = "identity",
        env = "BULWARK_IDENTITIES",
        value_delimiter = ',',
        default_value = "api,worker,control,admin,ui"
    )]
    identities: Vec<Identity>,
    /// Temporal namespaces the worker and client tokens grant.
    #[arg(
        long = "namespace",
        env = "BULWARK_NAMESPACES",
        value_delimiter = ',',
        default_value = "default"
    )]
    namespaces: Vec<Namespace>,
    /// `iss` claim of minted tokens.
    #[arg(long, env = "BULWARK_JWT_ISSUER", default_value = "bulwark")]
    issuer: String,
    /// `aud` claim of minted tokens; Temporal's `authorization.audience` must match.
    #[arg(long, env = "BULWARK_JWT_AUDIENCE", default_value = "temporal")]
    audience: String,
    /// Trust domain in client certificate URI SANs (spiffe://<domain>/client/<identity>).
    #[arg(long, env = "BULWARK_TRUST_DOMAIN", default_value = "bulwark.local")]
    trust_domain: String,
    /// Frontend address written into the Temporal CLI profiles.
    #[arg(
        long,
        env = "BULWARK_TEMPORAL_ADDRESS",
        default_value = "localhost:7233"
    )]
    temporal_address: String,
    /// Name clients verify the frontend certificate against.
    #[arg(long, env = "BULWARK_TEMPORAL_SERVER_NAME", default_value = "temporal")]
    temporal_server_name: String,
}

impl SettingsArgs {
    fn into_settings(self) -> anyhow::Result<Settings> {
        let mut s = Settings::default();
        s.ca_lifetime = self.ca_lifetime;
        s.intermediate_lifetime = self.intermediate_lifetime;
        s.leaf_lifetime = self.leaf_lifetime;
        s.jwt_key_lifetime = self.jwt_key_lifetime;
        s.token_ttl = self.token_ttl;
        s.key_algorithm = self.key_algorithm;
        s.jwt_algorithm = self.jwt_algorithm;
        s.server_sans = dedup(self.server_sans);
        s.internode_sans = dedup(self.internode_sans);
        s.control_sans = dedup(self.control_sans);
        s.api_sans = dedup(self.api_sans);
        s.identities = dedup(self.identities);
        s.namespaces = dedup(self.namespaces);
        s.issuer = self.issuer;
        s.audience = self.audience;
        s.trust_domain = self.trust_domain;
        s.temporal_address = self.temporal_address;
        s.temporal_server_name = self.temporal_server_name;

        s.set_renew_fraction(self.renew_at)?;
        s.validate()?;
        Ok(s)
    }
}

fn dedup<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BULWARK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bulwark-init: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    match command {
        Command::Generate {
            out,
            force,
            settings,
        } => {
            let settings = settings.into_settings()?;
            let mode = if force { Mode::Force } else { Mode::Missing };
            let report = bulwark_pki::generate(&out, &settings, mode, now)?;
            print_report(&out, &report);
            Ok(ExitCode::SUCCESS)
        }
        Command::Rotate {
            items,
            dir,
            settings,
        } => {
            let settings = settings.into_settings()?;
            let report = bulwark_pki::generate(&dir, &settings, Mode::Rotate(&items), now)?;
            print_report(&dir, &report);
            Ok(ExitCode::SUCCESS)
        }
        Command::Database {
            database_url_file,
            out,
            token_url,
            namespaces,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(database::run(
                &database_url_file,
                &out,
                &token_url,
                &dedup(namespaces),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { dir, renew_at } => {
            let problems = verify_dir(&dir, now, renew_at);
            let errors = problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            for p in &problems {
                println!("{p}");
            }
            if errors == 0 {
                println!(
                    "ok: {} is valid ({} warnings)",
                    dir.display(),
                    problems.len()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!("FAILED: {errors} problems in {}", dir.display());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Inspect {
            dir,
            json,
            renew_at,
        } => {
            let path = dir.join(MANIFEST_FILE);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let manifest: Manifest = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?;
            let mut rows: Vec<_> = manifest
                .items
                .iter()
                .map(|e| (e.status(now, renew_at), e.days_left(now), e))
                .collect();
            rows.sort_by_key(|(status, days, _)| (*status, days.unwrap_or(i64::MAX)));
            if json {
                let items: Vec<_> = rows
                    .iter()
                    .map(|(status, days, e)| {
                        let mut v = serde_json::to_value(e).unwrap_or_default();
                        v["status"] = serde_json::to_value(status).unwrap_or_default();
                        v["days_left"] = serde_json::to_value(days).unwrap_or_default();
                        v
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "items": items }))?
                );
            } else {
                println!(
                    "{:<18} {:<16} {:<10} {:>9} {:>4}  {:<22} FINGERPRINT/KID",
                    "ITEM", "KIND", "STATUS", "DAYS LEFT", "GEN", "NOT AFTER"
                );
                for (status, days, e) in rows {
                    let status = serde_json::to_value(status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let kind = serde_json::to_value(e.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let na = e
                        .not_after
                        .and_then(|t| {
                            t.format(&time::format_description::well_known::Rfc3339)
                                .ok()
                        })
                        .unwrap_or_else(|| "-".into());
                    let days = days.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
                    let id = e
                        .kid
                        .clone()
                        .unwrap_or_else(|| e.fingerprint.chars().take(16).collect());
                    println!(
                        "{:<18} {:<16} {:<10} {:>9} {:>4}  {:<22} {}",
                        e.id, kind, status, days, e.generation, na, id
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_report(dir: &std::path::Path, report: &bulwark_pki::Report) {
    if report.changes.is_empty() {
        println!("{}: everything valid, nothing changed", dir.display());
    }
    for c in &report.changes {
        println!("{:<18} {}", c.id, c.reason);
    }
    if !report.files_written.is_empty() {
        println!(
            "wrote {} files in {}",
            report.files_written.len(),
            dir.display()
        );
    }
}
