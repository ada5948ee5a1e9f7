#![forbid(unsafe_code)]
//! The gate's per-call policy: which role may call which Temporal method, in which namespaces,
//! task queues and workflow types, read from the request message (see POLICY_API.md).
//!
//! Pure library: no I/O except [`Policy::load`].

mod catalog;
mod glob;
mod policy;
mod wire;

pub use catalog::{Catalog, Facts, Method, Service};
pub use policy::{Caller, Decision, Policy, PolicyError};

/// Why a request message could not be read. The gate refuses such a call: a message it cannot
/// read is one whose facts it cannot check.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("request message is truncated")]
    Truncated,
    #[error("request message has a malformed varint")]
    BadVarint,
    #[error("request message has an invalid field number")]
    BadFieldNumber,
    #[error("request field {field} has unexpected wire type {wire}")]
    WireType { field: u32, wire: u8 },
    #[error("request field {field} is not valid UTF-8")]
    Utf8 { field: u32 },
}

#[cfg(test)]
mod tests;
