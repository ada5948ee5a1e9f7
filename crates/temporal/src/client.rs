//! The small workflow client surface `bulwark-api` uses: start, describe, result, cancel,
//! list. Inputs and results are JSON (`json/plain` payloads, what the Rust SDK's default data
//! converter reads and writes).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bulwark_tls::Reloading;
use bulwark_token_client::TokenManager;
use serde::{Deserialize, Serialize};
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::{Code, IntoRequest, Status};
use temporalio_common::protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
    enums::v1::{
        EventType, HistoryEventFilterType, TaskQueueKind, TaskQueueType, WorkflowExecutionStatus,
        WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    },
    failure::v1::{Failure, failure::FailureInfo},
    history::v1::history_event::Attributes,
    taskqueue::v1::TaskQueue,
    workflow::v1::WorkflowExecutionInfo,
    workflowservice::v1::{
        DescribeTaskQueueRequest, DescribeWorkflowExecutionRequest,
        GetWorkflowExecutionHistoryRequest, ListWorkflowExecutionsRequest,
        RequestCancelWorkflowExecutionRequest, StartWorkflowExecutionRequest,
    },
};
use time::OffsetDateTime;

use bulwark_workflows::DEFAULT_TASK_QUEUE;

const JSON_ENCODING: &[u8] = b"json/plain";
const NULL_ENCODING: &[u8] = b"binary/null";

/// A connected Temporal client (see [`crate::connect`]). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: temporalio_client::Client,
    namespace: String,
    identity: String,
    tokens: TokenManager,
    cert: Arc<Reloading>,
    _watcher: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("namespace", &self.namespace)
            .field("identity", &self.identity)
            .field("certificate", &self.cert.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Errors of the workflow client surface. Messages name workflow ids and the server's reason;
/// they never contain inputs, results or credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A workflow with this id is already running. `run_id` is the running run.
    #[error("workflow `{workflow_id}` is already running (run `{run_id}`)")]
    AlreadyStarted {
        /// The workflow id.
        workflow_id: String,
        /// The run currently executing.
        run_id: String,
    },
    /// No such workflow (or run).
    #[error("workflow `{workflow_id}` not found")]
    NotFound {
        /// The workflow id.
        workflow_id: String,
    },
    /// The input could not be encoded or the request is malformed.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// Temporal refused the credentials (token or certificate).
    #[error("Temporal refused the request ({code:?}): {message}")]
    Unauthorized {
        /// gRPC status code.
        code: Code,
        /// Server message.
        message: String,
    },
    /// Temporal is unreachable or answered with an unexpected error.
    #[error("Temporal request `{operation}` failed ({code:?}): {message}")]
    Rpc {
        /// What was being done.
        operation: &'static str,
        /// gRPC status code.
        code: Code,
        /// Server message.
        message: String,
    },
    /// A result payload could not be decoded as JSON.
    #[error("workflow `{workflow_id}`: result is not JSON: {reason}")]
    Decode {
        /// The workflow id.
        workflow_id: String,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// Temporal shed the request under its rate limits (`ResourceExhausted`, e.g. the
    /// namespace's visibility RPS): the caller should slow down, nothing is broken.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            ClientError::Rpc {
                code: Code::ResourceExhausted,
                ..
            }
        )
    }

    fn rpc(operation: &'static str, workflow_id: Option<&str>, status: Status) -> Self {
        match status.code() {
            Code::NotFound if workflow_id.is_some() => ClientError::NotFound {
                workflow_id: workflow_id.unwrap_or_default().to_owned(),
            },
            Code::Unauthenticated | Code::PermissionDenied => ClientError::Unauthorized {
                code: status.code(),
                message: status.message().to_owned(),
            },
            Code::InvalidArgument => ClientError::InvalidArgument(status.message().to_owned()),
            code => ClientError::Rpc {
                operation,
                code,
                message: status.message().to_owned(),
            },
        }
    }
}

/// What to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartWorkflow {
    /// Workflow type name, e.g. [`bulwark_workflows::workflow::GREETING`].
    pub workflow_type: String,
    /// Workflow id; a random `<type>-<uuid>` when absent.
    pub workflow_id: Option<String>,
    /// Task queue; [`DEFAULT_TASK_QUEUE`] when absent.
    pub task_queue: Option<String>,
    /// The single JSON argument of the workflow.
    pub input: serde_json::Value,
    /// Workflow execution timeout (whole chain of runs); none by default.
    pub execution_timeout: Option<Duration>,
}

