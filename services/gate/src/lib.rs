#![forbid(unsafe_code)]
//! bulwark-gate: the least-privilege edge in front of Temporal's frontend.
//!
//! Every call arrives over mutual TLS (client trust: `client-trust.pem`) with a bearer JWT
//! that must be bound to the presented certificate (`cnf`, RFC 8705); the policy file decides
//! from the caller's role, the method and the facts in the request message whether it may
//! pass; allowed calls are forwarded, unchanged and with the caller's token, to the frontend,
//! which trusts only the gate's own certificate and still runs Temporal's authorizer. Every
//! call, allowed or not, is one audit record.

pub mod audit;
pub mod caller;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod sink;
pub mod store;
pub mod upstream;

/// An error and its sources on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}
