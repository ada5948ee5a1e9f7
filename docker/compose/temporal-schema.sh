#!/bin/sh
# Temporal schema job (temporalio/admin-tools image): creates or upgrades the default and
# visibility schemas with temporal-sql-tool; a no-op when they are current.
#
# A schema is set up only when the database answers that it has none (no schema_version
# table). Any other failure (the database not reachable yet: container DNS and Postgres can
# lag behind its health check) is retried, never taken as "empty", so a live database is
# never re-initialised.
set -eu
export SQL_PLUGIN=postgres12 SQL_HOST="${BULWARK_PG_HOST:-postgres}" SQL_PORT="${BULWARK_PG_PORT:-5432}" SQL_USER=temporal
SQL_PASSWORD=$(cat "${BULWARK_TEMPORAL_DB_PASSWORD_FILE:?}")
export SQL_PASSWORD
attempts=${BULWARK_SCHEMA_ATTEMPTS:-10}
for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*} schema=${pair##*:} n=0
  while :; do
    if temporal-sql-tool --db "$db" update-schema --schema-name "postgresql/v12/$schema" >/tmp/schema.log 2>&1; then
      echo "temporal-schema: $db is current"
      break
    fi
    if grep -q 'schema_version.* does not exist' /tmp/schema.log; then
      echo "temporal-schema: setting up $db"
      temporal-sql-tool --db "$db" setup-schema -v 0.0
      temporal-sql-tool --db "$db" update-schema --schema-name "postgresql/v12/$schema"
      break
    fi
    n=$((n + 1))
    [ "$n" -lt "$attempts" ] || { echo "temporal-schema: $db: giving up after $n attempts" >&2; cat /tmp/schema.log >&2; exit 1; }
    echo "temporal-schema: $db not reachable yet (attempt $n): $(grep -o '"error": "[^"]*"' /tmp/schema.log | head -1)" >&2
    sleep "$n"
  done
done
echo "temporal-schema: done"
