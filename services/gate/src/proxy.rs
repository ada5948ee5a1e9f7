//! One call through the gate: who (certificate, bound token), what (the method and the facts
//! read from the request message), whether (the policy), then forward and audit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use bulwark_gate_policy::{Caller, Catalog, Facts, Method, Service};
use bulwark_serve::PeerCertificate;
use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body_util::{BodyExt, Full, Limited};
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::audit::{AuditRecord, Decision};
use crate::caller::{self, Binding, Keys, PeerCache};
use crate::grpc::{self, code};
use crate::reload::Policies;
use crate::sink::{AuditBody, AuditSink};

/// Everything a call needs; shared by all connections.
#[derive(Debug)]
pub struct Gate {
    pub keys: Keys,
    pub policies: Policies,
    pub peers: PeerCache,
    pub binding: Binding,
    pub upstream: tonic::transport::Channel,
    pub audit: AuditSink,
    /// Largest request message accepted (bytes, prefix included).
    pub max_request_bytes: usize,
    /// How long a caller may take to send its request body.
    pub body_timeout: Duration,
    /// Request bodies being read at once, gate-wide: with `max_request_bytes` this bounds the
    /// memory requests can hold before they are judged (256 x 4 MiB = 1 GiB at most, in
    /// practice a few KiB each). A read waits for a slot within `body_timeout`.
    pub body_reads: tokio::sync::Semaphore,
}

pub fn app(gate: Arc<Gate>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(gate)
}

/// A refusal: the status and a message for the caller, with the rule for the audit.
struct Refusal {
    code: i32,
    message: String,
}

impl Refusal {
    fn new(code: i32, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

async fn handle(State(gate): State<Arc<Gate>>, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut record = AuditRecord {
        at: OffsetDateTime::now_utc(),
        identity: String::new(),
        subject: String::new(),
        jti: String::new(),
        role: String::new(),
        method: String::new(),
        namespace: String::new(),
        workflow_id: String::new(),
        task_queue: String::new(),
        decision: Decision::Deny,
        rule: String::new(),
        grpc_status: None,
        latency_ms: 0.0,
        mutating: false,
    };
    let mut known = None;
    match authorize(&gate, req, &mut record, &mut known).await {
        Ok((method, forward)) => {
            record.decision = Decision::Allow;
            forward_call(&gate, method, forward, record, started).await
        }
        Err(refusal) => {
            record.decision = Decision::Deny;
            record.grpc_status = Some(refusal.code);
            if record.rule.is_empty() {
                record.rule = refusal.message.clone();
            }
            record.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            gate.audit.emit(record, known);
            grpc::status(refusal.code, &format!("bulwark-gate: {}", refusal.message))
        }
    }
}

/// Decides a call; on success returns the method and the request to forward (its body read).
async fn authorize(
    gate: &Gate,
    req: Request,
    record: &mut AuditRecord,
    known: &mut Option<&'static Method>,
) -> Result<(&'static Method, http::Request<Bytes>), Refusal> {
    let path = req.uri().path().to_owned();
    // Bounded: the path is caller input and ends up in a log line.
    record.method = path.trim_start_matches('/').chars().take(200).collect();
    let peer = req
        .extensions()
        .get::<PeerCertificate>()
        .map(|der| gate.peers.get(&der.0))
        .ok_or_else(|| Refusal::new(code::UNAUTHENTICATED, "no client certificate"))?;
    record.identity = peer.uri.clone();
    // The body first, whatever the decision: a refusal sent before the request is read
    // would end in a stream reset that some clients report instead of the refusal.
    let (parts, body) = req.into_parts();
    let body = tokio::time::timeout(gate.body_timeout, async {
        let _slot = gate.body_reads.acquire().await;
        Limited::new(body, gate.max_request_bytes).collect().await
    })
    .await
    .map_err(|_| {
        Refusal::new(
            code::INVALID_ARGUMENT,
            "the request body did not arrive in time",
        )
    })?
    .map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            Refusal::new(
                code::RESOURCE_EXHAUSTED,
                format!(
                    "the request is larger than the gate's limit of {} bytes",
                    gate.max_request_bytes
                ),
            )
        } else {
            Refusal::new(code::INVALID_ARGUMENT, "the request body could not be read")
        }
    })?
    .to_bytes();

    let Some(method) = Catalog::lookup(&path) else {
        return Err(Refusal::new(
            code::PERMISSION_DENIED,
            format!(
                "{} is not a method the gate knows; unknown methods are refused",
                record.method
            ),
        ));
    };
    *known = Some(method);
    record.method = method.short();
    record.mutating = method.mutating;
    if parts.method != http::Method::POST {
        return Err(Refusal::new(
            code::UNIMPLEMENTED,
            "gRPC calls are POST requests",
        ));
    }

    // Health checks and GetSystemInfo carry no token (the SDKs call GetSystemInfo before
    // they send one, and Temporal answers both without authorization): anyone holding one
    // of our client certificates may ask. Everything else needs a bound token.
    let tokenless = matches!(method.service, Service::Health) || method.name == "GetSystemInfo";
    let claims = if tokenless {
        None
    } else {
        let token = caller::bearer(parts.headers.get(http::header::AUTHORIZATION))
            .map_err(|e| Refusal::new(code::UNAUTHENTICATED, e.to_string()))?;
        let claims = gate
            .keys
            .verify(token, OffsetDateTime::now_utc())
            .map_err(|e| Refusal::new(code::UNAUTHENTICATED, e.to_string()))?;
        record.subject = claims.sub.clone();
        record.jti = claims.jti.clone();
        // A token used with a certificate it is not bound to does not authenticate this
        // caller (RFC 8705: invalid_token), whatever it would have been allowed.
        caller::check_binding(&claims, &peer, gate.binding)
            .map_err(|e| Refusal::new(code::UNAUTHENTICATED, e.to_string()))?;
        Some(claims)
    };

    if let Some(claims) = claims {
        let encoding = parts
            .headers
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok());
        let message = grpc::message(&body, encoding, gate.max_request_bytes).map_err(|e| {
            let code = match e {
                grpc::FrameError::Encoding(_) => code::UNIMPLEMENTED,
                grpc::FrameError::TooLarge(_) => code::RESOURCE_EXHAUSTED,
                _ => code::INVALID_ARGUMENT,
            };
            Refusal::new(code, e.to_string())
        })?;
        let facts = method
            .facts(&message)
            .map_err(|e| Refusal::new(code::INVALID_ARGUMENT, format!("{}: {e}", record.method)))?;
        fill(record, &facts);
        let scopes: Vec<String> = claims.scope.split_whitespace().map(str::to_owned).collect();
        let policy = gate.policies.current();
        let decision = policy.decide(
            &Caller {
                identity: peer.identity(),
                scopes: &scopes,
            },
            method,
            &facts,
        );
        record.role = decision.role.clone().unwrap_or_default();
        record.rule = decision.rule.clone();
        if !decision.allowed {
            // Every refusal names the method, also when the rule is about a queue or a role.
            let message = if decision.rule.contains(method.name) {
                decision.rule
            } else {
                format!("{}: {}", record.method, decision.rule)
            };
            return Err(Refusal::new(code::PERMISSION_DENIED, message));
        }
    } else {
        record.rule = "health checks and GetSystemInfo need only a client certificate".into();
    }
    Ok((method, http::Request::from_parts(parts, body)))
}

