//! Hot reload of what the gate reads from disk: the policy, the JWKS and the client trust.
//! Each is checked on an interval; a change that does not parse or validate is refused with
//! a log line naming the file (and, for the policy, the line) while the previous one stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bulwark_gate_policy::{Policy, PolicyError};

use crate::proxy::Gate;
use bulwark_tls::ClientTrust;

/// The policy in force and the file it came from.
#[derive(Debug)]
pub struct Policies {
    path: PathBuf,
    current: ArcSwap<Policy>,
    /// The text last looked at (taken or refused), so a refused file is reported once.
    last_text: Mutex<String>,
}

impl Policies {
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, PolicyError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let policy = Policy::load(&path)?;
        Ok(Policies {
            path,
            current: ArcSwap::from_pointee(policy),
            last_text: Mutex::new(text),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// `Ok(true)`: a changed file was taken; `Err`: it was refused (once per distinct text).
    pub fn reload_if_changed(&self) -> Result<bool, PolicyError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            // Mid-replacement or briefly missing: try again next time.
            Err(_) => return Ok(false),
        };
        let mut last = self.last_text.lock().unwrap_or_else(|p| p.into_inner());
        if *last == text {
            return Ok(false);
        }
        *last = text.clone();
        let policy = Policy::parse(&text, &self.path.display().to_string())?;
        self.current.store(Arc::new(policy));
        Ok(true)
    }
}

/// Checks every source each `interval` until the task is dropped.
pub fn spawn(
    gate: Arc<Gate>,
    trust: Arc<ClientTrust>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match gate.policies.reload_if_changed() {
                Ok(true) => {
                    gate.audit.metrics().reload("policy", true);
                    tracing::info!(file = %gate.policies.path().display(), "policy reloaded");
                }
                Ok(false) => {}
                Err(e) => {
                    gate.audit.metrics().reload("policy", false);
                    tracing::error!(file = %gate.policies.path().display(), error = %e, "policy reload refused; the previous policy stays in force");
                }
            }
            match gate.keys.reload_if_changed() {
                Ok(true) => {
                    gate.audit.metrics().reload("jwks", true);
                    tracing::info!(file = %gate.keys.path().display(), keys = gate.keys.key_count(), "JWKS reloaded");
                }
                Ok(false) => {}
                Err(e) => {
                    gate.audit.metrics().reload("jwks", false);
                    tracing::error!(error = %e, "JWKS reload refused; the previous keys stay in force");
                }
            }
            match trust.reload_if_changed() {
                Ok(true) => {
                    gate.audit.metrics().reload("client_trust", true);
                    tracing::info!(file = %trust.path().display(), "client trust reloaded");
                }
                Ok(false) => {}
                Err(e) => {
                    gate.audit.metrics().reload("client_trust", false);
                    tracing::error!(error = %e, "client trust reload refused; the previous trust stays in force");
                }
            }
        }
    })
}