impl StartWorkflow {
    /// A start of `workflow_type` with `input` and defaults for everything else.
    #[must_use]
    pub fn new(workflow_type: impl Into<String>, input: serde_json::Value) -> Self {
        Self {
            workflow_type: workflow_type.into(),
            workflow_id: None,
            task_queue: None,
            input,
            execution_timeout: None,
        }
    }

    /// Sets the workflow id.
    #[must_use]
    pub fn id(mut self, workflow_id: impl Into<String>) -> Self {
        self.workflow_id = Some(workflow_id.into());
        self
    }

    /// Sets the task queue.
    #[must_use]
    pub fn task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.task_queue = Some(task_queue.into());
        self
    }
}

/// A started workflow run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
}

/// Workflow execution status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowStatus {
    /// Still running.
    Running,
    /// Completed successfully.
    Completed,
    /// Failed.
    Failed,
    /// Cancelled.
    Canceled,
    /// Terminated.
    Terminated,
    /// Continued as a new run.
    ContinuedAsNew,
    /// Timed out.
    TimedOut,
    /// Paused (newer servers).
    Paused,
    /// Not reported by the server.
    Unspecified,
}

impl WorkflowStatus {
    /// The value of Temporal's `ExecutionStatus` search attribute.
    #[must_use]
    pub fn visibility_name(self) -> &'static str {
        match self {
            WorkflowStatus::Running => "Running",
            WorkflowStatus::Completed => "Completed",
            WorkflowStatus::Failed => "Failed",
            WorkflowStatus::Canceled => "Canceled",
            WorkflowStatus::Terminated => "Terminated",
            WorkflowStatus::ContinuedAsNew => "ContinuedAsNew",
            WorkflowStatus::TimedOut => "TimedOut",
            WorkflowStatus::Paused => "Paused",
            WorkflowStatus::Unspecified => "Unspecified",
        }
    }

    /// Parses `running`, `Running`, `completed`, ... (case-insensitive, `_` optional).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let norm: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match norm.as_str() {
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "canceled" | "cancelled" => Self::Canceled,
            "terminated" => Self::Terminated,
            "continuedasnew" => Self::ContinuedAsNew,
            "timedout" => Self::TimedOut,
            "paused" => Self::Paused,
            _ => return None,
        })
    }

    fn from_proto(v: i32) -> Self {
        match WorkflowExecutionStatus::try_from(v) {
            Ok(WorkflowExecutionStatus::Running) => Self::Running,
            Ok(WorkflowExecutionStatus::Completed) => Self::Completed,
            Ok(WorkflowExecutionStatus::Failed) => Self::Failed,
            Ok(WorkflowExecutionStatus::Canceled) => Self::Canceled,
            Ok(WorkflowExecutionStatus::Terminated) => Self::Terminated,
            Ok(WorkflowExecutionStatus::ContinuedAsNew) => Self::ContinuedAsNew,
            Ok(WorkflowExecutionStatus::TimedOut) => Self::TimedOut,
            Ok(WorkflowExecutionStatus::Paused) => Self::Paused,
            _ => Self::Unspecified,
        }
    }
}

impl fmt::Display for WorkflowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.visibility_name())
    }
}

/// What [`Client::describe`] and [`Client::list`] report about a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowDescription {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
    /// Workflow type name.
    pub workflow_type: String,
    /// Status.
    pub status: WorkflowStatus,
    /// Task queue.
    pub task_queue: String,
    /// Start time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    /// Close time (closed runs only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub close_time: Option<OffsetDateTime>,
    /// Number of history events.
    pub history_length: i64,
}

impl WorkflowDescription {
    fn from_info(info: WorkflowExecutionInfo) -> Self {
        let exec = info.execution.unwrap_or_default();
        Self {
            workflow_id: exec.workflow_id,
            run_id: exec.run_id,
            workflow_type: info.r#type.map(|t| t.name).unwrap_or_default(),
            status: WorkflowStatus::from_proto(info.status),
            task_queue: info.task_queue,
            start_time: info.start_time.and_then(|t| timestamp(t.seconds, t.nanos)),
            close_time: info.close_time.and_then(|t| timestamp(t.seconds, t.nanos)),
            history_length: info.history_length,
        }
    }
}

