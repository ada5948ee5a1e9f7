//! Where audit records go: one structured log event per call (target `bulwark_gate::audit`),
//! the per-method counters, and for mutating calls the Postgres writer's queue.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bulwark_gate_policy::Method;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::audit::AuditRecord;
use crate::grpc;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct AuditSink {
    metrics: Arc<Metrics>,
    /// Mutating calls for Postgres; `None` when the gate runs without a database.
    store: Option<mpsc::Sender<AuditRecord>>,
}

impl AuditSink {
    pub fn new(metrics: Arc<Metrics>, store: Option<mpsc::Sender<AuditRecord>>) -> Self {
        AuditSink { metrics, store }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn emit(&self, record: AuditRecord, method: Option<&'static Method>) {
        tracing::info!(
            target: "bulwark_gate::audit",
            at = %record.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            identity = %record.identity,
            subject = %record.subject,
            jti = %record.jti,
            role = %record.role,
            method = %record.method,
            namespace = %record.namespace,
            workflow_id = %record.workflow_id,
            task_queue = %record.task_queue,
            decision = record.decision.as_str(),
            rule = %record.rule,
            grpc_status = record.grpc_status,
            latency_ms = record.latency_ms,
            mutating = record.mutating,
            "call"
        );
        self.metrics.call(
            method,
            record.decision,
            record.grpc_status,
            record.latency_ms,
        );
        if record.mutating {
            if let Some(tx) = &self.store {
                // Never wait on the database in a call's path: a full queue is counted (and
                // the record is still in the log stream above).
                if tx.try_send(record).is_err() {
                    self.metrics.store_queue_full();
                }
            }
        }
    }
}

/// The upstream response body, passed through frame by frame; when it ends (or the caller
/// goes away) the call's record is completed with the status from the trailers and emitted.
pub struct AuditBody {
    inner: tonic::body::Body,
    pending: Option<(AuditRecord, Option<&'static Method>, Instant, AuditSink)>,
    status: Option<i32>,
}

impl AuditBody {
    pub fn new(
        inner: tonic::body::Body,
        record: AuditRecord,
        method: &'static Method,
        started: Instant,
        headers_status: Option<i32>,
        sink: AuditSink,
    ) -> Self {
        AuditBody {
            inner,
            pending: Some((record, Some(method), started, sink)),
            status: headers_status,
        }
    }

    fn finish(&mut self) {
        if let Some((mut record, method, started, sink)) = self.pending.take() {
            record.grpc_status = self.status;
            record.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            sink.emit(record, method);
        }
    }
}

impl Body for AuditBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(t) = frame.trailers_ref() {
                    if let Some(s) = grpc::status_of(t) {
                        self.status = Some(s);
                    }
                }
            }
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Err(_))) => {
                if self.status.is_none() {
                    self.status = Some(grpc::code::UNAVAILABLE);
                }
                self.finish();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AuditBody {
    // The caller went away (or hyper saw the end without a last poll): still one record.
    fn drop(&mut self) {
        self.finish();
    }
}

impl std::fmt::Debug for AuditBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditBody")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}
