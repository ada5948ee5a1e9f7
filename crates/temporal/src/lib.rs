//! # bulwark-temporal — talking to Bulwark's secured Temporal
//!
//! * [`connect`]: mutual TLS (the identity's client certificate, re-read from disk when it is
//!   replaced; our CA; the server name) plus a bearer JWT from a [`bulwark_token_client::TokenManager`],
//!   applied to the live connection on every refresh. Failed attempts are retried with jittered
//!   backoff and reported with the address and cause.
//! * [`Client`]: the workflow surface `bulwark-api` uses — [`Client::start_workflow`],
//!   [`Client::describe`], [`Client::result`], [`Client::cancel`], [`Client::list`] — with JSON
//!   inputs and results; [`Client::sdk_client`] for building an SDK worker.
//! * [`StoreCredentialSource`]: serves the OAuth client credentials of a service from a
//!   `bulwark-secrets` store (the deployment secret store).
//!
//! ```no_run
//! # async fn demo(tokens: bulwark_token_client::TokenManager) -> Result<(), Box<dyn std::error::Error>> {
//! use bulwark_temporal::{connect, ConnectOptions, StartWorkflow};
//! use bulwark_workflows::workflow;
//! let opts = ConnectOptions::new("127.0.0.1:7233", "temporal",
//!     std::path::Path::new("/work/main/certs"), "api", "default", tokens);
//! let client = connect(opts).await?;
//! let started = client
//!     .start_workflow(StartWorkflow::new(workflow::GREETING, serde_json::json!({"name": "Ada"})))
//!     .await?;
//! let outcome = client
//!     .result(&started.workflow_id, Some(&started.run_id), std::time::Duration::from_secs(30))
//!     .await?;
//! # let _ = outcome; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "clap")]
pub mod cli;
pub mod client;
pub mod connect;
pub mod credentials;

pub use client::{
    Client, ClientError, FailureSummary, Poller, PollerKind, StartWorkflow, Started,
    WorkflowDescription, WorkflowOutcome, WorkflowPage, WorkflowStatus,
};
pub use connect::{ConnectError, ConnectOptions, ConnectRetry, Identity, connect};
pub use credentials::StoreCredentialSource;
