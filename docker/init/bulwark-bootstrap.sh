#!/bin/sh
# bulwark-bootstrap: the compose stack's one-shot setup, in two phases run by two services of
# the bulwark-init image.
#
#   bulwark-bootstrap generate   before Postgres: identity material (bulwark-init generate +
#                                verify) and, when absent, random database passwords.
#                                Runs as root only to hand each secret file to its reader;
#                                bulwark-init itself runs as the unprivileged bulwark user.
#   bulwark-bootstrap database   after Postgres is healthy: the database URL files (control's
#                                and the gate's), migrations and OAuth clients (bulwark-init
#                                database), and the demo credential for the reference workflows.
#
# Who owns and may read each secret file (certs, credentials and secrets volumes) is the
# table config/access.table (baked in at /usr/share/bulwark/access.table; BULWARK_ACCESS_TABLE
# names another): this script applies it, tests/compose/run.sh checks it. Any database
# password may instead be provided, e.g. as a Docker secret, through the matching *_FILE
# variable. Identity material and credentials are owned by bulwark; each private file its
# consumer needs is granted to that consumer's group (0640), in a directory others may
# traverse but not list (0711). bulwark-init and bulwark-control keep these grants when they
# replace a file. No secret value is ever printed.
set -eu

CERTS=${BULWARK_CERTS_DIR:-/certs}
SECRETS=${BULWARK_SECRETS_DIR:-/secrets}
CREDENTIALS=${BULWARK_CREDENTIALS_DIR:-/credentials}
TABLE=${BULWARK_ACCESS_TABLE:-/usr/share/bulwark/access.table}

log() { printf 'bulwark-bootstrap: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ -s "$TABLE" ] || die "missing the access table $TABLE"

# uid_of IDENTITY: its uid (= gid) from the table's `user` rows, or a shared group's gid from
# its `group` row.
uid_of() {
  while read -r kind name uid _; do
    case $kind in user|group) ;; *) continue ;; esac
    if [ "$name" = "$1" ]; then printf '%s' "$uid"; return 0; fi
  done <"$TABLE"
  die "no user or group $1 in $TABLE"
}
BULWARK_UID=$(uid_of bulwark) || exit 1
POSTGRES_UID=$(uid_of postgres) || exit 1
# Every consumer's group (all users but bulwark and postgres, and the shared groups),
# comma-separated.
consumer_gids() {
  out=''
  while read -r kind name uid _; do
    case $kind in user|group) ;; *) continue ;; esac
    case $name in bulwark|postgres) continue ;; esac
    out="${out:+$out,}$uid"
  done <"$TABLE"
  printf '%s' "$out"
}
CONSUMERS=$(consumer_gids)

as_bulwark() {
  if [ "$(id -u)" = 0 ]; then
    # Member of every consumer group, so that replacing a granted file can keep its group.
    setpriv --reuid="$BULWARK_UID" --regid="$BULWARK_UID" --no-new-privs \
      --groups="$CONSUMERS" -- "$@"
  else
    "$@"
  fi
}

# secret NAME OWNER GROUP MODE: create $SECRETS/NAME with 24 random bytes (hex) unless present.
secret() {
  f="$SECRETS/$1"
  if [ ! -s "$f" ]; then
    bulwark-init secrets gen-password --out "$f" </dev/null || die "generating $f failed"
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

# grant_table VOLUME DIR: every file of VOLUME that the table grants to a group other than
# its owner's is granted so in DIR (owner-only files are left as bulwark-init wrote them).
grant_table() {
  while read -r kind path owner group mode _; do
    [ "$kind" = file ] || continue
    case $path in "$1"/*) ;; *) continue ;; esac
    [ "$group" = "$owner" ] && continue
    [ "$mode" = 0640 ] || die "$TABLE: $path: a group grant is mode 0640, not $mode"
    gid=$(uid_of "$group") || exit 1
    grant "$2" "$gid" "${path#*/}"
  done <"$TABLE"
}

# secret_as NAME: $SECRETS/NAME generated unless present, with the table's owner, group, mode.
secret_as() {
  while read -r kind path owner group mode _; do
    [ "$kind" = file ] && [ "$path" = "secrets/$1" ] || continue
    o=$(uid_of "$owner") || exit 1
    g=$(uid_of "$group") || exit 1
    secret "$1" "$o" "$g" "$mode"
    return 0
  done <"$TABLE"
  die "secrets/$1 is not in $TABLE"
}

# placeholder NAME: $SECRETS/NAME, empty unless present, with the table's owner, group and
# mode; the database phase (unprivileged) rewrites it in place, so it keeps them.
placeholder() {
  while read -r kind path owner group mode _; do
    [ "$kind" = file ] && [ "$path" = "secrets/$1" ] || continue
    o=$(uid_of "$owner") || exit 1
    g=$(uid_of "$group") || exit 1
    [ -e "$SECRETS/$1" ] || install -o "$o" -g "$g" -m "$mode" /dev/null "$SECRETS/$1"
    chown "$o:$g" "$SECRETS/$1" && chmod "$mode" "$SECRETS/$1"
    return 0
  done <"$TABLE"
  die "secrets/$1 is not in $TABLE"
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
  grant_table certs "$CERTS"
  # Traversable, not listable; each file carries its own owner and mode.
  install -d -o 0 -g "$POSTGRES_UID" -m 0711 "$SECRETS"
  [ -n "${POSTGRES_PASSWORD_FILE:-}" ] || secret_as postgres-superuser.password
  [ -n "${BULWARK_TEMPORAL_DB_PASSWORD_FILE:-}" ] || secret_as temporal-db.password
  [ -n "${BULWARK_DB_PASSWORD_FILE:-}" ] || secret_as bulwark-db.password
  [ -n "${BULWARK_DEMO_READER_PASSWORD_FILE:-}" ] || secret_as demo-reader.password
  [ -n "${BULWARK_GATE_DB_PASSWORD_FILE:-}" ] || secret_as gate-db.password
  # The database phase (unprivileged) writes the URL files here: control's, and the gate's
  # (granted to the gate's group).
  placeholder bulwark-db.url
  placeholder gate-db.url
  log "identity material and secrets ready"
}

database() {
  host=${BULWARK_PG_HOST:-postgres} port=${BULWARK_PG_PORT:-5432}
  url=${BULWARK_DATABASE_URL_FILE:-$SECRETS/bulwark-db.url}
  pw=$(secret_path BULWARK_DB_PASSWORD bulwark-db.password)
  # Rewritten in place: the file was created (owned by bulwark, 0600) by the generate phase.
  bulwark-init secrets database-url --out "$url" --password-file "$pw" --host "$host" --port "$port" \
    || die "writing $url failed"
  # bulwark-gate's audit writer: role bulwark_gate (INSERT on gate_audit only).
  gate_url=${BULWARK_GATE_DATABASE_URL_FILE:-$SECRETS/gate-db.url}
  bulwark-init secrets database-url --out "$gate_url" --password-file "$(secret_path BULWARK_GATE_DB_PASSWORD gate-db.password)" \
    --host "$host" --port "$port" --user bulwark_gate || die "writing $gate_url failed"
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
  grant_table credentials "$CREDENTIALS"
  log "database ready"
}

case ${1:-} in
  generate) generate ;;
  database) database ;;
  *) die "usage: bulwark-bootstrap generate|database" ;;
esac
