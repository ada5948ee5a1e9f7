//! The Postgres side of the audit: mutating calls' records, written to `gate_audit` in
//! batches by one background task.
//!
//! The gate logs in as `bulwark_gate`, which may only INSERT into `gate_audit` (no SELECT,
//! so statements never use `RETURNING`); the table is append-only and owned by
//! `bulwark_audit_owner` (migrations/0005_gate_audit.sql, migrations/superuser/audit-owner.sql).
//!
//! The call path never waits for the database: it hands records to a bounded channel, and
//! [`AuditStore::spawn_writer`] drains it.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{PgPool, Postgres, QueryBuilder};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::audit::AuditRecord;

/// Rows per INSERT statement (13 bind parameters each, far below Postgres's 65,535).
pub const BATCH_ROWS: usize = 200;
/// How long a record waits for its batch to fill before it is written anyway.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(500);
/// Records kept while the database refuses or is away; past this the oldest are dropped.
pub const MAX_PENDING: usize = 10_000;
/// Pool size: one writer, plus one spare for a connection being re-established.
const MAX_CONNECTIONS: u32 = 2;
/// How long [`AuditStore::connect`] waits for the database to answer at start-up.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);
/// The first wait after a failed batch, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Once the channel has closed (the gate shuts down), how long the writer keeps retrying
/// what is left before it counts the rest as dropped and ends.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Longest text value written, in bytes (cut at a character boundary). Temporal refuses ids
/// longer than 1,000 characters by default; the gate sees a request before Temporal does, and
/// a caller must not be able to grow one batch to gigabytes.
const MAX_FIELD_BYTES: usize = 1024;

/// Errors of [`AuditStore::connect`]. Never carries the URL: it holds a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("reading the database URL file {path}: {source}")]
    ReadUrl {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the database URL file {path} is empty")]
    EmptyUrl { path: PathBuf },
    #[error(transparent)]
    Database(#[from] bulwark_db::Error),
}

/// The writer's counters, shared with whoever reports them (metrics). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StoreStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    batches: AtomicU64,
    failed_batches: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    pending: AtomicU64,
}

impl StoreStats {
    /// Rows written to `gate_audit`.
    pub fn written(&self) -> u64 {
        self.0.written.load(Ordering::Relaxed)
    }
    /// INSERT statements that succeeded.
    pub fn batches(&self) -> u64 {
        self.0.batches.load(Ordering::Relaxed)
    }
    /// INSERT statements that failed (each is retried, see [`AuditStore::spawn_writer`]).
    pub fn failed_batches(&self) -> u64 {
        self.0.failed_batches.load(Ordering::Relaxed)
    }
    /// Records dropped unwritten: the oldest, past [`MAX_PENDING`] waiting records, and
    /// those still waiting when the shutdown grace ran out.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
    /// Records the database refused for their content (a data or constraint error); retrying
    /// them could never succeed.
    pub fn rejected(&self) -> u64 {
        self.0.rejected.load(Ordering::Relaxed)
    }
    /// Records received and not yet written.
    pub fn pending(&self) -> u64 {
        self.0.pending.load(Ordering::Relaxed)
    }
}

/// The connection to the Bulwark database as `bulwark_gate`.
#[derive(Debug)]
pub struct AuditStore {
    pool: PgPool,
    stats: StoreStats,
}

impl AuditStore {
    /// Connect with the URL in `url_file` (one line; surrounding whitespace ignored), retrying
    /// for up to 30 s while the database does not answer. A refusal (wrong password, no such
    /// database) fails at once.
    pub async fn connect(url_file: &Path) -> Result<AuditStore, StoreError> {
        let url = std::fs::read_to_string(url_file).map_err(|source| StoreError::ReadUrl {
            path: url_file.to_owned(),
            source,
        })?;
        let url = url.trim();
        if url.is_empty() {
            return Err(StoreError::EmptyUrl {
                path: url_file.to_owned(),
            });
        }
        let pool = bulwark_db::connect_with_retry(url, MAX_CONNECTIONS, CONNECT_WITHIN).await?;
        Ok(AuditStore::from_pool(pool))
    }