fn fill(record: &mut AuditRecord, facts: &Facts) {
    let bounded = |v: &Option<String>| {
        v.as_deref()
            .unwrap_or("")
            .chars()
            .take(400)
            .collect::<String>()
    };
    record.namespace = bounded(&facts.namespace);
    record.workflow_id = bounded(&facts.workflow_id);
    record.task_queue = bounded(&facts.task_queue);
}

/// Headers that describe the hop, not the call.
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if matches!(
            name.as_str(),
            "host"
                | "connection"
                | "content-length"
                | "transfer-encoding"
                | "keep-alive"
                | "upgrade"
        ) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

async fn forward_call(
    gate: &Gate,
    method: &'static Method,
    req: http::Request<Bytes>,
    record: AuditRecord,
    started: Instant,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let uri = parts.uri.path_and_query().map_or_else(
        || http::Uri::from_static("/"),
        |pq| http::Uri::try_from(pq.as_str()).unwrap_or_else(|_| http::Uri::from_static("/")),
    );
    let request = || {
        let mut up = http::Request::new(tonic::body::Body::new(Full::new(body.clone())));
        *up.method_mut() = http::Method::POST;
        *up.uri_mut() = uri.clone();
        copy_headers(&parts.headers, up.headers_mut());
        up
    };
    // Temporal's frontend ends every connection after its maximum age (5 min, GOAWAY): a
    // call that races the GOAWAY fails on the closing connection without having reached
    // the server. One retry on the next connection hides that from the caller; Temporal's
    // calls are made to be retried (mutating ones carry a request id it deduplicates),
    // which is what the SDKs themselves do with an UNAVAILABLE.
    let result = match gate.upstream.clone().oneshot(request()).await {
        Err(e) => {
            tracing::debug!(method = %method.short(), error = %e, "forwarding failed; retrying once on a new connection");
            gate.upstream.clone().oneshot(request()).await
        }
        ok => ok,
    };
    match result {
        Ok(res) => {
            let (parts, body) = res.into_parts();
            let headers_status = grpc::status_of(&parts.headers);
            let body = AuditBody::new(
                body,
                record,
                method,
                started,
                headers_status,
                gate.audit.clone(),
            );
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            tracing::warn!(method = %method.short(), error = %e, "forwarding to Temporal's frontend failed");
            let mut record = record;
            record.grpc_status = Some(code::UNAVAILABLE);
            record.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            gate.audit.emit(record, Some(method));
            grpc::status(
                code::UNAVAILABLE,
                "bulwark-gate: Temporal's frontend is unreachable; retry",
            )
        }
    }
}
