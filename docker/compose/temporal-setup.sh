#!/bin/sh
# Temporal setup job (temporalio/admin-tools image): waits until Temporal serves through
# bulwark-gate (mTLS), then creates the namespaces Bulwark's tokens grant (idempotent). Uses
# the admin client certificate and the static system token bound to it (role system in the
# gate's policy) from the certs volume (read-only).
set -eu
C=${BULWARK_CERTS_DIR:-/certs}
set -- --address "${BULWARK_TEMPORAL_ADDRESS:-gate:7233}" --tls-server-name "${BULWARK_TEMPORAL_SERVER_NAME:-temporal}" \
  --tls-ca-path "$C/ca.crt" --tls-cert-path "$C/client-admin.crt" --tls-key-path "$C/client-admin.key"
i=0
until temporal operator cluster health "$@" 2>/dev/null | grep -q SERVING; do
  i=$((i + 1)); [ "$i" -lt "${BULWARK_WAIT_SECONDS:-180}" ] || { echo "temporal-setup: frontend not serving" >&2; exit 1; }
  sleep 1
done
echo "temporal-setup: frontend serving"
# The CLI reads the token from the environment, never from an argument (ps shows those).
TEMPORAL_API_KEY=$(cat "$C/system-token.jwt"); export TEMPORAL_API_KEY
for ns in $(echo "${BULWARK_NAMESPACES:-default}" | tr ',' ' '); do
  if temporal operator namespace describe --namespace "$ns" "$@" >/dev/null 2>&1; then
    echo "temporal-setup: namespace $ns exists"
  else
    temporal operator namespace create --namespace "$ns" --retention "${BULWARK_NAMESPACE_RETENTION:-72h}" "$@"
    echo "temporal-setup: created namespace $ns"
  fi
done
