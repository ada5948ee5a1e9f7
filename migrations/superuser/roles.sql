-- The roles and databases of the Bulwark stack, as the superuser; idempotent (scripts/up.sh
-- runs it on every start, the compose Postgres init script on the first). A password given
-- again is set again.
-- psql variables (set with \set lines on stdin, never on a command line): tpw, bpw, and gpw
-- (optional: without it there is no bulwark_gate role, so nothing can write gate_audit).
SELECT format('CREATE ROLE temporal LOGIN PASSWORD %L', :'tpw') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal') \gexec
SELECT format('ALTER ROLE temporal PASSWORD %L', :'tpw') \gexec
SELECT format('CREATE ROLE bulwark LOGIN PASSWORD %L', :'bpw') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bulwark') \gexec
SELECT format('ALTER ROLE bulwark PASSWORD %L', :'bpw') \gexec
-- bulwark-gate's audit writer. Its grants (CONNECT on bulwark, INSERT on gate_audit and
-- USAGE on its sequence, nothing else) are in audit-owner.sql: the table exists only after
-- the migrations, which run after this file.
\if :{?gpw}
SELECT format('CREATE ROLE bulwark_gate LOGIN PASSWORD %L', :'gpw') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bulwark_gate') \gexec
SELECT format('ALTER ROLE bulwark_gate LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE', :'gpw') \gexec
\endif
SELECT 'CREATE DATABASE temporal OWNER temporal' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal') \gexec
SELECT 'CREATE DATABASE temporal_visibility OWNER temporal' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal_visibility') \gexec
SELECT 'CREATE DATABASE bulwark OWNER bulwark' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'bulwark') \gexec
-- Only each database's owner may connect (and bulwark_gate to bulwark, granted in
-- audit-owner.sql); Postgres grants CONNECT to PUBLIC by default.
REVOKE ALL ON DATABASE temporal, temporal_visibility, bulwark FROM PUBLIC;
