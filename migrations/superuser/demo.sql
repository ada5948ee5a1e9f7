-- The reference workflows' demo data, as the superuser; idempotent: a `demo` database that
-- only the least-privilege role bulwark_reader may connect to, with one table it may read.
-- Ends connected to `demo`, so run it last in a session.
-- psql variable (set with a \set line on stdin, never on a command line): dpw.
SELECT format('CREATE ROLE bulwark_reader LOGIN PASSWORD %L', :'dpw') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bulwark_reader') \gexec
SELECT format('ALTER ROLE bulwark_reader PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE', :'dpw') \gexec
SELECT 'CREATE DATABASE demo' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'demo') \gexec
REVOKE ALL ON DATABASE demo FROM PUBLIC;
GRANT CONNECT ON DATABASE demo TO bulwark_reader;
\connect demo
CREATE TABLE IF NOT EXISTS inventory (id serial PRIMARY KEY, item text NOT NULL, quantity integer NOT NULL);
INSERT INTO inventory (item, quantity) SELECT * FROM (VALUES ('anvil', 3), ('rope', 12), ('lantern', 5)) v WHERE NOT EXISTS (SELECT FROM inventory);
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO bulwark_reader;
GRANT SELECT ON inventory TO bulwark_reader;
