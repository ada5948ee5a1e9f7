#!/bin/sh
# bulwark-bootstrap: the compose stack's one-shot setup, in two phases run by two services of
# the bulwark-init image.
#
#   bulwark-bootstrap generate   before Postgres: identity material (bulwark-init generate +
#                                verify) and, when absent, random database passwords.
#                                Runs as root only to hand each secret file to its reader;
#                                bulwark-init itself runs as the unprivileged bulwark user.
#   bulwark-bootstrap database   after Postgres is healthy: the Bulwark database URL file,
#                                migrations and OAuth clients (bulwark-init database), and the
#                                demo credential for the reference workflows.
#
# Secret files (BULWARK_SECRETS_DIR, default /secrets; any of them may instead be provided,
# e.g. as a Docker secret, through the matching *_FILE variable):
#   postgres-superuser.password  owner postgres (999), 0600
#   temporal-db.password         owner temporal, group postgres, 0640
#   bulwark-db.password          owner bulwark, group postgres, 0640
#   demo-reader.password         owner bulwark, group postgres, 0640
#   bulwark-db.url               owner bulwark, 0600 (written by the database phase)
# Identity material and credentials are owned by bulwark; each private file its consumer
# needs is granted to that consumer's group (0640), in a directory others may traverse but
# not list (0711). bulwark-init and bulwark-control keep these grants when they replace a
# file. No secret value is ever printed.
set -eu

CERTS=${BULWARK_CERTS_DIR:-/certs}
SECRETS=${BULWARK_SECRETS_DIR:-/secrets}
CREDENTIALS=${BULWARK_CREDENTIALS_DIR:-/credentials}
BULWARK_UID=${BULWARK_UID:-10001}
POSTGRES_UID=${BULWARK_POSTGRES_UID:-999}
# Consumers (uid = gid), as docker-compose.yml runs them.
TEMPORAL_ID=${BULWARK_TEMPORAL_UID:-10010}
API_ID=${BULWARK_API_UID:-10011}
WORKER_ID=${BULWARK_WORKER_UID:-10012}
UI_ID=${BULWARK_UI_UID:-10013}
ADMIN_ID=${BULWARK_ADMIN_UID:-10014}