fn timestamp(seconds: i64, nanos: i32) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    Some(t + time::Duration::nanoseconds(i64::from(nanos)))
}

/// A failure as recorded by Temporal, flattened for callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureSummary {
    /// Top-level message (e.g. `Activity task failed`).
    pub message: String,
    /// The innermost application failure's type (e.g. `CredentialNotFound`), if any.
    pub failure_type: Option<String>,
    /// The innermost application failure's message, if any.
    pub cause: Option<String>,
    /// Whether the innermost application failure was marked non-retryable.
    pub non_retryable: bool,
}

impl FailureSummary {
    /// Flattens a failure chain.
    #[must_use]
    pub fn from_failure(f: &Failure) -> Self {
        let mut out = Self {
            message: f.message.clone(),
            failure_type: None,
            cause: None,
            non_retryable: false,
        };
        let mut cur = Some(f);
        while let Some(node) = cur {
            if let Some(FailureInfo::ApplicationFailureInfo(app)) = &node.failure_info {
                out.failure_type = (!app.r#type.is_empty()).then(|| app.r#type.clone());
                out.cause = Some(node.message.clone());
                out.non_retryable = app.non_retryable;
            }
            cur = node.cause.as_deref();
        }
        out
    }
}

/// The outcome [`Client::result`] observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WorkflowOutcome {
    /// Completed with this JSON result.
    Completed {
        /// The result.
        result: serde_json::Value,
    },
    /// Failed.
    Failed {
        /// The failure.
        failure: FailureSummary,
    },
    /// Cancelled.
    Canceled,
    /// Terminated.
    Terminated {
        /// The termination reason.
        reason: String,
    },
    /// Timed out.
    TimedOut,
    /// Still running when the wait timed out.
    Running,
}

/// A page of [`Client::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowPage {
    /// Runs on this page, newest first.
    pub workflows: Vec<WorkflowDescription>,
    /// Opaque token for the next page (hex), absent on the last page.
    pub next_page_token: Option<String>,
}

/// A poller the server has seen on a task queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Poller {
    /// The worker's identity.
    pub identity: String,
    /// When the server last saw a poll from it.
    pub last_access: Option<OffsetDateTime>,
}

/// Which kind of task a task-queue poller polls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollerKind {
    /// Workflow tasks.
    Workflow,
    /// Activity tasks.
    Activity,
}

fn json_payload(value: &serde_json::Value) -> Result<Payload, ClientError> {
    let data = serde_json::to_vec(value)
        .map_err(|e| ClientError::InvalidArgument(format!("input is not serializable: {e}")))?;
    Ok(Payload {
        metadata: [("encoding".to_owned(), JSON_ENCODING.to_vec())]
            .into_iter()
            .collect(),
        data,
        ..Default::default()
    })
}

fn decode_payload(
    workflow_id: &str,
    p: Option<&Payload>,
) -> Result<serde_json::Value, ClientError> {
    let Some(p) = p else {
        return Ok(serde_json::Value::Null);
    };
    match p.metadata.get("encoding").map(Vec::as_slice) {
        Some(JSON_ENCODING) => serde_json::from_slice(&p.data).map_err(|e| ClientError::Decode {
            workflow_id: workflow_id.to_owned(),
            reason: e.to_string(),
        }),
        Some(NULL_ENCODING) | None => Ok(serde_json::Value::Null),
        Some(other) => Err(ClientError::Decode {
            workflow_id: workflow_id.to_owned(),
            reason: format!(
                "unsupported payload encoding `{}`",
                String::from_utf8_lossy(other)
            ),
        }),
    }
}

fn execution(workflow_id: &str, run_id: Option<&str>) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: workflow_id.to_owned(),
        run_id: run_id.unwrap_or_default().to_owned(),
    })
}

