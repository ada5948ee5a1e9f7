//! "Temporal calls": the gate's audit (`gate_audit`, written by bulwark-gate for every
//! mutating call), newest first, 100 per page, filtered by identity, method, workflow id,
//! decision and a time range given as GET query parameters.
//!
//! Control only reads the table (its role has SELECT on it and nothing else). Every filter
//! is checked before the query runs: a malformed one is a 400 naming the parameter, never a
//! silently ignored filter that would show more than was asked for. Pages go backwards with a
//! cursor (`before`, the id of the last row shown) rather than an offset, so a page stays
//! cheap however deep it is and new rows do not shift it.

use axum::{
    extract::{Query, State},
    response::Response,
};
use sqlx::{Postgres, QueryBuilder, Row};
use time::{
    OffsetDateTime, PrimitiveDateTime, UtcOffset, format_description::well_known::Rfc3339,
    macros::format_description,
};

use super::{AdminError, AdminState, auth::Session, render};

/// Rows per page.
pub const PAGE_ROWS: usize = 100;
/// Longest filter value accepted, in bytes (the gate stores at most 1,024 per field).
pub const MAX_FILTER_BYTES: usize = 1024;

/// The query parameters this page knows.
const PARAMS: [&str; 7] = [
    "identity",
    "method",
    "workflow_id",
    "decision",
    "from",
    "to",
    "before",
];

/// The validated filters of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub identity: Option<String>,
    pub method: Option<String>,
    pub workflow_id: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<&'static str>,
    /// Inclusive bounds on `at`.
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Show rows older than the row with this id (the previous page's last row).
    pub before: Option<i64>,
}

impl Filters {
    /// Check the query's `(name, value)` pairs. An empty value is no filter (a submitted form
    /// sends every field); an unknown or repeated parameter, an over-long value, a decision
    /// other than allow/deny, an unreadable time, `from` after `to` or a bad cursor is an
    /// error that says which.
    pub fn parse(pairs: &[(String, String)]) -> Result<Filters, String> {
        let mut f = Filters::default();
        for p in PARAMS {
            if pairs.iter().filter(|(n, _)| n == p).count() > 1 {
                return Err(format!("the parameter {p} is given more than once"));
            }
        }
        for (name, value) in pairs {
            let unknown = || {
                format!(
                    "unknown parameter {:?}; this page takes {}",
                    shorten(name),
                    PARAMS.join(", ")
                )
            };
            if !PARAMS.contains(&name.as_str()) {
                return Err(unknown());
            }
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if value.len() > MAX_FILTER_BYTES {
                return Err(format!(
                    "{name} is longer than {MAX_FILTER_BYTES} bytes; nothing that long is recorded"
                ));
            }
            match name.as_str() {
                "identity" => f.identity = Some(value.to_owned()),
                "method" => f.method = Some(value.to_owned()),
                "workflow_id" => f.workflow_id = Some(value.to_owned()),
                "decision" => {
                    f.decision = Some(match value {
                        "allow" => "allow",
                        "deny" => "deny",
                        _ => return Err("decision must be allow or deny".into()),
                    })
                }
                "from" => f.from = Some(parse_time("from", value)?),
                "to" => f.to = Some(parse_time("to", value)?),
                "before" => {
                    f.before = Some(
                        value
                            .parse::<i64>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or("before must be a row number (a positive integer)")?,
                    )
                }
                _ => return Err(unknown()),
            }
        }
        if let (Some(from), Some(to)) = (f.from, f.to)
            && from > to
        {
            return Err("from is later than to".into());
        }
        Ok(f)
    }

    fn any(&self) -> bool {
        self.identity.is_some()
            || self.method.is_some()
            || self.workflow_id.is_some()
            || self.decision.is_some()
            || self.from.is_some()
            || self.to.is_some()
    }
}