    /// A store on an existing pool (tests, or a caller that connects itself).
    pub fn from_pool(pool: PgPool) -> AuditStore {
        AuditStore {
            pool,
            stats: StoreStats::default(),
        }
    }

    /// The counters of the writer this store will run; take them before [`Self::spawn_writer`].
    pub fn stats(&self) -> StoreStats {
        self.stats.clone()
    }

    /// Write the records from `rx` to `gate_audit` until the channel closes.
    ///
    /// Records are written in batches: one multi-row INSERT of up to [`BATCH_ROWS`] rows as
    /// soon as that many are waiting, or [`BATCH_INTERVAL`] after the oldest waiting record
    /// arrived. A failed batch is retried, oldest rows first, after 0.5 s, 1 s, 2 s ... up
    /// to 30 s, while new records keep arriving. At most [`MAX_PENDING`] records wait: past
    /// that the **oldest are dropped**, each one counted in [`StoreStats::dropped`], with a
    /// warning in the log (every record is also in the gate's log stream, so the
    /// loss is of the database copy only). A batch the database refuses for its content
    /// (SQLSTATE class 22 or 23) is written row by row and the refused rows are counted in
    /// [`StoreStats::rejected`] instead of blocking the queue forever.
    ///
    /// When the channel closes the writer flushes what is left, retrying for up to 5 s;
    /// whatever is still unwritten then is counted as dropped, and the task ends.
    pub fn spawn_writer(self, rx: mpsc::Receiver<AuditRecord>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(Writer::new(self).run(rx))
    }
}

struct Writer {
    pool: PgPool,
    stats: StoreStats,
    pending: VecDeque<AuditRecord>,
    /// When the oldest waiting record arrived (the batch interval runs from here).
    oldest_since: Option<Instant>,
    /// After a failure: when to try again, and the wait after the next failure.
    retry_at: Option<Instant>,
    retry_wait: Duration,
    /// Whether the current stretch of drops has been logged already.
    dropping: bool,
}

impl Writer {
    fn new(store: AuditStore) -> Writer {
        Writer {
            pool: store.pool,
            stats: store.stats,
            pending: VecDeque::new(),
            oldest_since: None,
            retry_at: None,
            retry_wait: RETRY_FIRST,
            dropping: false,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<AuditRecord>) {
        let mut buf = Vec::with_capacity(BATCH_ROWS);
        loop {
            let due = self.due();
            tokio::select! {
                n = rx.recv_many(&mut buf, BATCH_ROWS) => {
                    if n == 0 {
                        break; // closed and empty
                    }
                    self.push(buf.drain(..));
                }
                () = sleep_until(due), if due.is_some() => {}
            }
            // A full batch goes at once (unless waiting out a failure); a partial one when due.
            while self.ready(Instant::now()) {
                if !self.flush().await {
                    break;
                }
            }
        }
        self.shutdown().await;
    }

    /// When the next write should happen, if anything is waiting.
    fn due(&self) -> Option<Instant> {
        let oldest = self.oldest_since?;
        Some(self.retry_at.unwrap_or(oldest + BATCH_INTERVAL))
    }

    fn ready(&self, now: Instant) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        match self.retry_at {
            Some(at) => now >= at,
            None => self.pending.len() >= BATCH_ROWS || self.due().is_some_and(|d| now >= d),
        }
    }

    fn push(&mut self, records: impl Iterator<Item = AuditRecord>) {
        for r in records {
            if self.pending.is_empty() {
                self.oldest_since = Some(Instant::now());
            }
            self.pending.push_back(r);
        }
        let excess = self.pending.len().saturating_sub(MAX_PENDING);
        if excess > 0 {
            self.pending.drain(..excess);
            self.stats
                .0
                .dropped
                .fetch_add(excess as u64, Ordering::Relaxed);
            if !self.dropping {
                self.dropping = true;
                tracing::warn!(
                    max_pending = MAX_PENDING,
                    dropped_total = self.stats.dropped(),
                    "gate audit: the database is not keeping up; dropping the oldest unwritten records (they remain in the log stream)"
                );
            }
        }
        self.set_pending();
    }

    fn set_pending(&self) {
        self.stats
            .0
            .pending
            .store(self.pending.len() as u64, Ordering::Relaxed);
    }