/// Quotes a value for a visibility query.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Client {
    pub(crate) fn new(
        inner: temporalio_client::Client,
        namespace: String,
        identity: String,
        tokens: TokenManager,
        cert: Arc<Reloading>,
        watcher: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self {
            inner,
            namespace,
            identity,
            tokens,
            cert,
            _watcher: Arc::new(AbortOnDrop(watcher)),
        }
    }

    /// The SDK client (e.g. to build a `temporalio_sdk::Worker`).
    #[must_use]
    pub fn sdk_client(&self) -> &temporalio_client::Client {
        &self.inner
    }

    /// The namespace.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The identity string this client reports to Temporal.
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The token manager feeding this client's bearer token.
    #[must_use]
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    /// SHA-256 fingerprint of the client certificate currently presented.
    #[must_use]
    pub fn certificate_fingerprint(&self) -> String {
        self.cert.fingerprint()
    }

    fn svc(&self) -> Box<dyn WorkflowService> {
        self.inner.connection().workflow_service()
    }

    /// Starts a workflow.
    ///
    /// Existing id: if a run with this id is **running**, fails with
    /// [`ClientError::AlreadyStarted`] carrying the running run's id (nothing is started).
    /// If earlier runs with the id are closed, a new run is started (id reuse allowed).
    pub async fn start_workflow(&self, start: StartWorkflow) -> Result<Started, ClientError> {
        if start.workflow_type.trim().is_empty() {
            return Err(ClientError::InvalidArgument(
                "workflow type is empty".into(),
            ));
        }
        let workflow_id = start.workflow_id.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                start.workflow_type.to_ascii_lowercase(),
                uuid::Uuid::new_v4()
            )
        });
        let task_queue = start
            .task_queue
            .clone()
            .unwrap_or_else(|| DEFAULT_TASK_QUEUE.to_owned());
        let req = StartWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            workflow_id: workflow_id.clone(),
            workflow_type: Some(WorkflowType {
                name: start.workflow_type.clone(),
            }),
            task_queue: Some(TaskQueue {
                name: task_queue,
                kind: TaskQueueKind::Normal as i32,
                ..Default::default()
            }),
            input: Some(Payloads {
                payloads: vec![json_payload(&start.input)?],
            }),
            workflow_execution_timeout: start
                .execution_timeout
                .and_then(|d| prost_wkt_types::Duration::try_from(d).ok()),
            identity: self.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            workflow_id_reuse_policy: WorkflowIdReusePolicy::AllowDuplicate as i32,
            workflow_id_conflict_policy: WorkflowIdConflictPolicy::Fail as i32,
            ..Default::default()
        };
        match self
            .svc()
            .start_workflow_execution(req.into_request())
            .await
        {
            Ok(resp) => Ok(Started {
                workflow_id,
                run_id: resp.into_inner().run_id,
            }),
            Err(status) if status.code() == Code::AlreadyExists => {
                let run_id = match self.describe(&workflow_id, None).await {
                    Ok(d) => d.run_id,
                    Err(_) => String::new(),
                };
                Err(ClientError::AlreadyStarted {
                    workflow_id,
                    run_id,
                })
            }
            Err(status) => Err(ClientError::rpc("start workflow", None, status)),
        }
    }

    /// Describes a run (the latest run of `workflow_id` when `run_id` is `None`).
    pub async fn describe(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
    ) -> Result<WorkflowDescription, ClientError> {
        let req = DescribeWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            execution: execution(workflow_id, run_id),
        };
        let resp = self
            .svc()
            .describe_workflow_execution(req.into_request())
            .await
            .map_err(|s| ClientError::rpc("describe workflow", Some(workflow_id), s))?
            .into_inner();
        let info = resp
            .workflow_execution_info
            .ok_or_else(|| ClientError::NotFound {
                workflow_id: workflow_id.to_owned(),
            })?;
        Ok(WorkflowDescription::from_info(info))
    }

    /// Waits up to `timeout` for the run to close and returns its outcome, or
    /// [`WorkflowOutcome::Running`] if it is still running then. Follows continue-as-new.
    pub async fn result(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        timeout: Duration,
    ) -> Result<WorkflowOutcome, ClientError> {
        match tokio::time::timeout(timeout, self.wait_for_close(workflow_id, run_id)).await {
            Ok(r) => r,
            Err(_) => Ok(WorkflowOutcome::Running),
        }
    }

    async fn wait_for_close(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
    ) -> Result<WorkflowOutcome, ClientError> {
        let mut run_id = run_id.unwrap_or_default().to_owned();
        let mut page_token = Vec::new();
        loop {
            let req = GetWorkflowExecutionHistoryRequest {
                namespace: self.namespace.clone(),
                execution: execution(workflow_id, Some(&run_id)),
                next_page_token: page_token.clone(),
                wait_new_event: true,
                history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                skip_archival: true,
                ..Default::default()
            };
            let resp = self
                .svc()
                .get_workflow_execution_history(req.into_request())
                .await
                .map_err(|s| ClientError::rpc("get workflow result", Some(workflow_id), s))?
                .into_inner();
            let event = resp.history.and_then(|h| h.events.into_iter().last());
            let Some(event) = event else {
                // Long poll ended without a close event: poll again.
                page_token = resp.next_page_token;
                continue;
            };
            page_token.clear();
            let attrs = event.attributes;
            let outcome = match attrs {
                Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                    if !a.new_execution_run_id.is_empty() {
                        run_id = a.new_execution_run_id;
                        continue;
                    }
                    let p = a.result.as_ref().and_then(|p| p.payloads.first());
                    WorkflowOutcome::Completed {
                        result: decode_payload(workflow_id, p)?,
                    }
                }
                Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                    if !a.new_execution_run_id.is_empty() {
                        run_id = a.new_execution_run_id;
                        continue;
                    }
                    WorkflowOutcome::Failed {
                        failure: a
                            .failure
                            .as_ref()
                            .map(FailureSummary::from_failure)
                            .unwrap_or(FailureSummary {
                                message: "workflow failed".into(),
                                failure_type: None,
                                cause: None,
                                non_retryable: false,
                            }),
                    }
                }
                Some(Attributes::WorkflowExecutionCanceledEventAttributes(_)) => {
                    WorkflowOutcome::Canceled
                }
                Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => {
                    WorkflowOutcome::Terminated { reason: a.reason }
                }
                Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => {
                    if !a.new_execution_run_id.is_empty() {
                        run_id = a.new_execution_run_id;
                        continue;
                    }
                    WorkflowOutcome::TimedOut
                }
                Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a)) => {
                    run_id = a.new_execution_run_id;
                    continue;
                }
                _ => {
                    return Err(ClientError::Rpc {
                        operation: "get workflow result",
                        code: Code::Internal,
                        message: format!(
                            "unexpected close event {:?}",
                            EventType::try_from(event.event_type).unwrap_or(EventType::Unspecified)
                        ),
                    });
                }
            };
            return Ok(outcome);
        }
    }

    /// Requests cancellation of the run (the latest run when `run_id` is `None`). Cancelling a
    /// run that already closed fails with [`ClientError::NotFound`] or an `Rpc` error with code
    /// `FailedPrecondition`... the server decides; cancelling twice is accepted.
    pub async fn cancel(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        reason: &str,
    ) -> Result<(), ClientError> {
        let req = RequestCancelWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            workflow_execution: execution(workflow_id, run_id),
            identity: self.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            reason: reason.to_owned(),
            ..Default::default()
        };
        self.svc()
            .request_cancel_workflow_execution(req.into_request())
            .await
            .map_err(|s| ClientError::rpc("cancel workflow", Some(workflow_id), s))?;
        Ok(())
    }

    /// Lists runs through the visibility store, newest first, optionally only those with
    /// `status` and/or of `workflow_type`. `page_size` is capped at 1000; pass the previous
    /// page's `next_page_token` to continue. Visibility is eventually consistent: a run started
    /// a moment ago may not be listed yet.
    pub async fn list(
        &self,
        status: Option<WorkflowStatus>,
        workflow_type: Option<&str>,
        page_size: u32,
        next_page_token: Option<&str>,
    ) -> Result<WorkflowPage, ClientError> {
        let mut clauses = Vec::new();
        if let Some(s) = status {
            clauses.push(format!("ExecutionStatus = {}", quote(s.visibility_name())));
        }
        if let Some(t) = workflow_type {
            clauses.push(format!("WorkflowType = {}", quote(t)));
        }
        let token = match next_page_token {
            Some(t) => hex_decode(t)
                .ok_or_else(|| ClientError::InvalidArgument("malformed page token".into()))?,
            None => Vec::new(),
        };
        let req = ListWorkflowExecutionsRequest {
            namespace: self.namespace.clone(),
            page_size: i32::try_from(page_size.clamp(1, 1000)).unwrap_or(1000),
            next_page_token: token,
            query: clauses.join(" AND "),
        };
        let resp = self
            .svc()
            .list_workflow_executions(req.into_request())
            .await
            .map_err(|s| ClientError::rpc("list workflows", None, s))?
            .into_inner();
        Ok(WorkflowPage {
            workflows: resp
                .executions
                .into_iter()
                .map(WorkflowDescription::from_info)
                .collect(),
            next_page_token: (!resp.next_page_token.is_empty())
                .then(|| hex_encode(&resp.next_page_token)),
        })
    }

    /// Pollers the server currently reports on `task_queue` for `kind` (the server forgets a
    /// poller a few minutes after its last poll).
    pub async fn task_queue_pollers(
        &self,
        task_queue: &str,
        kind: PollerKind,
    ) -> Result<Vec<Poller>, ClientError> {
        let req = DescribeTaskQueueRequest {
            namespace: self.namespace.clone(),
            task_queue: Some(TaskQueue {
                name: task_queue.to_owned(),
                kind: TaskQueueKind::Normal as i32,
                ..Default::default()
            }),
            task_queue_type: match kind {
                PollerKind::Workflow => TaskQueueType::Workflow as i32,
                PollerKind::Activity => TaskQueueType::Activity as i32,
            },
            ..Default::default()
        };
        let resp = self
            .svc()
            .describe_task_queue(req.into_request())
            .await
            .map_err(|s| ClientError::rpc("describe task queue", None, s))?
            .into_inner();
        Ok(resp
            .pollers
            .into_iter()
            .map(|p| Poller {
                identity: p.identity,
                last_access: p
                    .last_access_time
                    .and_then(|t| timestamp(t.seconds, t.nanos)),
            })
            .collect())
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use temporalio_common::protos::temporal::api::failure::v1::{
        ActivityFailureInfo, ApplicationFailureInfo,
    };

    #[test]
    fn status_parsing_and_names() {
        assert_eq!(
            WorkflowStatus::parse("running"),
            Some(WorkflowStatus::Running)
        );
        assert_eq!(
            WorkflowStatus::parse("Timed_Out"),
            Some(WorkflowStatus::TimedOut)
        );
        assert_eq!(
            WorkflowStatus::parse("cancelled"),
            Some(WorkflowStatus::Canceled)
        );
        assert_eq!(WorkflowStatus::parse("bogus"), None);
        assert_eq!(
            WorkflowStatus::ContinuedAsNew.visibility_name(),
            "ContinuedAsNew"
        );
    }

    #[test]
    fn failure_chain_is_flattened_to_the_application_failure() {
        let f = Failure {
            message: "Activity task failed".into(),
            failure_info: Some(FailureInfo::ActivityFailureInfo(
                ActivityFailureInfo::default(),
            )),
            cause: Some(Box::new(Failure {
                message: "credential `nope` (type `basic`, store `default`): not found".into(),
                failure_info: Some(FailureInfo::ApplicationFailureInfo(
                    ApplicationFailureInfo {
                        r#type: "CredentialNotFound".into(),
                        non_retryable: true,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })),
            ..Default::default()
        };
        let s = FailureSummary::from_failure(&f);
        assert_eq!(s.failure_type.as_deref(), Some("CredentialNotFound"));
        assert!(s.non_retryable);
        assert!(s.cause.unwrap().contains("nope"));
        assert_eq!(s.message, "Activity task failed");
    }

    #[test]
    fn payloads_round_trip_and_tokens() {
        let v = serde_json::json!({"name": "Ada"});
        let p = json_payload(&v).unwrap();
        assert_eq!(decode_payload("w", Some(&p)).unwrap(), v);
        assert_eq!(decode_payload("w", None).unwrap(), serde_json::Value::Null);
        let t = hex_encode(&[0, 1, 254, 255]);
        assert_eq!(hex_decode(&t).unwrap(), vec![0, 1, 254, 255]);
        assert!(hex_decode("abc").is_none());
        assert!(hex_decode("zz").is_none());
        assert_eq!(quote("a'b"), "'a\\'b'");
    }
}
