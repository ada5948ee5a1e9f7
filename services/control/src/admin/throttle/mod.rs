//! Bounding the work an unauthenticated caller can cause on the login form.
//!
//! - [`Throttle`] ([`attempts`]): failed logins per address (any user) in a sliding window,
//!   and a growing backoff per (user, address). An attempt is *reserved* (counted as a
//!   failure) before any password is hashed and given back only when the login succeeds, so
//!   a burst of concurrent attempts cannot all pass the check before the first one is
//!   counted. Nothing is global: failures from one address never slow the same user down
//!   from another address.
//! - [`HashGate`] ([`gate`]): a semaphore around argon2 so that memory (19 MiB per
//!   verification) and CPU stay bounded however many logins arrive at once.
//!
//! State is in memory, per process, in bounded LRU maps (evicting the least recently seen
//! key, never wiping everything); a restart clears it.

pub mod attempts;
pub mod gate;

pub use attempts::{Refusal, Reservation, Throttle, ThrottleSettings};
pub use gate::{Busy, GateStopped, HashGate};