    /// Write the oldest batch. True when it was written (or settled row by row).
    async fn flush(&mut self) -> bool {
        let n = self.pending.len().min(BATCH_ROWS);
        if n == 0 {
            return true;
        }
        let result = insert(&self.pool, self.pending.range(..n)).await;
        match result {
            Ok(()) => {
                self.wrote(n, 1);
                true
            }
            Err(e) if refused_for_content(&e) => {
                tracing::warn!(error = %e, rows = n, "gate audit: a batch was refused for its content; writing its rows one by one");
                self.settle_row_by_row(n).await
            }
            Err(e) => {
                self.failed(&e);
                false
            }
        }
    }

    /// After a content refusal: each of the first `n` rows alone; the refused ones are counted
    /// and dropped. Stops (to retry later) at the first failure that is not about content.
    async fn settle_row_by_row(&mut self, n: usize) -> bool {
        for _ in 0..n {
            let Some(front) = self.pending.front() else {
                break;
            };
            match insert(&self.pool, std::iter::once(front)).await {
                Ok(()) => self.wrote(1, 1),
                Err(e) if refused_for_content(&e) => {
                    tracing::warn!(error = %e, "gate audit: the database refused a record; it is not retried");
                    self.pending.pop_front();
                    self.stats.0.rejected.fetch_add(1, Ordering::Relaxed);
                    self.after_removal();
                }
                Err(e) => {
                    self.failed(&e);
                    return false;
                }
            }
        }
        true
    }

    fn wrote(&mut self, rows: usize, statements: u64) {
        self.pending.drain(..rows);
        self.stats
            .0
            .written
            .fetch_add(rows as u64, Ordering::Relaxed);
        self.stats
            .0
            .batches
            .fetch_add(statements, Ordering::Relaxed);
        if self.retry_at.take().is_some() {
            tracing::info!(
                pending = self.pending.len(),
                "gate audit: writing to the database again"
            );
        }
        self.retry_wait = RETRY_FIRST;
        self.dropping = false;
        self.after_removal();
    }

    fn after_removal(&mut self) {
        // What is left has waited long enough already: it goes with the next batch at once
        // if full, else within one interval.
        self.oldest_since = if self.pending.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        self.set_pending();
    }

    fn failed(&mut self, e: &sqlx::Error) {
        self.stats.0.failed_batches.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            error = %e,
            pending = self.pending.len(),
            retry_in_ms = u64::try_from(self.retry_wait.as_millis()).unwrap_or(u64::MAX),
            "gate audit: writing a batch failed; retrying"
        );
        self.retry_at = Some(Instant::now() + self.retry_wait);
        self.retry_wait = (self.retry_wait * 2).min(RETRY_MAX);
    }

    async fn shutdown(mut self) {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.pending.is_empty() && Instant::now() < deadline {
            if let Some(at) = self.retry_at {
                if at >= deadline {
                    break;
                }
                tokio::time::sleep_until(at).await;
            }
            self.flush().await;
        }
        let left = self.pending.len();
        if left > 0 {
            self.stats
                .0
                .dropped
                .fetch_add(left as u64, Ordering::Relaxed);
            self.pending.clear();
            self.set_pending();
            tracing::error!(
                dropped = left,
                "gate audit: shutting down with records the database did not take (they remain in the log stream)"
            );
        }
        // The pool is dropped, not closed: a pool given to `from_pool` may be shared.
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// SQLSTATE class 22 (data exception, e.g. a value out of range) or 23 (integrity
/// constraint): the rows themselves are wrong, so the same statement would fail forever.
fn refused_for_content(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        _ => false,
    }
}

/// One INSERT of `rows` (no RETURNING: bulwark_gate may not SELECT).
async fn insert<'r>(
    pool: &PgPool,
    rows: impl Iterator<Item = &'r AuditRecord>,
) -> Result<(), sqlx::Error> {
    let mut q: QueryBuilder<'_, Postgres> = QueryBuilder::new(
        "INSERT INTO gate_audit (at, identity, subject, jti, role, method, namespace, workflow_id, task_queue, decision, rule, grpc_status, latency_ms) ",
    );
    q.push_values(rows, |mut b, r| {
        b.push_bind(r.at)
            .push_bind(text(&r.identity))
            .push_bind(text(&r.subject))
            .push_bind(text(&r.jti))
            .push_bind(text(&r.role))
            .push_bind(text(&r.method))
            .push_bind(text(&r.namespace))
            .push_bind(text(&r.workflow_id))
            .push_bind(text(&r.task_queue))
            .push_bind(r.decision.as_str())
            .push_bind(text(&r.rule))
            .push_bind(r.grpc_status)
            .push_bind(latency(r.latency_ms));
    });
    q.build().execute(pool).await.map(|_| ())
}

