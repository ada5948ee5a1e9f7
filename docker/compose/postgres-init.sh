#!/bin/bash
# Postgres first-start script (mounted into /docker-entrypoint-initdb.d): the roles and
# databases of the Bulwark stack, the same as scripts/up.sh creates natively. Passwords are read
# from files (never from the environment); only each database's owner may connect.
set -euo pipefail
pw() { local f=$1; [[ -s $f ]] || { echo "postgres-init: missing $f" >&2; exit 1; }; tr -d '\n' <"$f"; }
S=${BULWARK_SECRETS_DIR:-/run/bulwark/secrets}
# The passwords reach psql on stdin as \set lines, never as arguments (ps shows those).
# psql unescapes \ and '' in quoted \set values: escape both.
pwset() { printf "\\set %s '%s'\n" "$1" "$(pw "$2" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"; }
{
pwset tpw "${BULWARK_TEMPORAL_DB_PASSWORD_FILE:-$S/temporal-db.password}"
pwset bpw "${BULWARK_DB_PASSWORD_FILE:-$S/bulwark-db.password}"
pwset dpw "${BULWARK_DEMO_READER_PASSWORD_FILE:-$S/demo-reader.password}"
cat <<'SQL'
SELECT format('CREATE ROLE temporal LOGIN PASSWORD %L', :'tpw') \gexec
SELECT format('CREATE ROLE bulwark LOGIN PASSWORD %L', :'bpw') \gexec
SELECT format('CREATE ROLE bulwark_reader LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE', :'dpw') \gexec
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE DATABASE bulwark OWNER bulwark;
CREATE DATABASE demo;
REVOKE ALL ON DATABASE temporal, temporal_visibility, bulwark, demo FROM PUBLIC;
GRANT CONNECT ON DATABASE demo TO bulwark_reader;
\connect demo
CREATE TABLE inventory (id serial PRIMARY KEY, item text NOT NULL, quantity integer NOT NULL);
INSERT INTO inventory (item, quantity) VALUES ('anvil', 3), ('rope', 12), ('lantern', 5);
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO bulwark_reader;
GRANT SELECT ON inventory TO bulwark_reader;
SQL
} | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres --no-psqlrc -q
echo "postgres-init: roles temporal, bulwark, bulwark_reader; databases temporal, temporal_visibility, bulwark, demo"
