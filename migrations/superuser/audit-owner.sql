-- Run by the Postgres SUPERUSER in the Bulwark database after the migrations (scripts/up.sh,
-- the compose bootstrap, and services/control/tests/admin.rs). Idempotent.
--
-- The services log in as the database's owner (bulwark). If that role also owned
-- admin_audit it could disable the append-only triggers, replace their function, or drop
-- the table. So the table, its sequence and the trigger function move to a role nobody logs
-- in as, the application keeps only SELECT and INSERT, and an event trigger (only a
-- superuser can create or alter one) refuses to drop any of it: as the owner of the schema
-- `public`, the application could otherwise still DROP the table.
--
-- gate_audit (bulwark-gate's record of Temporal calls) is handed over the same way; the
-- application may only SELECT it (the admin page), and the gate's own login role
-- bulwark_gate (created by roles.sql, when it was given a password) may only INSERT: it can
-- neither read the log back nor touch any other table. The grants live here, not in
-- roles.sql, because this runs after the migrations have created the table, on every start.
--
-- sqlx does not read this directory (it takes only files directly in migrations/). A later
-- migration that alters admin_audit or gate_audit must therefore be run by the superuser too.

DO $$
BEGIN
    CREATE ROLE bulwark_audit_owner NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

CREATE SCHEMA IF NOT EXISTS bulwark_audit AUTHORIZATION bulwark_audit_owner;
REVOKE ALL ON SCHEMA bulwark_audit FROM PUBLIC;

DO $$
DECLARE
    app text := (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database());
BEGIN
    IF to_regprocedure('public.admin_audit_append_only()') IS NOT NULL THEN
        ALTER FUNCTION public.admin_audit_append_only() SET SCHEMA bulwark_audit;
    END IF;
    ALTER FUNCTION bulwark_audit.admin_audit_append_only() OWNER TO bulwark_audit_owner;
    -- Also hands over the id sequence (owned by the table's column).
    ALTER TABLE public.admin_audit OWNER TO bulwark_audit_owner;
    ALTER SEQUENCE public.admin_audit_id_seq OWNER TO bulwark_audit_owner;
    EXECUTE format('REVOKE ALL ON public.admin_audit FROM %I', app);
    EXECUTE format('GRANT SELECT, INSERT ON public.admin_audit TO %I', app);
    EXECUTE format('GRANT USAGE ON SEQUENCE public.admin_audit_id_seq TO %I', app);
    -- The trigger function runs with the caller's rights; the caller needs to reach it.
    EXECUTE format('GRANT USAGE ON SCHEMA bulwark_audit TO %I', app);

    IF to_regprocedure('public.gate_audit_append_only()') IS NOT NULL THEN
        ALTER FUNCTION public.gate_audit_append_only() SET SCHEMA bulwark_audit;
    END IF;
    ALTER FUNCTION bulwark_audit.gate_audit_append_only() OWNER TO bulwark_audit_owner;
    ALTER FUNCTION bulwark_audit.gate_audit_append_only() SET search_path = pg_catalog, pg_temp;
    ALTER TABLE public.gate_audit OWNER TO bulwark_audit_owner;
    ALTER SEQUENCE public.gate_audit_id_seq OWNER TO bulwark_audit_owner;
    EXECUTE format('REVOKE ALL ON public.gate_audit FROM %I', app);
    EXECUTE format('REVOKE ALL ON SEQUENCE public.gate_audit_id_seq FROM %I', app);
    EXECUTE format('GRANT SELECT ON public.gate_audit TO %I', app);
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'bulwark_gate') THEN
        -- Reset first, so a grant added by hand does not survive a restart.
        REVOKE ALL ON public.gate_audit FROM bulwark_gate;
        REVOKE ALL ON SEQUENCE public.gate_audit_id_seq FROM bulwark_gate;
        GRANT INSERT ON public.gate_audit TO bulwark_gate;
        GRANT USAGE ON SEQUENCE public.gate_audit_id_seq TO bulwark_gate;
        -- Postgres 15 no longer lets PUBLIC create in `public`, but still lets it use it;
        -- say so explicitly, the INSERT needs it.
        GRANT USAGE ON SCHEMA public TO bulwark_gate;
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO bulwark_gate', current_database());
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION bulwark_audit.refuse_audit_drop() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
        IF o.object_identity LIKE '%admin_audit%' OR o.object_identity LIKE '%gate_audit%'
           OR o.schema_name = 'bulwark_audit' THEN
            RAISE EXCEPTION 'the audit log cannot be dropped (% %)', o.object_type, o.object_identity
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
END
$$;
ALTER FUNCTION bulwark_audit.refuse_audit_drop() OWNER TO bulwark_audit_owner;
-- Both functions (this one pinned in its CREATE, so a re-run never leaves it unpinned) run
-- with the caller's search_path unless pinned: the application owns
-- schema `public` and could put its own pg_event_trigger_dropped_objects() or LIKE operator
-- first in its path and so blind the guard. pg_temp last: never searched for functions.
ALTER FUNCTION bulwark_audit.admin_audit_append_only() SET search_path = pg_catalog, pg_temp;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'bulwark_refuse_audit_drop') THEN
        CREATE EVENT TRIGGER bulwark_refuse_audit_drop ON sql_drop
            EXECUTE FUNCTION bulwark_audit.refuse_audit_drop();
    END IF;
END
$$;
