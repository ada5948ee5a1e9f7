//! Process plumbing shared by every Bulwark binary, so the services agree on it:
//! one variable filters the logs of all of them, and all of them stop the same way.
#![forbid(unsafe_code)]

use std::str::FromStr;

#[cfg(feature = "clap")]
pub mod cli;

/// The environment variable holding the log filter (`tracing` `EnvFilter` syntax), for every
/// Bulwark binary alike.
pub const LOG_FILTER_VAR: &str = "BULWARK_LOG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?} (use text or json)")),
        }
    }
}

/// Install the global `tracing` subscriber: filter from [`LOG_FILTER_VAR`], else
/// `default_filter`; lines on stderr, so a binary's stdout stays its output.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_FILTER_VAR)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Resolves on the first SIGTERM (what orchestrators send) or Ctrl-C. If SIGTERM cannot be
/// watched, says so and waits for Ctrl-C alone rather than stopping at once.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => {}
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::error!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
    use super::*;

    #[test]
    fn log_formats_parse_and_unknown_ones_are_named() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("TEXT".parse::<LogFormat>(), Ok(LogFormat::Text));
        let e = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(e.contains("yaml") && e.contains("json"), "{e}");
    }

    #[tokio::test]
    async fn sigterm_resolves_the_shutdown_future() {
        // Our own listener first: from then on SIGTERM can no longer kill the test process,
        // whatever the order in which the spawned task installs its listener.
        let _keep =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(());
        });
        // A signal sent before the task listens is not queued for it, so repeat until it
        // answers (or give up after 5 s).
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            tokio::select! {
                r = &mut rx => { r.unwrap(); return; }
                _ = tick.tick() => {
                    assert!(tokio::time::Instant::now() < deadline, "no shutdown on SIGTERM");
                    std::process::Command::new("kill")
                        .args(["-TERM", &std::process::id().to_string()])
                        .status()
                        .unwrap();
                }
            }
        }
    }
}
