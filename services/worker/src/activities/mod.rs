//! Activities: resolve credential references at run time and use them at the point of use.
//!
//! This file holds the shared state and the activity entry points Temporal registers; each
//! activity's work lives in its own file (`database.rs`, `http.rs`).

mod database;
mod http;
#[cfg(test)]
mod testkit;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark_secrets::{Credential, CredentialRef, Resolver};
use bulwark_token_client::TokenManager;
use bulwark_workflows::{
    DatabaseQueryInput, DatabaseQueryOutput, GreetingInput, GreetingOutput, HttpCallInput,
    HttpCallOutput, activity, failure_type,
};
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

/// Limits on what one `HttpCall` may cost the worker and where it may send credentials.
#[derive(Debug, Clone)]
pub struct HttpCallPolicy {
    /// Most response-body bytes read; a longer body fails the call `ResponseTooLarge`
    /// (non-retryable) and the rest is never read.
    pub max_body_bytes: u64,
    /// Whole-call bound: connect, TLS, request, headers and body.
    pub timeout: Duration,
    /// Refuse credentials that carry no `allowed_hosts` (`CredentialInvalid`) instead of
    /// sending them to any https host.
    pub require_allowed_hosts: bool,
}

impl Default for HttpCallPolicy {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            timeout: Duration::from_secs(20),
            require_allowed_hosts: false,
        }
    }
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
    pub http_policy: HttpCallPolicy,
    /// Token managers per (reference, client id, secret digest, token url).
    oauth: Mutex<HashMap<String, TokenManager>>,
}

impl fmt::Debug for Activities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Activities")
            .field("database", &self.database)
            .field("ca_file", &self.ca_file)
            .field("http_policy", &self.http_policy)
            .finish_non_exhaustive()
    }
}

impl Activities {
    pub fn new(
        resolver: Resolver,
        metrics: Arc<Metrics>,
        database: DatabaseTarget,
        ca_file: std::path::PathBuf,
        http_policy: HttpCallPolicy,
    ) -> anyhow::Result<Self> {
        let ca_pem = std::fs::read(&ca_file)
            .map_err(|e| anyhow::anyhow!("CA bundle {}: {e}", ca_file.display()))?;
        let roots = bulwark_tls::load_roots(&ca_file)?;
        let tls = bulwark_tls::client_config(roots, None)?;
        // Redirects are never followed: the credential was checked against the URL asked
        // for, and a 3xx is reported as the call's status instead.
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5).min(http_policy.timeout))
            .timeout(http_policy.timeout)
            .build()?;
        Ok(Self {
            resolver,
            metrics,
            database,
            ca_pem,
            ca_file,
            http,
            http_policy,
            oauth: Mutex::new(HashMap::new()),
        })
    }

    fn record(&self, name: &str, result: &Result<(), &Failure>) {
        self.metrics.activity(name);
        if let Err(f) = result {
            self.metrics.activity_failed(name, f.kind);
            tracing::warn!(activity = name, failure_type = f.kind, error = %f, "activity failed");
        }
    }

    async fn resolve(&self, reference: &CredentialRef) -> Result<Arc<Credential>, Failure> {
        match self.resolver.resolve(reference).await {
            Ok(c) => {
                self.metrics.credential_resolution(true);
                Ok(c)
            }
            Err(e) => {
                self.metrics.credential_resolution(false);
                Err(failures::from_secrets(&e))
            }
        }
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
