//! The real backend: bulwark-temporal's client (mTLS + short-lived JWT).

use std::time::Duration;

use bulwark_temporal::{
    Client, ClientError, StartWorkflow, WorkflowDescription, WorkflowOutcome, WorkflowStatus,
};

use crate::backend::{
    BackendError, Description, Outcome, StartRequest, Started, Status, WorkflowBackend,
};

#[derive(Debug)]
pub struct TemporalBackend {
    pub client: Client,
}

fn map_err(e: ClientError) -> BackendError {
    if e.is_rate_limited() {
        return BackendError::RateLimited;
    }
    match e {
        ClientError::NotFound { .. } => BackendError::NotFound,
        ClientError::AlreadyStarted { run_id, .. } => BackendError::AlreadyStarted { run_id },
        ClientError::InvalidArgument(m) => BackendError::Invalid(m),
        other => BackendError::Unavailable(other.to_string()),
    }
}

fn status(s: WorkflowStatus) -> Status {
    match s {
        WorkflowStatus::Completed => Status::Completed,
        WorkflowStatus::Failed => Status::Failed,
        WorkflowStatus::Canceled => Status::Canceled,
        WorkflowStatus::Terminated => Status::Terminated,
        WorkflowStatus::ContinuedAsNew => Status::ContinuedAsNew,
        WorkflowStatus::TimedOut => Status::TimedOut,
        _ => Status::Running,
    }
}

fn describe(d: WorkflowDescription) -> Description {
    let rfc = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    };
    Description {
        workflow_id: d.workflow_id,
        run_id: d.run_id,
        workflow_type: d.workflow_type,
        status: status(d.status),
        start_time: rfc(d.start_time),
        close_time: rfc(d.close_time),
    }
}

fn visibility(s: Status) -> WorkflowStatus {
    match s {
        Status::Running => WorkflowStatus::Running,
        Status::Completed => WorkflowStatus::Completed,
        Status::Failed => WorkflowStatus::Failed,
        Status::Canceled => WorkflowStatus::Canceled,
        Status::Terminated => WorkflowStatus::Terminated,
        Status::ContinuedAsNew => WorkflowStatus::ContinuedAsNew,
        Status::TimedOut => WorkflowStatus::TimedOut,
    }
}

#[async_trait::async_trait]
impl WorkflowBackend for TemporalBackend {
    async fn start(&self, req: StartRequest) -> Result<Started, BackendError> {
        let s = self
            .client
            .start_workflow(
                StartWorkflow::new(req.workflow_type, req.input)
                    .id(req.workflow_id)
                    .task_queue(req.task_queue),
            )
            .await
            .map_err(map_err)?;
        Ok(Started {
            workflow_id: s.workflow_id,
            run_id: s.run_id,
        })
    }

    async fn describe(&self, workflow_id: &str) -> Result<Description, BackendError> {
        self.client
            .describe(workflow_id, None)
            .await
            .map(describe)
            .map_err(map_err)
    }

    async fn result(&self, workflow_id: &str, wait: Duration) -> Result<Outcome, BackendError> {
        Ok(
            match self
                .client
                .result(workflow_id, None, wait)
                .await
                .map_err(map_err)?
            {
                WorkflowOutcome::Completed { result } => Outcome::Completed(result),
                WorkflowOutcome::Failed { failure } => Outcome::Failed {
                    failure_type: failure
                        .failure_type
                        .unwrap_or_else(|| "WorkflowFailed".into()),
                    message: failure.cause.unwrap_or(failure.message),
                },
                WorkflowOutcome::Canceled => Outcome::Other(Status::Canceled),
                WorkflowOutcome::Terminated { .. } => Outcome::Other(Status::Terminated),
                WorkflowOutcome::TimedOut => Outcome::Other(Status::TimedOut),
                WorkflowOutcome::Running => Outcome::StillRunning,
            },
        )
    }

    async fn cancel(&self, workflow_id: &str) -> Result<(), BackendError> {
        self.client
            .cancel(workflow_id, None, "cancelled through bulwark-api")
            .await
            .map_err(map_err)
    }

    async fn list(
        &self,
        status: Option<Status>,
        limit: usize,
    ) -> Result<Vec<Description>, BackendError> {
        let page_size = u32::try_from(limit).unwrap_or(u32::MAX);
        let page = self
            .client
            .list(status.map(visibility), None, page_size, None)
            .await
            .map_err(map_err)?;
        Ok(page.workflows.into_iter().map(describe).collect())
    }

    async fn ready(&self) -> Result<(), String> {
        if !self.client.tokens().is_token_valid() {
            return Err("no valid access token from bulwark-control".into());
        }
        // A cheap authorized call proves the certificate and the token are both accepted.
        self.client
            .list(Some(WorkflowStatus::Running), None, 1, None)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                ClientError::Unauthorized { .. } => "Temporal refused our credentials".to_owned(),
                _ => "Temporal unreachable".to_owned(),
            })
    }
}
