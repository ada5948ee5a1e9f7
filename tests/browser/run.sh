#!/usr/bin/env bash
# Browser end-to-end test of bulwark-control's admin page in headless Debian Chromium.
#
# Starts its own control instance (fresh temporary certs, a fresh database on the Postgres
# server given by BULWARK_TEST_DATABASE_URL or the native stack's), so it runs beside a
# running stack without touching it. Chromium trusts the temporary CA through a private NSS
# database; no certificate errors are ignored. Screenshots go to tests/browser/out/.
#
# Prints one line per check and "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$HERE/out"
mkdir -p "$OUT"

die() { echo "run.sh: $*" >&2; exit 1; }
command -v /usr/bin/chromium >/dev/null || die "Debian chromium missing: apt-get install -y chromium chromium-driver"
command -v certutil >/dev/null || die "certutil missing: apt-get install -y libnss3-tools"
command -v psql >/dev/null || die "psql missing"
command -v node >/dev/null || die "node missing"

if [[ -z ${BULWARK_TEST_DATABASE_URL:-} ]]; then
  PWFILE="$ROOT/.bulwark/secrets/postgres-superuser.password"
  [[ -r $PWFILE ]] || die "set BULWARK_TEST_DATABASE_URL (a superuser URL) or run the native stack"
  PG_PORT=$(sed -n 's/^BULWARK_PG_PORT=//p' "$ROOT/.bulwark/env" 2>/dev/null || true)
  BULWARK_TEST_DATABASE_URL="postgres://postgres:$(cat "$PWFILE")@127.0.0.1:${PG_PORT:-15432}/postgres"
fi

(cd "$ROOT" && cargo build -q -p bulwark-init -p bulwark-control) || die "cargo build failed"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"

TMP=$(mktemp -d)
DB="bulwark_browser_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
CONTROL_PID=""
cleanup() {
  [[ -n $CONTROL_PID ]] && kill "$CONTROL_PID" 2>/dev/null && wait "$CONTROL_PID" 2>/dev/null || true
  psql -q "$BULWARK_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

psql -q -v ON_ERROR_STOP=1 "$BULWARK_TEST_DATABASE_URL" -c "CREATE DATABASE $DB" >/dev/null || die "cannot create a test database"
(umask 077; printf '%s/%s\n' "${BULWARK_TEST_DATABASE_URL%/*}" "$DB" >"$TMP/db.url")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port) ADMIN_PORT=$(free_port)
URL="https://localhost:$PORT" ADMIN_URL="https://localhost:$ADMIN_PORT"

"$BIN/bulwark-init" generate --out "$TMP/certs" >"$TMP/init.log" 2>&1 || { cat "$TMP/init.log"; die "generate failed"; }
"$BIN/bulwark-init" database --database-url-file "$TMP/db.url" --out "$TMP/credentials" \
  --token-url "$URL/oauth/token" >>"$TMP/init.log" 2>&1 || { cat "$TMP/init.log"; die "init database failed"; }
[[ $(stat -c %a "$TMP/credentials/admin-password") == 600 ]] || die "admin-password is not 0600"

# This control instance has its own certs: it must not probe the running stack's Temporal
# (whose certificate would never match) even when the stack's env is exported.
env -u BULWARK_TEMPORAL_ADDRESS -u BULWARK_TEMPORAL_SERVER_NAME -u BULWARK_NAMESPACES \
BULWARK_CERTS_DIR="$TMP/certs" BULWARK_DATABASE_URL_FILE="$TMP/db.url" \
BULWARK_CONTROL_LISTEN="127.0.0.1:$PORT" BULWARK_CONTROL_URL="$URL" \
BULWARK_ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
BULWARK_ADMIN_PASSWORD_FILE="$TMP/credentials/admin-password" \
BULWARK_DEPLOYMENT_SECRETS_DIR="$TMP/credentials" \
BULWARK_JWKS_PROPAGATION=1s BULWARK_RENEW_INTERVAL=0s BULWARK_LOG_FORMAT=json \
  "$BIN/bulwark-control" >"$OUT/control.log" 2>&1 &
CONTROL_PID=$!
for _ in $(seq 1 100); do
  curl -sf --cacert "$TMP/certs/ca.crt" "$URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$CONTROL_PID" 2>/dev/null || { tail -20 "$OUT/control.log"; die "bulwark-control exited"; }
  sleep 0.2
done
curl -sf --cacert "$TMP/certs/ca.crt" "$URL/readyz" >/dev/null || die "bulwark-control not ready"
for _ in $(seq 1 50); do
  curl -sf --cacert "$TMP/certs/ca.crt" "$ADMIN_URL/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf --cacert "$TMP/certs/ca.crt" "$ADMIN_URL/healthz" >/dev/null || die "bulwark-control's admin listener not ready"
# The admin page is on its own listener only: the public one does not route it at all.
for path in /admin /admin/ /admin/login; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TMP/certs/ca.crt" "$URL$path")
  [[ $code == 404 ]] || die "the public listener answered $path with $code (want 404)"
done

# Chromium (NSS) trusts the temporary CA through a private NSS database under its own HOME.
mkdir -p "$TMP/home/.pki/nssdb"
certutil -N -d "sql:$TMP/home/.pki/nssdb" --empty-password
certutil -A -d "sql:$TMP/home/.pki/nssdb" -t "C,," -n "bulwark-test-ca" -i "$TMP/certs/ca.crt"

[[ -d $HERE/node_modules/playwright-core ]] || (cd "$HERE" && npm install --no-audit --no-fund --silent) \
  || die "npm install playwright-core failed"

status=0
ADMIN_BASE_URL="$ADMIN_URL" PUBLIC_URL="$URL" ADMIN_PASSWORD_FILE="$TMP/credentials/admin-password" BROWSER_HOME="$TMP/home" \
OUT_DIR="$OUT" CERTS_DIR="$TMP/certs" node "$HERE/admin.test.mjs" || status=$?
# The admin password must not appear in the server log.
if grep -qF "$(cat "$TMP/credentials/admin-password")" "$OUT/control.log"; then
  echo "FAIL - the admin password appears in the control log"; exit 1
fi
exit $status
