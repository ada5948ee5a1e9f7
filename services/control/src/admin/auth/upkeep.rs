//! Periodic upkeep of the login state: refusal windows written to the audit log, and
//! command-line unlocks picked up.

use std::time::Duration;

use time::OffsetDateTime;

use crate::admin::{AdminState, audit};

/// How often refusal windows are flushed and command-line unlocks are picked up.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Every [`UPKEEP_INTERVAL`]: write the refusal counts of closed windows, and forget the
/// backoff of accounts unlocked from the command line since the last look.
pub fn spawn_refusal_flush(state: AdminState) {
    tokio::spawn(async move {
        let mut seen = OffsetDateTime::UNIX_EPOCH;
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            audit::flush_refusals(&state.pool, &state.refusals, false).await;
            // Recent unlocks by the database's clock; applying one twice is harmless (only
            // backoffs that began before it are forgotten).
            let unlocks = sqlx::query_as::<_, (String, OffsetDateTime)>(
                "SELECT username, unlocked_at FROM admin_users
                  WHERE unlocked_at > now() - make_interval(secs => 60)",
            )
            .fetch_all(&state.pool)
            .await;
            match unlocks {
                Ok(rows) => {
                    for (user, at) in rows {
                        if at > seen {
                            tracing::info!(user = %user, "admin account unlocked from the command line");
                            seen = at;
                        }
                        state.throttle.unlocked(&user, at);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "checking for admin unlocks failed"),
            }
        }
    });
}

/// Write every refusal count still held in memory; call once the server has stopped.
pub async fn flush_on_shutdown(state: &AdminState) {
    audit::flush_refusals(&state.pool, &state.refusals, true).await;
}
