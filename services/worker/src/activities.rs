//! Activities: resolve credential references at run time and use them at the point of use.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bulwark_auth::{MemorySource, TokenManager};
use bulwark_secrets::{Credential, CredentialRef, Resolver};
use bulwark_temporal::{
    DatabaseQueryInput, DatabaseQueryOutput, GreetingInput, GreetingOutput, HttpCallInput,
    HttpCallOutput, activity, failure_type,
};
use sha2::{Digest, Sha256};
use sqlx::{ConnectOptions, Connection, Row};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::failures::{self, Failure};
use crate::health::Metrics;

/// Where `DatabaseQuery` connects.
#[derive(Debug, Clone)]
pub struct DatabaseTarget {
    pub host: String,
    pub port: u16,
    /// Databases a workflow may name.
    pub allowed: Vec<String>,
}

/// State shared by all activity executions.
pub struct Activities {
    pub resolver: Resolver,
    pub metrics: Arc<Metrics>,
    pub database: DatabaseTarget,
    /// PEM CA bundle: the only trust for HTTPS calls and token endpoints.
    pub ca_pem: Vec<u8>,
    pub ca_file: std::path::PathBuf,
    pub http: reqwest::Client,
    /// Token managers per (reference, client id, secret digest, token url).
    oauth: Mutex<HashMap<String, TokenManager>>,
}

