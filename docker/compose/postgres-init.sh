#!/bin/bash
# Postgres first-start script (mounted into /docker-entrypoint-initdb.d): the roles and
# databases of the Bulwark stack, from the same SQL files scripts/up.sh runs natively
# (migrations/superuser/roles.sql and demo.sql, mounted at BULWARK_SQL_DIR). Passwords are read
# from files (never from the environment); only each database's owner may connect.
set -euo pipefail
pw() { local f=$1; [[ -s $f ]] || { echo "postgres-init: missing $f" >&2; exit 1; }; tr -d '\n' <"$f"; }
S=${BULWARK_SECRETS_DIR:-/run/bulwark/secrets}
SQL=${BULWARK_SQL_DIR:-/bulwark/sql}
# The passwords reach psql on stdin as \set lines, never as arguments (ps shows those).
# psql unescapes \ and '' in quoted \set values: escape both.
pwset() { printf "\\set %s '%s'\n" "$1" "$(pw "$2" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"; }
for sqlf in roles.sql demo.sql; do [[ -s $SQL/$sqlf ]] || { echo "postgres-init: missing $SQL/$sqlf" >&2; exit 1; }; done
{
pwset tpw "${BULWARK_TEMPORAL_DB_PASSWORD_FILE:-$S/temporal-db.password}"
pwset bpw "${BULWARK_DB_PASSWORD_FILE:-$S/bulwark-db.password}"
pwset dpw "${BULWARK_DEMO_READER_PASSWORD_FILE:-$S/demo-reader.password}"
# gpw: bulwark-gate's audit writer bulwark_gate (its grants: migrations/superuser/audit-owner.sql).
pwset gpw "${BULWARK_GATE_DB_PASSWORD_FILE:-$S/gate-db.password}"
# demo.sql ends connected to the demo database: last.
cat "$SQL/roles.sql" "$SQL/demo.sql"
} | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres --no-psqlrc -q
echo "postgres-init: roles temporal, bulwark, bulwark_gate, bulwark_reader; databases temporal, temporal_visibility, bulwark, demo"
