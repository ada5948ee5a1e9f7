//! What the API needs from Temporal, as a narrow trait: the HTTP layer is tested against it
//! and the binary plugs in the real client.

use std::time::Duration;

use serde::Serialize;

/// Workflow status, as exposed by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Completed,
    Failed,
    Canceled,
    Terminated,
    ContinuedAsNew,
    TimedOut,
}

impl Status {
    /// The wire names, in declaration order (the OpenAPI enum and the refusal message).
    pub const NAMES: [&'static str; 7] = [
        "running",
        "completed",
        "failed",
        "canceled",
        "terminated",
        "continued_as_new",
        "timed_out",
    ];
}

impl std::str::FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| ())
    }
}

#[derive(Debug, Clone)]
pub struct StartRequest {
    pub workflow_type: String,
    pub workflow_id: String,
    pub task_queue: String,
    pub input: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub workflow_id: String,
    pub run_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_time: Option<String>,
}

/// The outcome of waiting for a result.
#[derive(Debug, Clone)]
pub enum Outcome {
    Completed(serde_json::Value),
    /// A failure's type and message (already free of secrets: activities report references).
    Failed {
        failure_type: String,
        message: String,
    },
    Other(Status),
    StillRunning,
}

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    #[error("workflow not found")]
    NotFound,
    #[error("a workflow with this id is already running")]
    AlreadyStarted { run_id: String },
    /// Temporal refused the request as malformed; the message is Temporal's and safe to show
    /// (it describes the request, which the caller sent).
    #[error("{0}")]
    Invalid(String),
    /// Temporal shed the call under its rate limits; the caller should retry shortly.
    #[error("Temporal is rate limiting this namespace")]
    RateLimited,
    /// Temporal refused or could not be reached; the message is logged, never shown.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait WorkflowBackend: Send + Sync + std::fmt::Debug + 'static {
    async fn start(&self, req: StartRequest) -> Result<Started, BackendError>;
    async fn describe(&self, workflow_id: &str) -> Result<Description, BackendError>;
    async fn result(&self, workflow_id: &str, wait: Duration) -> Result<Outcome, BackendError>;
    async fn cancel(&self, workflow_id: &str) -> Result<(), BackendError>;
    async fn list(
        &self,
        status: Option<Status>,
        limit: usize,
    ) -> Result<Vec<Description>, BackendError>;
    /// Temporal reachable with the current credentials.
    async fn ready(&self) -> Result<(), String>;
}
