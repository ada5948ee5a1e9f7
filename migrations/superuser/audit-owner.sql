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
-- sqlx does not read this directory (it takes only files directly in migrations/). A later
-- migration that alters admin_audit must therefore be run by the superuser too.

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
END
$$;

CREATE OR REPLACE FUNCTION bulwark_audit.refuse_audit_drop() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
        IF o.object_identity LIKE '%admin_audit%' OR o.schema_name = 'bulwark_audit' THEN
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
