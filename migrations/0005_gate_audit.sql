-- bulwark-gate's audit of the Temporal calls it passes or refuses: one row per mutating call,
-- written in batches by services/gate/src/store.rs.
--
-- Append-only like admin_audit: a trigger rejects UPDATE, DELETE and TRUNCATE for every
-- role. The superuser step migrations/superuser/audit-owner.sql (run after the migrations)
-- hands the table, its sequence and the trigger function to bulwark_audit_owner, gives the
-- gate's login role bulwark_gate INSERT only, and the application role SELECT only (the
-- admin page's "Temporal calls"). No column holds a token: `rule` is the policy's words.
CREATE TABLE gate_audit (
    id          BIGSERIAL        PRIMARY KEY,
    -- When the gate received the call (the gate's clock), not when the row was written.
    at          TIMESTAMPTZ      NOT NULL,
    -- The caller certificate's URI SAN; empty when the handshake carried none.
    identity    TEXT             NOT NULL DEFAULT '',
    -- The token's sub and jti; empty without a valid token.
    subject     TEXT             NOT NULL DEFAULT '',
    jti         TEXT             NOT NULL DEFAULT '',
    role        TEXT             NOT NULL DEFAULT '',
    -- `Service/Method`, e.g. WorkflowService/StartWorkflowExecution.
    method      TEXT             NOT NULL,
    namespace   TEXT             NOT NULL DEFAULT '',
    workflow_id TEXT             NOT NULL DEFAULT '',
    task_queue  TEXT             NOT NULL DEFAULT '',
    decision    TEXT             NOT NULL CHECK (decision IN ('allow', 'deny')),
    rule        TEXT             NOT NULL DEFAULT '',
    -- The response's gRPC status code; NULL when the call ended without one.
    grpc_status INTEGER,
    latency_ms  DOUBLE PRECISION NOT NULL CHECK (latency_ms >= 0)
);

-- The admin page lists newest first (at, then id) and filters by identity, method and
-- workflow id, each with the same order, and by a time range.
CREATE INDEX gate_audit_at ON gate_audit (at DESC, id DESC);
CREATE INDEX gate_audit_identity ON gate_audit (identity, at DESC, id DESC);
CREATE INDEX gate_audit_method ON gate_audit (method, at DESC, id DESC);
CREATE INDEX gate_audit_workflow ON gate_audit (workflow_id, at DESC, id DESC);

CREATE FUNCTION gate_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'gate_audit is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER gate_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON gate_audit
    FOR EACH ROW EXECUTE FUNCTION gate_audit_append_only();
CREATE TRIGGER gate_audit_no_truncate
    BEFORE TRUNCATE ON gate_audit
    FOR EACH STATEMENT EXECUTE FUNCTION gate_audit_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON gate_audit FROM PUBLIC;