impl fmt::Debug for Activities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Activities")
            .field("database", &self.database)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl Activities {
    pub fn new(
        resolver: Resolver,
        metrics: Arc<Metrics>,
        database: DatabaseTarget,
        ca_file: std::path::PathBuf,
    ) -> anyhow::Result<Self> {
        let ca_pem = std::fs::read(&ca_file)
            .map_err(|e| anyhow::anyhow!("CA bundle {}: {e}", ca_file.display()))?;
        let roots = bulwark_tls::load_roots(&ca_file)?;
        let tls = bulwark_tls::client_config(roots, None)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self {
            resolver,
            metrics,
            database,
            ca_pem,
            ca_file,
            http,
            oauth: Mutex::new(HashMap::new()),
        })
    }

    fn record(&self, name: &str, result: &Result<(), &Failure>) {
        self.metrics
            .inc("bulwark_worker_activities_total", &[("activity", name)]);
        if let Err(f) = result {
            self.metrics.inc(
                "bulwark_worker_activity_failures_total",
                &[("activity", name), ("type", f.kind)],
            );
            tracing::warn!(activity = name, failure_type = f.kind, error = %f, "activity failed");
        }
    }

    async fn resolve(&self, reference: &CredentialRef) -> Result<Arc<Credential>, Failure> {
        match self.resolver.resolve(reference).await {
            Ok(c) => {
                self.metrics.inc(
                    "bulwark_worker_credential_resolutions_total",
                    &[("result", "ok")],
                );
                Ok(c)
            }
            Err(e) => {
                self.metrics.inc(
                    "bulwark_worker_credential_resolutions_total",
                    &[("result", "failed")],
                );
                Err(failures::from_secrets(&e))
            }
        }
    }

    async fn database_query(
        &self,
        input: DatabaseQueryInput,
    ) -> Result<DatabaseQueryOutput, Failure> {
        input
            .validate()
            .map_err(|e| Failure::new(failure_type::INVALID_INPUT, e.to_string()))?;
        if !self.database.allowed.contains(&input.database) {
            return Err(Failure::new(
                failure_type::INVALID_INPUT,
                format!(
                    "database `{}` is not allowed on this worker",
                    input.database
                ),
            ));
        }
        let reference = input.credential.to_string();
        let cred = self.resolve(&input.credential).await?;
        let basic = cred.as_basic().ok_or_else(|| {
            Failure::new(
                failure_type::CREDENTIAL_INVALID,
                format!("{reference}: not a basic credential"),
            )
        })?;
        let opts = sqlx::postgres::PgConnectOptions::new()
            .host(&self.database.host)
            .port(self.database.port)
            .database(&input.database)
            .username(&basic.username)
            .password(basic.password.expose())
            .application_name("bulwark-worker")
            .options([
                ("default_transaction_read_only", "on"),
                ("statement_timeout", "5000"),
            ])
            .disable_statement_logging();
        let mut conn = tokio::time::timeout(Duration::from_secs(10), opts.connect())
            .await
            .map_err(|_| {
                Failure::new(
                    failure_type::TRANSIENT,
                    format!("database `{}`: connect timed out", input.database),
                )
            })?
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let row = sqlx::query(input.query.sql())
            .fetch_one(&mut conn)
            .await
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let _ = conn.close().await;
        let row_count: i64 = row
            .try_get(0)
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let total_quantity: i64 = row
            .try_get(1)
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        Ok(DatabaseQueryOutput {
            query: input.query,
            database: input.database,
            row_count,
            total_quantity,
        })
    }

    async fn oauth_token(
        &self,
        reference: &str,
        cred: &bulwark_secrets::OAuthClientCredential,
    ) -> Result<String, Failure> {
        let digest = hex::encode(Sha256::digest(cred.client_secret.expose().as_bytes()));
        let key = format!(
            "{reference}\n{}\n{digest}\n{}",
            cred.client_id, cred.token_url
        );
        let manager = {
            let mut map = self.oauth.lock().unwrap_or_else(PoisonError::into_inner);
            match map.get(&key) {
                Some(m) => m.clone(),
                None => {
                    let source = MemorySource::new()
                        .with("httpcall_client_id", cred.client_id.clone())
                        .with(
                            "httpcall_client_secret",
                            cred.client_secret.expose().to_owned(),
                        );
                    let m = TokenManager::builder(cred.token_url.clone(), "httpcall")
                        .ca_bundle_pem(self.ca_pem.clone())
                        .environment(Arc::new(MemorySource::new()))
                        .secret_store(Arc::new(source))
                        .scopes(cred.scopes.clone())
                        .build()
                        .map_err(|e| failures::from_auth(reference, &e))?;
                    // Drop managers of rotated secrets of the same reference.
                    map.retain(|k, _| !k.starts_with(&format!("{reference}\n")));
                    map.insert(key, m.clone());
                    m
                }
            }
        };
        let token = manager
            .get_access_token(false)
            .await
            .map_err(|e| failures::from_auth(reference, &e))?;
        Ok(token.expose_secret().to_owned())
    }

    async fn http_call(&self, input: HttpCallInput) -> Result<HttpCallOutput, Failure> {
        input
            .validate()
            .map_err(|e| Failure::new(failure_type::INVALID_INPUT, e.to_string()))?;
        let url = reqwest::Url::parse(&input.url).map_err(|e| {
            Failure::new(
                failure_type::INVALID_INPUT,
                format!("`url` is invalid: {e}"),
            )
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let reference = input.credential.to_string();
        let cred = self.resolve(&input.credential).await?;
        let (header_name, header_value) = match cred.as_ref() {
            Credential::OAuthClient(c) => {
                let token = self.oauth_token(&reference, c).await?;
                ("authorization".to_owned(), format!("Bearer {token}"))
            }
            Credential::ApiKey(k) => (k.header_name.clone(), k.header_value().expose().to_owned()),
            _ => {
                return Err(Failure::new(
                    failure_type::CREDENTIAL_INVALID,
                    format!("{reference}: expected an oauth_client or api_key credential"),
                ));
            }
        };
        let mut value = reqwest::header::HeaderValue::from_str(&header_value).map_err(|_| {
            Failure::new(
                failure_type::CREDENTIAL_INVALID,
                format!("{reference}: value is not a valid HTTP header value"),
            )
        })?;
        value.set_sensitive(true);
        let resp = self
            .http
            .get(url)
            .header(header_name.as_str(), value)
            .send()
            .await
            .map_err(|e| {
                // reqwest errors name the URL (no credentials: user info is refused) and cause.
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                Failure::new(failure_type::TRANSIENT, format!("GET {host}: {what}"))
            })?;
        let status = resp.status().as_u16();
        if let Some(f) = failures::from_http_status(&reference, &host, status) {
            return Err(f);
        }
        let body = resp.bytes().await.map_err(|_| {
            Failure::new(
                failure_type::TRANSIENT,
                format!("GET {host}: reading the body failed"),
            )
        })?;
        Ok(HttpCallOutput {
            status,
            body_sha256: hex::encode(Sha256::digest(&body)),
            body_len: body.len() as u64,
        })
    }
}

#[activities]
impl Activities {
    #[activity(name = activity::GREET)]
    pub async fn greet(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: GreetingInput,
    ) -> Result<GreetingOutput, ActivityError> {
        let r = input
            .validate()
            .map_err(|e| Failure::new(failure_type::INVALID_INPUT, e.to_string()));
        self.record("greet", &r.as_ref().map(|_| ()));
        r.map_err(Failure::into_activity_error)?;
        Ok(GreetingOutput {
            greeting: format!("Hello, {}!", input.name),
        })
    }

    #[activity(name = activity::DATABASE_QUERY)]
    pub async fn run_database_query(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: DatabaseQueryInput,
    ) -> Result<DatabaseQueryOutput, ActivityError> {
        let r = self.database_query(input).await;
        self.record("database_query", &r.as_ref().map(|_| ()));
        r.map_err(Failure::into_activity_error)
    }

    #[activity(name = activity::HTTP_CALL)]
    pub async fn run_http_call(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: HttpCallInput,
    ) -> Result<HttpCallOutput, ActivityError> {
        let r = self.http_call(input).await;
        self.record("http_call", &r.as_ref().map(|_| ()));
        r.map_err(Failure::into_activity_error)
    }
}
