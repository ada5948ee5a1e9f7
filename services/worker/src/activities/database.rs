//! `DatabaseQuery`: a basic credential, one named read-only query, this worker's database.

use std::time::Duration;

use bulwark_workflows::{DatabaseQueryInput, DatabaseQueryOutput, failure_type};
use sqlx::{ConnectOptions, Connection, Row};

use super::Activities;
use crate::failures::{self, Failure};

impl Activities {
    pub(super) async fn database_query(
        &self,
        input: DatabaseQueryInput,
    ) -> Result<DatabaseQueryOutput, Failure> {
        input
            .validate()
            .map_err(|e| Failure::new(failure_type::INVALID_INPUT, e.to_string()))?;
        if !self.database.allowed.contains(&input.database) {
            return Err(Failure::new(
                failure_type::INVALID_INPUT,
                format!(
                    "database `{}` is not allowed on this worker",
                    input.database
                ),
            ));
        }
        let reference = input.credential.to_string();
        let cred = self.resolve(&input.credential).await?;
        let basic = cred.as_basic().ok_or_else(|| {
            Failure::new(
                failure_type::CREDENTIAL_INVALID,
                format!("{reference}: not a basic credential"),
            )
        })?;
        // The target is this worker's setting, not workflow input; a credential that lists
        // allowed_hosts is still held to them (`host:5432` entries).
        if let Some(list) = cred.allowed_hosts() {
            let target = self.database_url();
            if !target.as_ref().is_some_and(|u| list.permits(u)) {
                return Err(Failure::new(
                    failure_type::DESTINATION_NOT_ALLOWED,
                    format!(
                        "{reference} is not allowed for host `{}:{}` (allowed_hosts)",
                        self.database.host, self.database.port
                    ),
                ));
            }
        }
        let opts = sqlx::postgres::PgConnectOptions::new()
            .host(&self.database.host)
            .port(self.database.port)
            .database(&input.database)
            .username(&basic.username)
            .password(basic.password.expose())
            .application_name("bulwark-worker")
            .options([
                ("default_transaction_read_only", "on"),
                ("statement_timeout", "5000"),
            ])
            .disable_statement_logging();
        let mut conn = tokio::time::timeout(Duration::from_secs(10), opts.connect())
            .await
            .map_err(|_| {
                Failure::new(
                    failure_type::TRANSIENT,
                    format!("database `{}`: connect timed out", input.database),
                )
            })?
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let row = sqlx::query(input.query.sql())
            .fetch_one(&mut conn)
            .await
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let _ = conn.close().await;
        let row_count: i64 = row
            .try_get(0)
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        let total_quantity: i64 = row
            .try_get(1)
            .map_err(|e| failures::from_sqlx(&reference, &input.database, &e))?;
        Ok(DatabaseQueryOutput {
            query: input.query,
            database: input.database,
            row_count,
            total_quantity,
        })
    }

    /// The database target as a URL, for [`bulwark_secrets::AllowedHosts::permits`].
    fn database_url(&self) -> Option<reqwest::Url> {
        let host = &self.database.host;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        reqwest::Url::parse(&format!("https://{host}:{}/", self.database.port)).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
    use bulwark_workflows::{DatabaseQueryInput, failure_type};

    use super::super::testkit::{PLANTED, activities, pki, policy};

    #[tokio::test]
    async fn database_query_holds_basic_credentials_to_their_allowed_hosts() {
        let pki = pki();
        let mut acts = activities(
            &pki,
            serde_json::json!({
                "pinned": {"username": "u", "password": PLANTED, "allowed_hosts": ["db.example:5432"]},
                "here": {"username": "u", "password": PLANTED, "allowed_hosts": ["127.0.0.1:1"]},
            }),
            policy(),
        );
        acts.database.allowed = vec!["demo".into()];
        let query = |name: &str| DatabaseQueryInput {
            credential: bulwark_secrets::basic_ref(name),
            database: "demo".into(),
            query: bulwark_workflows::NamedQuery::InventorySummary,
        };
        let f = acts.database_query(query("pinned")).await.unwrap_err();
        assert_eq!(f.kind, failure_type::DESTINATION_NOT_ALLOWED, "{f}");
        assert!(
            f.message.contains("127.0.0.1:1") && !f.message.contains(PLANTED),
            "{f}"
        );
        // Listed: it gets as far as connecting (nothing listens on port 1).
        let f = acts.database_query(query("here")).await.unwrap_err();
        assert_eq!(f.kind, failure_type::TRANSIENT, "{f}");
    }
}
