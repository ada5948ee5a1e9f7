//! The migrations, the connect retry and the test harness itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};
use std::time::{Duration, Instant};

use bulwark_db::{Error, MIGRATOR, connect_with_retry, testing::TestDatabase};
use sqlx::Row;

/// A password that must never show up in an error or a log line.
const PLANTED: &str = "PLANTED-pw-5c1d0e7a-do-not-print";

#[tokio::test]
async fn migrations_apply_twice_on_a_fresh_database() {
    let Some(db) = TestDatabase::empty("db").await else {
        return;
    };
    let tables = |pool: sqlx::PgPool| async move {
        sqlx::query("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get::<i64, _>("n")
    };
    assert_eq!(tables(db.pool().clone()).await, 0, "not a fresh database");

    MIGRATOR.run(db.pool()).await.expect("first run");
    let after_first = tables(db.pool().clone()).await;
    // The second run must find every migration applied (with a matching checksum) and
    // change nothing.
    MIGRATOR.run(db.pool()).await.expect("second run");
    assert_eq!(tables(db.pool().clone()).await, after_first);

    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let embedded: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    assert!(!embedded.is_empty(), "no migrations embedded");
    assert_eq!(applied, embedded, "each migration applied exactly once");
    // One table of each area, so an empty migrations directory cannot pass.
    for table in ["oauth_clients", "admin_audit"] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = $1")
            .bind(table)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(n, 1, "{table} missing");
    }
}

#[tokio::test]
async fn the_harness_drops_its_database() {
    let Some(db) = TestDatabase::migrated("db").await else {
        return;
    };
    let name = db.name().to_owned();
    assert!(name.starts_with("bulwark_db_test_"), "{name}");
    let other = TestDatabase::empty("db").await.unwrap();
    let exists = |name: String| {
        let pool = other.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_database WHERE datname = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(exists(name.clone()).await, 1);
    // Debug must not show the URL (it holds the password).
    let debug = format!("{db:?}");
    assert!(!debug.contains(db.url()), "{debug}");
    drop(db);
    assert_eq!(exists(name).await, 0, "the database outlived its guard");
}

/// Captures everything `tracing` emits on this thread while the guard lives.
struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn start() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = Writer(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || w.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self { buf, _guard: guard }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    fn retries(&self) -> usize {
        self.text()
            .lines()
            .filter(|l| l.contains("connecting to the Bulwark database failed; retrying"))
            .count()
    }
}

fn assert_no_password(what: &str, text: &str) {
    assert!(
        !text.contains(PLANTED),
        "{what} leaked the password: {text}"
    );
}

/// A port nothing listens on: bound, then released.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_closed_port_is_retried_until_the_deadline_then_reported_without_the_password() {
    let logs = LogCapture::start();
    let url = format!(
        "postgres://bulwark:{PLANTED}@127.0.0.1:{}/bulwark",
        closed_port().await
    );
    let within = Duration::from_secs(6);
    let started = Instant::now();
    let err = connect_with_retry(&url, 1, within)
        .await
        .expect_err("nothing listens");
    let elapsed = started.elapsed();
    // sqlx itself retries a refused connection for its 5 s acquire timeout, so one attempt
    // takes 5 s: the first ends with 1 s left, which is more than the next 250 ms wait, so
    // exactly one retry; the second ends past the deadline and is reported.
    assert_eq!(logs.retries(), 1, "{}", logs.text());
    assert!(logs.text().contains("attempt=1"), "{}", logs.text());
    assert!(elapsed >= within, "gave up after {elapsed:?}");
    assert!(
        elapsed < within + Duration::from_secs(8),
        "took {elapsed:?}"
    );
    assert!(
        matches!(
            &err,
            Error::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_))
        ),
        "{err:?}"
    );
    assert_no_password("the error", &err.to_string());
    assert_no_password("the error's Debug", &format!("{err:?}"));
    assert_no_password("the log", &logs.text());
}

#[tokio::test]
async fn a_peer_that_hangs_up_is_retried_with_backoff_and_every_attempt_is_logged() {
    // Accepts and closes at once: an I/O error per attempt without sqlx's own retry, so the
    // attempts are countable on the server side.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let server = tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    let logs = LogCapture::start();
    let url = format!("postgres://bulwark:{PLANTED}@127.0.0.1:{port}/bulwark");
    let started = Instant::now();
    let err = connect_with_retry(&url, 1, Duration::from_millis(1200))
        .await
        .expect_err("the peer hangs up");
    let elapsed = started.elapsed();
    server.abort();
    let attempts = accepted.load(Ordering::SeqCst);
    // Every attempt but the last is logged as a retry; backoff 250 ms, 500 ms, ...
    assert!(attempts >= 2, "gave up after {attempts} attempt(s)");
    assert_eq!(logs.retries(), attempts - 1, "{}", logs.text());
    assert!(
        elapsed >= Duration::from_millis(250),
        "no backoff: {elapsed:?}"
    );
    assert!(
        matches!(&err, Error::Database(sqlx::Error::Io(_))),
        "{err:?}"
    );
    assert_no_password("the error", &err.to_string());
    assert_no_password("the error's Debug", &format!("{err:?}"));
    assert_no_password("the log", &logs.text());
}

#[tokio::test]
async fn a_malformed_url_fails_at_once() {
    let logs = LogCapture::start();
    let err = connect_with_retry(
        &format!("postgres://bulwark:{PLANTED}@127.0.0.1:notaport/bulwark"),
        1,
        Duration::from_secs(30),
    )
    .await
    .expect_err("malformed");
    assert!(
        matches!(&err, Error::Database(sqlx::Error::Configuration(_))),
        "{err:?}"
    );
    assert_eq!(logs.retries(), 0);
    assert_no_password("the error", &format!("{err} {err:?}"));
}

#[tokio::test]
async fn a_refused_password_fails_at_once_without_echoing_it() {
    let Some(db) = TestDatabase::empty("db").await else {
        return;
    };
    // The database's URL with the password replaced.
    let url = db.url();
    let scheme_end = url.find("://").unwrap() + 3;
    let at = scheme_end
        + url[scheme_end..]
            .find('@')
            .expect("the test URL has a user");
    let user_end = scheme_end + url[scheme_end..at].find(':').unwrap_or(at - scheme_end);
    let wrong = format!("{}:{PLANTED}{}", &url[..user_end], &url[at..]);
    let logs = LogCapture::start();
    match connect_with_retry(&wrong, 1, Duration::from_secs(30)).await {
        Ok(_) => {
            eprintln!("the test server does not check passwords; nothing to refuse");
        }
        Err(err) => {
            assert!(
                matches!(&err, Error::Database(sqlx::Error::Database(_))),
                "{err:?}"
            );
            assert_eq!(logs.retries(), 0, "{}", logs.text());
            assert_no_password("the error", &format!("{err} {err:?}"));
            assert_no_password("the log", &logs.text());
        }
    }
}