/// At most 64 characters of a parameter name for an error message.
fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// RFC 3339 (`2026-05-20T10:30:00Z`, any offset) or what a `datetime-local` field sends
/// (`2026-05-20T10:30`, `2026-05-20T10:30:15`, a space instead of the `T` too), read as UTC.
pub fn parse_time(name: &str, value: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    let local = value.replacen(' ', "T", 1);
    let formats = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
    ];
    formats
        .iter()
        .find_map(|f| PrimitiveDateTime::parse(&local, f).ok())
        .map(PrimitiveDateTime::assume_utc)
        .ok_or_else(|| {
            format!(
                "{name} is not a time: use 2026-05-20T10:30 (UTC), 2026-05-20T10:30:15 or RFC 3339 (2026-05-20T10:30:15+02:00)"
            )
        })
}

/// The value a `datetime-local` field shows for `t` (UTC, to the second).
fn field_time(t: Option<OffsetDateTime>) -> String {
    let Some(t) = t else {
        return String::new();
    };
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2026-05-20 10:30:15.123 UTC`.
fn shown_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A gRPC status code with its name (`7 PERMISSION_DENIED`); `-` when none was seen.
pub fn grpc_status(code: Option<i32>) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    match code {
        None => "-".into(),
        Some(c) => match usize::try_from(c).ok().and_then(|i| NAMES.get(i)) {
            Some(name) => format!("{c} {name}"),
            None => c.to_string(),
        },
    }
}

/// One call as the page shows it.
#[derive(Debug, Clone)]
pub struct CallRow {
    pub id: i64,
    pub at: String,
    pub identity: String,
    pub subject: String,
    pub jti: String,
    pub role: String,
    pub method: String,
    pub namespace: String,
    pub workflow_id: String,
    pub task_queue: String,
    pub decision: String,
    /// The badge class of the decision.
    pub decision_class: &'static str,
    pub rule: String,
    pub status: String,
    pub latency: String,
}

/// One page of rows matching `f`, newest first, and whether older ones exist.
pub async fn calls(pool: &sqlx::PgPool, f: &Filters) -> Result<(Vec<CallRow>, bool), AdminError> {
    let mut q: QueryBuilder<'_, Postgres> = QueryBuilder::new(
        "SELECT id, at, identity, subject, jti, role, method, namespace, workflow_id, task_queue, decision, rule, grpc_status, latency_ms FROM gate_audit WHERE true",
    );
    if let Some(v) = &f.identity {
        q.push(" AND identity = ").push_bind(v);
    }
    if let Some(v) = &f.method {
        q.push(" AND method = ").push_bind(v);
    }
    if let Some(v) = &f.workflow_id {
        q.push(" AND workflow_id = ").push_bind(v);
    }
    if let Some(v) = f.decision {
        q.push(" AND decision = ").push_bind(v);
    }
    if let Some(v) = f.from {
        q.push(" AND at >= ").push_bind(v);
    }
    if let Some(v) = f.to {
        q.push(" AND at <= ").push_bind(v);
    }
    if let Some(v) = f.before {
        // An unknown id compares with NULL: an empty page, not the first one again.
        q.push(" AND (at, id) < (SELECT at, id FROM gate_audit WHERE id = ")
            .push_bind(v)
            .push(")");
    }
    // One more than a page tells whether there is an older page.
    q.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(i64::try_from(PAGE_ROWS + 1).unwrap_or(i64::MAX));
    let rows = q.build().fetch_all(pool).await?;
    let more = rows.len() > PAGE_ROWS;
    let rows = rows
        .iter()
        .take(PAGE_ROWS)
        .map(|r| {
            let decision: String = r.try_get("decision")?;
            Ok(CallRow {
                id: r.try_get("id")?,
                at: shown_time(r.try_get("at")?),
                identity: r.try_get("identity")?,
                subject: r.try_get("subject")?,
                jti: r.try_get("jti")?,
                role: r.try_get("role")?,
                method: r.try_get("method")?,
                namespace: r.try_get("namespace")?,
                workflow_id: r.try_get("workflow_id")?,
                task_queue: r.try_get("task_queue")?,
                decision_class: if decision == "allow" {
                    "success"
                } else {
                    "failure"
                },
                decision,
                rule: r.try_get("rule")?,
                status: grpc_status(r.try_get("grpc_status")?),
                latency: format!("{:.1} ms", r.try_get::<f64, _>("latency_ms")?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((rows, more))
}

#[derive(askama::Template)]
#[template(path = "gate_audit.html")]
struct CallsPage {
    user: String,
    csrf: String,
    rows: Vec<CallRow>,
    /// The filters as the form fields show them (empty: none).
    identity: String,
    method: String,
    workflow_id: String,
    decision: String,
    from: String,
    to: String,
    filtered: bool,
    /// Whether this is an older page (a "newest" link is shown).
    paged: bool,
    /// The cursor of the next older page, when there is one.
    older: Option<i64>,
    page_rows: usize,
}

pub async fn page(
    State(state): State<AdminState>,
    session: Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AdminError> {
    let f = Filters::parse(&pairs).map_err(AdminError::BadRequest)?;
    let (rows, more) = calls(&state.pool, &f).await?;
    let older = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    render(&CallsPage {
        user: session.username,
        csrf: session.csrf,
        filtered: f.any(),
        paged: f.before.is_some(),
        identity: f.identity.clone().unwrap_or_default(),
        method: f.method.clone().unwrap_or_default(),
        workflow_id: f.workflow_id.clone().unwrap_or_default(),
        decision: f.decision.unwrap_or_default().to_owned(),
        from: field_time(f.from),
        to: field_time(f.to),
        rows,
        older,
        page_rows: PAGE_ROWS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filters_are_read_and_blank_ones_ignored() {
        let f = Filters::parse(&pairs(&[
            ("identity", " spiffe://bulwark.local/client/worker "),
            ("method", ""),
            ("decision", "deny"),
            ("from", "2026-05-20T10:30"),
            ("to", "2026-05-20T14:00:00+02:00"),
            ("before", "42"),
        ]))
        .unwrap();
        assert_eq!(
            f.identity.as_deref(),
            Some("spiffe://bulwark.local/client/worker")
        );
        assert_eq!(f.method, None);
        assert_eq!(f.decision, Some("deny"));
        assert_eq!(field_time(f.from), "2026-05-20T10:30:00");
        assert_eq!(field_time(f.to), "2026-05-20T12:00:00");
        assert_eq!(f.before, Some(42));
        assert!(f.any());
        assert!(!Filters::parse(&[]).unwrap().any());
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        for (p, want) in [
            (vec![("from", "yesterday")], "from is not a time"),
            (vec![("to", "2026-13-01T00:00")], "to is not a time"),
            (
                vec![("decision", "maybe")],
                "decision must be allow or deny",
            ),
            (vec![("before", "-1")], "before must be"),
            (vec![("before", "1; DROP")], "before must be"),
            (vec![("colour", "red")], "unknown parameter \"colour\""),
            (vec![("method", "a"), ("method", "b")], "more than once"),
            (
                vec![("from", "2026-05-20T11:00"), ("to", "2026-05-20T10:00")],
                "from is later than to",
            ),
        ] {
            let e = Filters::parse(&pairs(&p)).unwrap_err();
            assert!(e.contains(want), "{p:?}: {e}");
        }
        let long = "x".repeat(MAX_FILTER_BYTES + 1);
        let e = Filters::parse(&pairs(&[("workflow_id", &long)])).unwrap_err();
        assert!(e.contains("longer than"), "{e}");
    }

    #[test]
    fn times_and_statuses_read_well() {
        let t = parse_time("from", "2026-05-20 10:30:15.5").unwrap();
        assert_eq!(shown_time(t), "2026-05-20 10:30:15.500 UTC");
        assert_eq!(grpc_status(Some(7)), "7 PERMISSION_DENIED");
        assert_eq!(grpc_status(Some(0)), "0 OK");
        assert_eq!(grpc_status(Some(99)), "99");
        assert_eq!(grpc_status(Some(-1)), "-1");
        assert_eq!(grpc_status(None), "-");
    }
}
