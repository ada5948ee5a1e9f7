-- bulwark-control's admin page: operator accounts, server-side sessions, rotation jobs and
-- the audit log.
--
-- Passwords are argon2id PHC strings. Session ids are random 256-bit values of which only
-- the SHA-256 is stored, so a copy of this table cannot be replayed as a cookie. The audit
-- log is append-only: a trigger rejects UPDATE, DELETE and TRUNCATE for every role,
-- including the owner the application connects as. No column ever holds a secret value.
CREATE TABLE admin_users (
    username        TEXT        PRIMARY KEY CHECK (username ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    password_hash   TEXT        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    failed_logins   INTEGER     NOT NULL DEFAULT 0,
    locked_until    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at   TIMESTAMPTZ
);

CREATE TABLE admin_sessions (
    id_hash     BYTEA       PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    username    TEXT        NOT NULL REFERENCES admin_users (username) ON DELETE CASCADE,
    -- Synchronizer token for the forms of this session (useless without the cookie).
    csrf_token  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Absolute expiry; idle expiry is last_seen + the configured idle timeout.
    expires_at  TIMESTAMPTZ NOT NULL,
    address     TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

-- Multi-step rotations (JWT key, CA overlap, certificate propagation checks).
CREATE TABLE admin_jobs (
    id          TEXT        PRIMARY KEY,
    kind        TEXT        NOT NULL,
    target      TEXT        NOT NULL,
    state       TEXT        NOT NULL CHECK (state IN ('running', 'waiting', 'succeeded', 'failed')),
    stage       TEXT        NOT NULL,
    -- Human-readable progress lines, never secret values.
    log         TEXT[]      NOT NULL DEFAULT '{}',
    error       TEXT,
    started_by  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX admin_jobs_created ON admin_jobs (created_at DESC);

CREATE TABLE admin_audit (
    id          BIGSERIAL   PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    target      TEXT        NOT NULL DEFAULT '',
    outcome     TEXT        NOT NULL CHECK (outcome IN ('success', 'failure', 'started')),
    detail      TEXT        NOT NULL DEFAULT '',
    address     TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX admin_audit_at ON admin_audit (at DESC);

CREATE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER admin_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only();
CREATE TRIGGER admin_audit_no_truncate
    BEFORE TRUNCATE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON admin_audit FROM PUBLIC;