log() { printf 'bulwark-bootstrap: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
as_bulwark() {
  if [ "$(id -u)" = 0 ]; then
    # Member of every consumer group, so that replacing a granted file can keep its group.
    setpriv --reuid="$BULWARK_UID" --regid="$BULWARK_UID" --no-new-privs \
      --groups="$TEMPORAL_ID,$API_ID,$WORKER_ID,$UI_ID,$ADMIN_ID" -- "$@"
  else
    "$@"
  fi
}

# secret NAME OWNER GROUP MODE: create $SECRETS/NAME with 24 random bytes (hex) unless present.
secret() {
  f="$SECRETS/$1"
  if [ ! -s "$f" ]; then
    bulwark-init secrets gen-password --out "$f" || die "generating $f failed"
    log "generated $f"
  fi
  chown "$2:$3" "$f" && chmod "$4" "$f"
}

# grant DIR GID FILE...: FILE becomes readable by group GID (0640) and nobody else but its owner.
grant() {
  d=$1 g=$2; shift 2
  for f in "$@"; do
    [ -f "$d/$f" ] || die "$d/$f is missing; cannot grant it to group $g"
    chgrp "$g" "$d/$f" || die "cannot give $d/$f to group $g"
    chmod 0640 "$d/$f" || die "cannot make $d/$f readable by group $g"
  done
}

# secret_path VAR NAME: the file ${VAR}_FILE names if set, else $SECRETS/NAME (never the value).
secret_path() {
  eval "path=\${$1_FILE:-}"
  [ -n "$path" ] || path="$SECRETS/$2"
  [ -s "$path" ] || die "missing secret $path"
  printf '%s' "$path"
}

generate() {
  [ "$(id -u)" = 0 ] || die "the generate phase runs as root (compose: user \"0:0\") to hand secret files to their readers"
  install -d -o "$BULWARK_UID" -g "$BULWARK_UID" -m 0711 "$CERTS"
  log "bulwark-init generate --out $CERTS"
  as_bulwark bulwark-init generate --out "$CERTS"
  as_bulwark bulwark-init verify --dir "$CERTS" >/dev/null || {
    as_bulwark bulwark-init verify --dir "$CERTS" >&2 || true
    die "certificates in $CERTS are not valid"
  }
  chmod 0711 "$CERTS"
  grant "$CERTS" "$TEMPORAL_ID" temporal-server.key internode.key
  grant "$CERTS" "$API_ID" api-server.key client-api.key
  grant "$CERTS" "$WORKER_ID" client-worker.key
  grant "$CERTS" "$UI_ID" client-ui.key
  grant "$CERTS" "$ADMIN_ID" client-admin.key system-token.jwt
  # Traversable, not listable; each file carries its own owner and mode.
  install -d -o 0 -g "$POSTGRES_UID" -m 0711 "$SECRETS"
  [ -n "${POSTGRES_PASSWORD_FILE:-}" ] || secret postgres-superuser.password "$POSTGRES_UID" "$POSTGRES_UID" 0600
  [ -n "${BULWARK_TEMPORAL_DB_PASSWORD_FILE:-}" ] || secret temporal-db.password "$TEMPORAL_ID" "$POSTGRES_UID" 0640
  [ -n "${BULWARK_DB_PASSWORD_FILE:-}" ] || secret bulwark-db.password "$BULWARK_UID" "$POSTGRES_UID" 0640
  [ -n "${BULWARK_DEMO_READER_PASSWORD_FILE:-}" ] || secret demo-reader.password "$BULWARK_UID" "$POSTGRES_UID" 0640
  # The database phase (unprivileged) writes the URL file here.
  [ -e "$SECRETS/bulwark-db.url" ] || install -o "$BULWARK_UID" -g "$BULWARK_UID" -m 0600 /dev/null "$SECRETS/bulwark-db.url"
  chown "$BULWARK_UID:$BULWARK_UID" "$SECRETS/bulwark-db.url"; chmod 0600 "$SECRETS/bulwark-db.url"
  log "identity material and secrets ready"
}

database() {
  host=${BULWARK_PG_HOST:-postgres} port=${BULWARK_PG_PORT:-5432}
  url=${BULWARK_DATABASE_URL_FILE:-$SECRETS/bulwark-db.url}
  pw=$(secret_path BULWARK_DB_PASSWORD bulwark-db.password)
  # Rewritten in place: the file was created (owned by bulwark, 0600) by the generate phase.
  bulwark-init secrets database-url --out "$url" --password-file "$pw" --host "$host" --port "$port" \
    || die "writing $url failed"
  install -d -m 0711 "$CREDENTIALS"
  # The reference workflows' credential (read-only role on the demo database, created by the
  # Postgres init script) in the app secret store the worker's component files point to.
  # Written once, before bulwark-init, which adds its own entries (http-demo) and keeps ours.
  if [ ! -s "$CREDENTIALS/app-secrets.json" ]; then
    bulwark-init secrets app-secrets --out "$CREDENTIALS/app-secrets.json" \
      --demo-password-file "$(secret_path BULWARK_DEMO_READER_PASSWORD demo-reader.password)" \
      || die "writing $CREDENTIALS/app-secrets.json failed"
  fi
  log "bulwark-init database (migrations, OAuth clients)"
  # The token URL as the services (and the HttpCall workflow's credential) reach control.
  bulwark-init database --database-url-file "$url" --out "$CREDENTIALS" \
    --token-url "${BULWARK_TOKEN_URL:-https://bulwark-control:8443/oauth/token}"
  chmod 0711 "$CREDENTIALS"
  grant "$CREDENTIALS" "$API_ID" deployment-secrets-api.json
  grant "$CREDENTIALS" "$WORKER_ID" deployment-secrets-worker.json app-secrets.json
  log "database ready"
}

case ${1:-} in
  generate) generate ;;
  database) database ;;
  *) die "usage: bulwark-bootstrap generate|database" ;;
esac
