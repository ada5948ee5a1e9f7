//! OAuth clients and their secret versions in the Bulwark database.

use sqlx::{PgPool, Row};
use time::{Duration, OffsetDateTime};

use crate::{
    Error,
    scope::ScopeSet,
    secret::{ClientSecret, SecretHash},
};

/// An OAuth client as the token endpoint sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub description: String,
    pub allowed: ScopeSet,
    pub audience: String,
    pub enabled: bool,
}

/// A client with its currently acceptable secret hashes.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub client: Client,
    pub secrets: Vec<(i32, SecretHash)>,
}

/// What an operator sees about a client (no hashes).
#[derive(Debug, Clone)]
pub struct ClientSummary {
    pub client: Client,
    pub current_version: i32,
    pub rotated_at: OffsetDateTime,
    pub grace_until: Option<OffsetDateTime>,
}

/// Repository of OAuth clients.
#[derive(Debug, Clone)]
pub struct ClientStore {
    pool: PgPool,
}

fn valid_id(id: &str) -> Result<(), Error> {
    id.parse::<crate::ClientId>().map(drop)
}

impl ClientStore {
    pub fn new(pool: PgPool) -> Self {
        ClientStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Create a client with a fresh secret. Returns `None` (and changes nothing) when the
    /// client already exists, so bootstrap can run on every start.
    pub async fn register(
        &self,
        client_id: &str,
        description: &str,
        allowed: &ScopeSet,
        audience: &str,
    ) -> Result<Option<ClientSecret>, Error> {
        valid_id(client_id)?;
        let secret = ClientSecret::generate()?;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO oauth_clients (client_id, description, allowed_scopes, audience) VALUES ($1, $2, $3, $4) ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(client_id)
        .bind(description)
        .bind(allowed.to_vec())
        .bind(audience)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO oauth_client_secrets (client_id, version, secret_hash) VALUES ($1, 1, $2)",
        )
        .bind(client_id)
        .bind(&secret.hash().0[..])
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(secret))
    }

    /// Issue a new secret version. Earlier versions stay valid for `grace`, then stop
    /// working. The whole change is one transaction: a failure leaves the old secret as is.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        grace: Duration,
    ) -> Result<(i32, ClientSecret), Error> {
        valid_id(client_id)?;
        let secret = ClientSecret::generate()?;
        let mut tx = self.pool.begin().await?;
        // Concurrent rotations of one client (init, the admin page, two operators) serialise
        // on this row lock, held until commit. Under READ COMMITTED every later statement of
        // this transaction then sees the other rotation's committed rows, so each computes
        // its own next version and supersedes the other's secret: versions stay dense and
        // exactly one secret stays current (expires_at NULL).
        let exists = sqlx::query("SELECT 1 FROM oauth_clients WHERE client_id = $1 FOR UPDATE")
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(Error::UnknownClient(client_id.to_owned()));
        }
        let version: i32 = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) AS v FROM oauth_client_secrets WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("v")?;
        let grace_end = OffsetDateTime::now_utc() + grace;
        sqlx::query(
            "UPDATE oauth_client_secrets SET expires_at = $2 WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(client_id)
        .bind(grace_end)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO oauth_client_secrets (client_id, version, secret_hash) VALUES ($1, $2, $3)")
            .bind(client_id)
            .bind(version + 1)
            .bind(&secret.hash().0[..])
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE oauth_clients SET updated_at = now() WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((version + 1, secret))
    }

    pub async fn set_enabled(&self, client_id: &str, enabled: bool) -> Result<(), Error> {
        let n = sqlx::query(
            "UPDATE oauth_clients SET enabled = $2, updated_at = now() WHERE client_id = $1",
        )
        .bind(client_id)
        .bind(enabled)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::UnknownClient(client_id.to_owned()));
        }
        Ok(())
    }

    /// The client and the secret hashes acceptable right now, or `None` if unknown.
    pub async fn lookup(&self, client_id: &str) -> Result<Option<ClientRecord>, Error> {
        let rows = sqlx::query(
            "SELECT c.client_id, c.description, c.allowed_scopes, c.audience, c.enabled, s.version, s.secret_hash
               FROM oauth_clients c
               LEFT JOIN oauth_client_secrets s
                 ON s.client_id = c.client_id AND (s.expires_at IS NULL OR s.expires_at > now())
              WHERE c.client_id = $1",
        )
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let client = client_from_row(first)?;
        let mut secrets = Vec::new();
        for row in &rows {
            let version: Option<i32> = row.try_get("version")?;
            let hash: Option<Vec<u8>> = row.try_get("secret_hash")?;
            if let (Some(v), Some(h)) = (version, hash.as_deref().and_then(SecretHash::from_slice))
            {
                secrets.push((v, h));
            }
        }
        Ok(Some(ClientRecord { client, secrets }))
    }

    pub async fn list(&self) -> Result<Vec<ClientSummary>, Error> {
        let rows = sqlx::query(
            "SELECT c.client_id, c.description, c.allowed_scopes, c.audience, c.enabled,
                    MAX(s.version) AS version, MAX(s.created_at) AS rotated_at,
                    MAX(s.expires_at) FILTER (WHERE s.expires_at > now()) AS grace_until
               FROM oauth_clients c JOIN oauth_client_secrets s ON s.client_id = c.client_id
              GROUP BY c.client_id ORDER BY c.client_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ClientSummary {
                    client: client_from_row(row)?,
                    current_version: row.try_get("version")?,
                    rotated_at: row.try_get("rotated_at")?,
                    grace_until: row.try_get("grace_until")?,
                })
            })
            .collect()
    }
}

fn client_from_row(row: &sqlx::postgres::PgRow) -> Result<Client, Error> {
    let scopes: Vec<String> = row.try_get("allowed_scopes")?;
    let allowed = scopes
        .join(" ")
        .parse()
        .map_err(|e: crate::scope::UnknownScope| Error::Corrupt(format!("stored scopes: {e}")))?;
    Ok(Client {
        client_id: row.try_get("client_id")?,
        description: row.try_get("description")?,
        allowed,
        audience: row.try_get("audience")?,
        enabled: row.try_get("enabled")?,
    })
}
