-- OAuth2 clients of bulwark-control's token endpoint (client-credentials grant).
--
-- Secrets are high-entropy generated values, stored only as SHA-256 hashes. Rotation adds a
-- new version and gives the previous ones an expiry (the grace window) instead of deleting
-- them, so callers holding the old secret keep working until they re-read the new one.
CREATE TABLE oauth_clients (
    client_id      TEXT        PRIMARY KEY CHECK (client_id ~ '^[a-z][a-z0-9_-]{0,62}$'),
    description    TEXT        NOT NULL DEFAULT '',
    allowed_scopes TEXT[]      NOT NULL,
    audience       TEXT        NOT NULL,
    enabled        BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE oauth_client_secrets (
    client_id   TEXT        NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    version     INTEGER     NOT NULL CHECK (version > 0),
    secret_hash BYTEA       NOT NULL CHECK (octet_length(secret_hash) = 32),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL while current; set to the end of the grace window when superseded.
    expires_at  TIMESTAMPTZ,
    PRIMARY KEY (client_id, version)
);
