//! One audit record per call: on the log stream (target `bulwark_gate::audit`), in the metrics, and
//! for mutating calls in Postgres (`store`).

use time::OffsetDateTime;

/// What the gate decided about one call and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub at: OffsetDateTime,
    /// The caller certificate's URI SAN (empty when the handshake carried none).
    pub identity: String,
    /// The token's `sub` and `jti` (empty when there was no valid token).
    pub subject: String,
    pub jti: String,
    /// The policy role chosen, if any.
    pub role: String,
    /// `Service/Method`, e.g. `WorkflowService/StartWorkflowExecution`.
    pub method: String,
    pub namespace: String,
    pub workflow_id: String,
    pub task_queue: String,
    pub decision: Decision,
    /// The policy rule (or refusal reason) in words; never a token.
    pub rule: String,
    /// gRPC status code of the response, when known.
    pub grpc_status: Option<i32>,
    pub latency_ms: f64,
    /// Whether the method changes state (these also go to Postgres).
    pub mutating: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}
