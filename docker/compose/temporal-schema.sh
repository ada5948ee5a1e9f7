#!/bin/sh
# Temporal schema job (temporalio/admin-tools image): creates or upgrades the default and
# visibility schemas with temporal-sql-tool; a no-op when they are current.
set -eu
export SQL_PLUGIN=postgres12 SQL_HOST="${BULWARK_PG_HOST:-postgres}" SQL_PORT="${BULWARK_PG_PORT:-5432}" SQL_USER=temporal
SQL_PASSWORD=$(cat "${BULWARK_TEMPORAL_DB_PASSWORD_FILE:?}")
export SQL_PASSWORD
for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*} schema=${pair##*:}
  if temporal-sql-tool --db "$db" update-schema --schema-name "postgresql/v12/$schema" >/tmp/schema.log 2>&1; then
    echo "temporal-schema: $db is current"
    continue
  fi
  echo "temporal-schema: setting up $db"
  temporal-sql-tool --db "$db" setup-schema -v 0.0 || { cat /tmp/schema.log >&2; exit 1; }
  temporal-sql-tool --db "$db" update-schema --schema-name "postgresql/v12/$schema"
done
echo "temporal-schema: done"
