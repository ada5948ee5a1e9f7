#!/bin/sh
# Entrypoint wrapper for the temporalio/server image (mounted read-only): the address other
# Temporal services reach this one at, and the database password read from a file, then the
# image's own command. The password is exported to the server process only (our
# config/temporal/temporal.yaml reads BULWARK_TEMPORAL_DB_PASSWORD); it never appears in the
# compose file or the container's configuration.
set -eu
if [ -z "${BULWARK_TEMPORAL_BROADCAST_IP:-}" ]; then
  BULWARK_TEMPORAL_BROADCAST_IP=$(getent hosts "$(hostname)" | awk '{print $1; exit}')
fi
export BULWARK_TEMPORAL_BROADCAST_IP
f=${BULWARK_TEMPORAL_DB_PASSWORD_FILE:?BULWARK_TEMPORAL_DB_PASSWORD_FILE must name the password file}
BULWARK_TEMPORAL_DB_PASSWORD=$(cat "$f")
export BULWARK_TEMPORAL_DB_PASSWORD
exec temporal-server start "$@"
