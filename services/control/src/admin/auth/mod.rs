//! Accounts, login, server-side sessions, CSRF tokens and login throttling.
//!
//! - Passwords ([`password`]): argon2id (PHC string). Unknown users are checked against a
//!   dummy hash so the response time does not reveal which accounts exist.
//! - Sessions ([`session`]): a random 256-bit id in the `__Host-bulwark_session` cookie; the
//!   database keeps only its SHA-256, with an idle and an absolute expiry. Login always
//!   issues a new id.
//! - CSRF: every session has a synchronizer token that each form carries. The login form
//!   ([`login`](mod@login)), which has no session yet, uses a signed double-submit token: a
//!   random nonce in a `__Host-` cookie and, in the form, `issued_at.HMAC(nonce || issued_at)`
//!   (key held in memory), refused once older than `login_form_ttl`.
//! - Throttling ([`super::throttle`]): an attempt is counted before argon2 runs; each
//!   (user, address) pair backs off after `backoff_after` failures (1 s, 2 s, 4 s ... up to
//!   `backoff_max`), each address may fail `address_limit` times per `address_window`, and
//!   argon2 runs under a semaphore (429 with `Retry-After` when no turn frees up in time).
//!   No account is ever locked for everyone: the admin from an address that has not failed
//!   can always log in. The state is per process; `bulwark-init admin unlock` is noticed
//!   within [`UPKEEP_INTERVAL`] ([`upkeep`]).
//! - A refused login never logs or audits the raw username unless it names a real account
//!   ([`super::audit::login_actor`], keyed); refusals are aggregated per address
//!   ([`super::audit::RefusalLog`]).
//! - The bootstrap account ([`bootstrap`](mod@bootstrap)) is created once from a password
//!   file or the environment, and that file is deleted once the password has been changed.

pub mod bootstrap;
pub mod login;
pub mod password;
pub mod session;
pub mod upkeep;

use std::{num::NonZeroUsize, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ring::rand::SecureRandom;
use sha2::Digest;

use super::{AdminConfig, AdminError, throttle::ThrottleSettings};

pub use bootstrap::{bootstrap, ensure_admin};
pub use login::{login, login_form};
pub use password::{change_password, hash_password, password_form};
pub use session::{LOGIN_COOKIE, LoginRequired, SESSION_COOKIE, Session, logout};
pub use upkeep::{UPKEEP_INTERVAL, flush_on_shutdown, spawn_refusal_flush};

/// The throttle's settings from the admin configuration.
pub fn throttle_settings(cfg: &AdminConfig) -> ThrottleSettings {
    ThrottleSettings {
        address_limit: cfg.address_limit.max(1),
        address_window: cfg.address_window,
        backoff_after: cfg.backoff_after.max(1),
        backoff_base: cfg.backoff_base,
        backoff_max: cfg.backoff_max.max(cfg.backoff_base),
        capacity: tracked(cfg),
    }
}

/// Entries per login-state LRU.
pub fn tracked(cfg: &AdminConfig) -> NonZeroUsize {
    NonZeroUsize::new(cfg.login_tracked).unwrap_or(NonZeroUsize::MIN)
}

/// 32 random bytes, base64url.
pub(crate) fn random_token() -> Result<String, AdminError> {
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| AdminError::Internal("random source failed".into()))?;
    Ok(B64.encode(b))
}

/// What the database keeps of a session id.
fn sha256(s: &str) -> Vec<u8> {
    sha2::Sha256::digest(s.as_bytes()).to_vec()
}

/// `d` in whole seconds, rounded up, at least 1: a `Retry-After` value.
fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}