/// A text value as Postgres takes it: no NUL (text cannot hold one, and the whole batch would
/// fail), at most [`MAX_FIELD_BYTES`] bytes. Values come from callers (workflow ids).
fn text(s: &str) -> Cow<'_, str> {
    let mut end = s.len().min(MAX_FIELD_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = &s[..end];
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The table refuses a negative latency; a clock oddity must not cost the record.
fn latency(ms: f64) -> f64 {
    if ms.is_finite() && ms >= 0.0 { ms } else { 0.0 }
}

#[cfg(test)]
mod tests {
    // Needs `bulwark-db = { workspace = true, features = ["testing"] }` in [dev-dependencies].
    use super::*;
    use crate::audit::Decision;
    use bulwark_db::testing::TestDatabase;
    use time::OffsetDateTime;

    fn record(i: usize) -> AuditRecord {
        AuditRecord {
            at: OffsetDateTime::now_utc(),
            identity: "spiffe://bulwark.local/client/worker".into(),
            subject: "worker".into(),
            jti: format!("jti-{i}"),
            role: "worker".into(),
            method: "WorkflowService/StartWorkflowExecution".into(),
            namespace: "default".into(),
            workflow_id: format!("wf-{i}"),
            task_queue: "bulwark".into(),
            decision: if i.is_multiple_of(2) {
                Decision::Allow
            } else {
                Decision::Deny
            },
            rule: "config/gate-policy.toml line 3".into(),
            grpc_status: if i.is_multiple_of(3) { None } else { Some(0) },
            latency_ms: 1.25,
            mutating: true,
        }
    }

    async fn count(pool: &PgPool) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM gate_audit")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// Wait (up to 15 s) until `done` holds.
    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(tx: mpsc::Sender<AuditRecord>, writer: tokio::task::JoinHandle<()>) {
        drop(tx);
        tokio::time::timeout(Duration::from_secs(15), writer)
            .await
            .expect("the writer ends when the channel closes")
            .unwrap();
    }

    #[tokio::test]
    async fn four_hundred_fifty_records_are_three_inserts() {
        let Some(db) = TestDatabase::migrated("gate").await else {
            return;
        };
        // Through the URL file, as the gate connects.
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("gate-db.url");
        std::fs::write(&url_file, format!("{}\n", db.url())).unwrap();
        let store = AuditStore::connect(&url_file).await.unwrap();
        let stats = store.stats();
        let (tx, rx) = mpsc::channel(1000);
        let writer = store.spawn_writer(rx);
        for i in 0..450 {
            tx.send(record(i)).await.unwrap();
        }
        finish(tx, writer).await;
        assert_eq!(count(db.pool()).await, 450);
        assert_eq!(stats.written(), 450);
        assert!(
            stats.batches() <= 3,
            "{} INSERT statements",
            stats.batches()
        );
        assert_eq!(
            (stats.failed_batches(), stats.dropped(), stats.pending()),
            (0, 0, 0)
        );
        // Every field arrives.
        let row: (String, String, String, String, Option<i32>, f64, String) = sqlx::query_as(
            "SELECT identity, jti, decision, workflow_id, grpc_status, latency_ms, rule FROM gate_audit WHERE workflow_id = 'wf-3'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(
            row,
            (
                "spiffe://bulwark.local/client/worker".into(),
                "jti-3".into(),
                "deny".into(),
                "wf-3".into(),
                None,
                1.25,
                "config/gate-policy.toml line 3".into()
            )
        );
        let statuses: i64 =
            sqlx::query_scalar("SELECT count(*) FROM gate_audit WHERE grpc_status = 0")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(statuses, 300);
    }

    #[tokio::test]
    async fn a_partial_batch_is_written_within_the_interval() {
        let Some(db) = TestDatabase::migrated("gate").await else {
            return;
        };
        let store = AuditStore::from_pool(db.pool().clone());
        let stats = store.stats();
        let (tx, rx) = mpsc::channel(10);
        let writer = store.spawn_writer(rx);
        let sent = Instant::now();
        tx.send(record(1)).await.unwrap();
        until("one row", || stats.written() == 1).await;
        let took = sent.elapsed();
        assert!(
            took >= BATCH_INTERVAL - Duration::from_millis(50) && took < Duration::from_secs(3),
            "{took:?}"
        );
        finish(tx, writer).await;
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_and_the_oldest_are_dropped_past_the_limit() {
        let Some(db) = TestDatabase::migrated("gate").await else {
            return;
        };
        let pool = db.pool().clone();
        // The table goes away (an undefined-table error, class 42: retried, not rejected).
        sqlx::query("ALTER TABLE gate_audit RENAME TO gate_audit_away")
            .execute(&pool)
            .await
            .unwrap();
        let store = AuditStore::from_pool(pool.clone());
        let stats = store.stats();
        let (tx, rx) = mpsc::channel(1000);
        let writer = store.spawn_writer(rx);
        let total = MAX_PENDING + 50;
        for i in 0..total {
            tx.send(record(i)).await.unwrap();
        }
        until("the oldest 50 dropped", || stats.dropped() == 50).await;
        until("a failed batch", || stats.failed_batches() >= 1).await;
        assert_eq!(stats.pending(), MAX_PENDING as u64);
        assert_eq!(stats.written(), 0);
        sqlx::query("ALTER TABLE gate_audit_away RENAME TO gate_audit")
            .execute(&pool)
            .await
            .unwrap();
        until("every kept record written", || {
            stats.written() == MAX_PENDING as u64
        })
        .await;
        finish(tx, writer).await;
        assert_eq!(count(&pool).await, MAX_PENDING as i64);
        assert_eq!(stats.dropped(), 50);
        // The newest were kept.
        let kept: Vec<String> = sqlx::query_scalar(
            "SELECT workflow_id FROM gate_audit WHERE workflow_id IN ('wf-49', 'wf-50', 'wf-10049')",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut kept = kept;
        kept.sort();
        assert_eq!(kept, ["wf-10049", "wf-50"]);
        // Retried in order: ids follow the records' order.
        let out_of_order: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT id, substr(workflow_id, 4)::int AS n, lag(substr(workflow_id, 4)::int) OVER (ORDER BY id) AS prev FROM gate_audit) t WHERE n < prev",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(out_of_order, 0);
    }

    #[tokio::test]
    async fn a_refused_row_does_not_block_the_others() {
        let Some(db) = TestDatabase::migrated("gate").await else {
            return;
        };
        let pool = db.pool().clone();
        sqlx::query(
            "ALTER TABLE gate_audit ADD CONSTRAINT test_poison CHECK (workflow_id <> 'wf-2')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let store = AuditStore::from_pool(pool.clone());
        let stats = store.stats();
        let (tx, rx) = mpsc::channel(10);
        let writer = store.spawn_writer(rx);
        for i in 0..5 {
            tx.send(record(i)).await.unwrap();
        }
        // What the store cleans itself: a NUL, a huge id, a negative latency.
        let mut odd = record(9);
        odd.workflow_id = format!("nul\0{}", "é".repeat(2000));
        odd.latency_ms = -3.0;
        tx.send(odd).await.unwrap();
        finish(tx, writer).await;
        assert_eq!((stats.written(), stats.rejected()), (5, 1));
        assert_eq!(count(&pool).await, 5);
        let (id, latency): (String, f64) = sqlx::query_as(
            "SELECT workflow_id, latency_ms FROM gate_audit WHERE workflow_id LIKE 'nul%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(id.starts_with("nul\u{FFFD}é"), "{id}");
        assert!(id.len() <= MAX_FIELD_BYTES + 2, "{}", id.len());
        assert_eq!(latency, 0.0);
    }

    #[tokio::test]
    async fn the_table_refuses_update_delete_and_truncate() {
        let Some(db) = TestDatabase::migrated("gate").await else {
            return;
        };
        let pool = db.pool().clone();
        let store = AuditStore::from_pool(pool.clone());
        let (tx, rx) = mpsc::channel(10);
        let writer = store.spawn_writer(rx);
        tx.send(record(1)).await.unwrap();
        finish(tx, writer).await;
        // Even for the superuser (the test server's role) and the table's owner.
        for sql in [
            "UPDATE gate_audit SET decision = 'allow'",
            "DELETE FROM gate_audit",
            "TRUNCATE gate_audit",
        ] {
            let e = sqlx::query(sql).execute(&pool).await.unwrap_err();
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        assert_eq!(count(&pool).await, 1);
    }

    /// After the superuser step, the gate's role may INSERT (as the writer does) and nothing else.
    #[tokio::test]
    async fn bulwark_gate_may_only_insert() {
        let Some(db) = TestDatabase::migrated("gate").await else {
            return;
        };
        let pool = db.pool().clone();
        // The role is cluster-wide: roles.sql may have created it (with LOGIN) already; a
        // missing one is created without LOGIN, which roles.sql's ALTER later completes.
        sqlx::raw_sql(
            "DO $$ BEGIN CREATE ROLE bulwark_gate NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        )
        .execute(&pool)
        .await
        .unwrap();
        let step = include_str!("../../../migrations/superuser/audit-owner.sql");
        for _ in 0..2 {
            sqlx::raw_sql(step).execute(&pool).await.unwrap();
        }
        let gate = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .after_connect(|c, _| {
                Box::pin(async move {
                    sqlx::query("SET ROLE bulwark_gate")
                        .execute(c)
                        .await
                        .map(|_| ())
                })
            })
            .connect(db.url())
            .await
            .unwrap();
        let store = AuditStore::from_pool(gate.clone());
        let stats = store.stats();
        let (tx, rx) = mpsc::channel(10);
        let writer = store.spawn_writer(rx);
        for i in 0..3 {
            tx.send(record(i)).await.unwrap();
        }
        until("three rows", || stats.written() == 3).await;
        assert_eq!(stats.failed_batches(), 0);
        for sql in [
            "SELECT count(*) FROM gate_audit",
            "UPDATE gate_audit SET decision = 'allow'",
            "DELETE FROM gate_audit",
            "TRUNCATE gate_audit",
            "INSERT INTO gate_audit (at, method, decision, latency_ms) VALUES (now(), 'm', 'allow', 0) RETURNING id",
            "SELECT count(*) FROM admin_audit",
            "SELECT count(*) FROM admin_users",
            "INSERT INTO admin_audit (actor, action, outcome) VALUES ('gate', 'probe', 'success')",
            "DROP TABLE gate_audit",
        ] {
            assert!(
                sqlx::query(sql).execute(&gate).await.is_err(),
                "bulwark_gate could: {sql}"
            );
        }
        finish(tx, writer).await;
        assert_eq!(count(&pool).await, 3);
    }

    #[tokio::test]
    async fn connect_names_a_missing_or_empty_url_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.url");
        match AuditStore::connect(&missing).await {
            Err(e @ StoreError::ReadUrl { .. }) => assert!(e.to_string().contains("missing.url")),
            other => panic!("{other:?}"),
        }
        let empty = dir.path().join("empty.url");
        std::fs::write(&empty, " \n").unwrap();
        assert!(matches!(
            AuditStore::connect(&empty).await,
            Err(StoreError::EmptyUrl { .. })
        ));
    }

    #[test]
    fn text_is_cut_at_a_character_and_loses_nul() {
        assert_eq!(text("plain"), "plain");
        assert!(matches!(text("plain"), Cow::Borrowed(_)));
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        let long = "é".repeat(MAX_FIELD_BYTES);
        let cut = text(&long);
        assert!(cut.len() <= MAX_FIELD_BYTES && cut.len() >= MAX_FIELD_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(latency(f64::NAN), 0.0);
        assert_eq!(latency(-1.0), 0.0);
        assert_eq!(latency(f64::INFINITY), 0.0);
        assert_eq!(latency(2.5), 2.5);
    }
}
