#!/usr/bin/env bash
# Runs the Bulwark topology as local processes (no Docker): Postgres, identity material from
# bulwark-init, the secured Temporal server behind bulwark-gate, the Bulwark services.
# Idempotent: running it again on an existing .bulwark/ keeps all data and restarts only what
# is not running.
#
#   scripts/up.sh            # everything
#   scripts/up.sh temporal   # (re)start only Temporal (Postgres must be up)
#   scripts/up.sh gate       # (re)start only bulwark-gate (Temporal must be up)
#   scripts/up.sh postgres   # (re)start only Postgres
#
# Environment: BULWARK_PG_PORT (15432), BULWARK_GATE_PORT (7233: the address every client
# uses, BULWARK_TEMPORAL_ADDRESS), BULWARK_TEMPORAL_UPSTREAM_PORT (7237: Temporal's frontend,
# reachable only with the gate's certificate), BULWARK_GATE_HEALTH_LISTEN (127.0.0.1:9103),
# BULWARK_GATE_POLICY (config/gate-policy.toml), BULWARK_NAMESPACES (default),
# BULWARK_CERTS_DIR (./certs), BULWARK_TLS_REFRESH_INTERVAL (1m), BULWARK_STATE_DIR (./.bulwark).
source "$(dirname "$0")/lib.sh"

what=${1:-all}
PG_PORT=${BULWARK_PG_PORT:-15432}
# Clients (api, worker, control, the CLI profiles, the suites) talk to the gate; only the gate
# talks to Temporal's frontend, on the upstream port.
GATE_PORT=${BULWARK_GATE_PORT:-7233}
UPSTREAM_PORT=${BULWARK_TEMPORAL_UPSTREAM_PORT:-7237}
TEMPORAL_ADDRESS="127.0.0.1:$GATE_PORT"
UPSTREAM_ADDRESS="127.0.0.1:$UPSTREAM_PORT"
GATE_HEALTH=${BULWARK_GATE_HEALTH_LISTEN:-127.0.0.1:9103}
CONTROL_PORT=${BULWARK_CONTROL_PORT:-8443}
CONTROL_URL="https://127.0.0.1:$CONTROL_PORT"
CREDENTIALS="$STATE/credentials"
API_PORT=${BULWARK_API_PORT:-8444}
API_URL="https://127.0.0.1:$API_PORT"
WORKER_HEALTH=${BULWARK_WORKER_LISTEN:-127.0.0.1:9102}
NAMESPACES=${BULWARK_NAMESPACES:-default}
# Refused logins are one audit row per address and window (plus a count row when it closes).
REFUSAL_WINDOW=${BULWARK_ADMIN_AUDIT_REFUSAL_WINDOW:-5m}
CERTS=${BULWARK_CERTS_DIR:-$ROOT/certs}
[[ $CERTS = /* ]] || CERTS="$ROOT/$CERTS"
LOGS="$STATE/logs" RUN="$STATE/run" SECRETS="$STATE/secrets" PGDIR="$STATE/pg"
# The gate reloads this file on change (validated first; a broken edit is refused and logged).
GATE_POLICY=${BULWARK_GATE_POLICY:-$ROOT/config/gate-policy.toml}
[[ $GATE_POLICY = /* ]] || GATE_POLICY="$ROOT/$GATE_POLICY"

running() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
as_pg() { runuser -u postgres -- "$@"; }

[[ $PG_PORT =~ ^[0-9]+$ ]] || die "BULWARK_PG_PORT must be a port number, got '$PG_PORT'"
[[ $GATE_PORT =~ ^[0-9]+$ ]] || die "BULWARK_GATE_PORT must be a port number, got '$GATE_PORT'"
[[ $UPSTREAM_PORT =~ ^[0-9]+$ ]] || die "BULWARK_TEMPORAL_UPSTREAM_PORT must be a port number, got '$UPSTREAM_PORT'"
[[ $GATE_PORT != "$UPSTREAM_PORT" ]] || die "BULWARK_GATE_PORT and BULWARK_TEMPORAL_UPSTREAM_PORT must differ (both $GATE_PORT)"

"$ROOT/scripts/install.sh"
# Everything under .bulwark/ holds or reveals secrets: files 0600, directories 0700. The state
# directory itself is 0710 root:postgres only so the postgres user can reach its own data
# directory below it (nobody can list it).
umask 077
mkdir -p "$LOGS" "$RUN" "$SECRETS"
chgrp postgres "$STATE" 2>/dev/null || true
chmod 710 "$STATE"; chmod 700 "$SECRETS" "$LOGS" "$RUN"
find "$LOGS" -type f -exec chmod 600 {} + 2>/dev/null || true
TEMPORAL_CLI="$VENV/bin/temporal"

# --- Bulwark binaries --------------------------------------------------------------------
BIN=${BULWARK_BIN_DIR:-}
if [[ -z $BIN ]]; then
  log "building bulwark binaries"
  (cd "$ROOT" && cargo build -q -p bulwark-init -p bulwark-control -p bulwark-api -p bulwark-worker -p bulwark-gate) \
    || die "cargo build failed"
  BIN="$ROOT/target/debug"
fi

# psql_secret VAR FILE: a psql meta-command that sets :VAR to FILE's content, for a script
# fed on stdin (so the value is never an argument). psql unescapes \ and '' in quoted \set
# values, so both are escaped: an operator's own password may contain them.
psql_secret() {
  [[ $(wc -l <"$2") -le 1 && $(tr -d '\n' <"$2" | tr -cd '\r' | wc -c) -eq 0 ]] || die "$2 must hold one line"
  printf "\\set %s '%s'\n" "$1" "$(tr -d '\n' <"$2" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"
}

secret_file() { # secret_file NAME -> path of a generated-once 0600 random secret
  local f="$SECRETS/$1"
  "$BIN/bulwark-init" secrets gen-password --out "$f" || die "generating $f failed"
  printf '%s' "$f"
}

# --- identity material -------------------------------------------------------------------
identity() {
  log "bulwark-init generate --out $CERTS"
  "$BIN/bulwark-init" generate --out "$CERTS" --namespace "$NAMESPACES" \
    --temporal-address "$TEMPORAL_ADDRESS" >"$LOGS/init.log" 2>&1 \
    || { cat "$LOGS/init.log" >&2; die "bulwark-init generate failed (see above); fix or rotate the named item"; }
  "$BIN/bulwark-init" verify --dir "$CERTS" >"$LOGS/verify.log" 2>&1 \
    || { grep -v '^warning' "$LOGS/verify.log" >&2; die "certificates in $CERTS are not valid"; }
}

# --- Postgres ----------------------------------------------------------------------------
postgres_up() {
  [[ -x $PG_BIN/initdb ]] || die "Postgres binaries not found (looked in $PG_BIN)"
  if [[ ! -f $PGDIR/data/PG_VERSION ]]; then
    log "initialising Postgres in $PGDIR/data"
    mkdir -p "$PGDIR/data" "$PGDIR/run"
    chown -R postgres:postgres "$PGDIR"; chmod 700 "$PGDIR/data"
    local pw; pw=$(secret_file postgres-superuser.password)
    install -m 600 -o postgres "$pw" "$PGDIR/.pwfile"
    as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --pwfile="$PGDIR/.pwfile" \
      --auth-local=peer --auth-host=scram-sha-256 >"$LOGS/initdb.log" 2>&1 \
      || { cat "$LOGS/initdb.log" >&2; die "initdb failed"; }
    rm -f "$PGDIR/.pwfile"
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
    log "Postgres already running"
  else
    log "starting Postgres on 127.0.0.1:$PG_PORT"
    # The server log lives in Postgres's own 0700 directory: the postgres user cannot enter
    # the 0700 logs directory.
    local pglog="$PGDIR/postgres.log"
    touch "$pglog"; chown postgres "$pglog"; chmod 600 "$pglog"
    as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$pglog" -w -t 60 start \
      -o "-p $PG_PORT -h 127.0.0.1 -k $PGDIR/run" >/dev/null \
      || { tail -20 "$pglog" >&2; die "Postgres did not start (port $PG_PORT in use?)"; }
  fi
  head -1 "$PGDIR/data/postmaster.pid" >"$RUN/postgres.pid"
  # Passwords never go on a command line (ps shows it): psql reads them from stdin.
  # gpw: bulwark-gate's audit writer (bulwark_gate: INSERT on gate_audit only).
  { psql_secret tpw "$(secret_file temporal-db.password)"; psql_secret bpw "$(secret_file bulwark-db.password)"
    psql_secret gpw "$(secret_file gate-db.password)"
    cat "$ROOT/migrations/superuser/roles.sql"; } |
    as_pg psql -h "$PGDIR/run" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >"$LOGS/psql.log" 2>&1 \
    || { cat "$LOGS/psql.log" >&2; die "creating Postgres roles failed"; }
}

bulwark_db() {
  local url="$SECRETS/bulwark-db.url"
  "$BIN/bulwark-init" secrets database-url --out "$url" --password-file "$SECRETS/bulwark-db.password" \
    --host 127.0.0.1 --port "$PG_PORT" || die "writing $url failed"
  log "bulwark-init database (migrations, OAuth clients)"
  "$BIN/bulwark-init" database --database-url-file "$url" --out "$CREDENTIALS" \
    --token-url "$CONTROL_URL/oauth/token" --namespace "$NAMESPACES" >>"$LOGS/init.log" 2>&1 \
    || { tail -20 "$LOGS/init.log" >&2; die "bulwark-init database failed"; }
  # As the superuser: the audit table goes to a role nobody logs in as (bulwark keeps SELECT
  # and INSERT only, so it cannot disable the append-only trigger, truncate or drop it).
  log "audit log ownership (bulwark_audit_owner)"
  as_pg psql -h "$PGDIR/run" -p "$PG_PORT" -U postgres -d bulwark -v ON_ERROR_STOP=1 -q --no-psqlrc \
    -f - <"$ROOT/migrations/superuser/audit-owner.sql" >>"$LOGS/psql.log" 2>&1 \
    || { tail -20 "$LOGS/psql.log" >&2; die "handing the audit log to bulwark_audit_owner failed"; }
}

# The reference workflows' demo data: a `demo` database readable only by a least-privilege
# role whose credential lives in the app secret store, and the component files that route
# credential references to the stores.
demo_data() {
  local pw_file; pw_file=$(secret_file demo-reader.password)
  { psql_secret dpw "$pw_file"; cat "$ROOT/migrations/superuser/demo.sql"; } |
    as_pg psql -h "$PGDIR/run" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >>"$LOGS/psql.log" 2>&1 \
    || { tail -20 "$LOGS/psql.log" >&2; die "provisioning the demo database failed"; }
  # Each credential may be sent only where it belongs (the worker refuses any other host).
  "$BIN/bulwark-init" secrets app-secrets --out "$CREDENTIALS/app-secrets.json" --demo-password-file "$pw_file" \
    --demo-db-host "127.0.0.1:$PG_PORT" --demo-oauth-host "127.0.0.1:$API_PORT" \
    || die "writing $CREDENTIALS/app-secrets.json failed"
  "$BIN/bulwark-init" secrets components --out "$STATE/components" --credentials-dir "$CREDENTIALS" \
    || die "writing the component files in $STATE/components failed"
}

# start_service NAME READY_URL CMD... : start a Bulwark service in the background and wait
# until READY_URL answers 200 over HTTPS (verified against our CA). start_service_http is the
# same for a plain-HTTP health listener (worker, gate: loopback only).
start_service() { _start_service https "$@"; }
start_service_http() { _start_service http "$@"; }
_start_service() {
  local scheme=$1 name=$2 ready=$3; shift 3
  case $scheme:$ready in https:https://*|http:http://*) ;; *) die "$name: readiness URL $ready is not $scheme";; esac
  if running "$name"; then log "$name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  log "starting $name"
  # Each open connection is a file descriptor: the listeners' connection limits (1,000s) need
  # more than the usual soft limit of 1,024.
  ( cd "$ROOT"; ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true; exec setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null ) &
  echo $! >"$RUN/$name.pid"
  local deadline=$((SECONDS + 60))
  local curl_args=(-fsS --max-time 5); [[ $scheme == https ]] && curl_args+=(--cacert "$CERTS/ca.crt")
  until curl "${curl_args[@]}" "$ready" >/dev/null 2>&1; do
    running "$name" || { tail -20 "$LOGS/$name.log" >&2; die "$name exited during startup (log: $LOGS/$name.log)"; }
    ((SECONDS < deadline)) || { tail -20 "$LOGS/$name.log" >&2; die "$name not ready after 60s"; }
    sleep 0.5
  done
  log "$name is ready"
}

control_up() {
  # The admin page has a listener of its own (BULWARK_ADMIN_PORT, 8445), never the public one.
  local admin_port=${BULWARK_ADMIN_PORT:-8445}
  BULWARK_CERTS_DIR="$CERTS" BULWARK_DATABASE_URL_FILE="$SECRETS/bulwark-db.url" \
  BULWARK_CONTROL_LISTEN="127.0.0.1:$CONTROL_PORT" BULWARK_CONTROL_URL="$CONTROL_URL" BULWARK_LOG_FORMAT=json \
  BULWARK_ADMIN_LISTEN="127.0.0.1:$admin_port" BULWARK_ADMIN_AUDIT_REFUSAL_WINDOW="$REFUSAL_WINDOW" \
  BULWARK_ADMIN_PASSWORD_FILE="$CREDENTIALS/admin-password" BULWARK_DEPLOYMENT_SECRETS_DIR="$CREDENTIALS" \
  BULWARK_TEMPORAL_ADDRESS="$TEMPORAL_ADDRESS" BULWARK_TEMPORAL_SERVER_NAME=temporal BULWARK_NAMESPACES="$NAMESPACES" \
    start_service bulwark-control "$CONTROL_URL/readyz" "$BIN/bulwark-control"
  # The admin listener binds beside the public one; /readyz above only proves the latter.
  local deadline=$((SECONDS + 15))
  until curl -fsS --cacert "$CERTS/ca.crt" "https://127.0.0.1:$admin_port/healthz" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "bulwark-control's admin listener (127.0.0.1:$admin_port) does not answer (an older binary still running? scripts/down.sh first)"
    sleep 0.5
  done
}

api_up() {
  BULWARK_CERTS_DIR="$CERTS" BULWARK_TEMPORAL_ADDRESS="$TEMPORAL_ADDRESS" BULWARK_TEMPORAL_SERVER_NAME=temporal \
  BULWARK_CONTROL_URL="$CONTROL_URL" BULWARK_DEPLOYMENT_SECRETS="$CREDENTIALS/deployment-secrets-api.json" \
  BULWARK_API_LISTEN="127.0.0.1:$API_PORT" BULWARK_LOG_FORMAT=json \
    start_service bulwark-api "$API_URL/readyz" "$BIN/bulwark-api"
}

worker_up() {
  BULWARK_CERTS_DIR="$CERTS" BULWARK_TEMPORAL_ADDRESS="$TEMPORAL_ADDRESS" BULWARK_TEMPORAL_SERVER_NAME=temporal \
  BULWARK_CONTROL_URL="$CONTROL_URL" BULWARK_DEPLOYMENT_SECRETS="$CREDENTIALS/deployment-secrets-worker.json" \
  BULWARK_COMPONENTS_DIR="$STATE/components" BULWARK_PG_PORT="$PG_PORT" BULWARK_WORKER_LISTEN="$WORKER_HEALTH" \
  BULWARK_LOG_FORMAT=json \
    start_service_http bulwark-worker "http://$WORKER_HEALTH/readyz" "$BIN/bulwark-worker"
}

# bulwark-gate: the only door to Temporal. Serves the frontend's certificate (server name
# `temporal`) on the address clients use, requires a client-ca certificate and a token bound
# to it, authorizes each call from the policy file and audits it (log stream, and mutating
# calls into gate_audit as bulwark_gate), then forwards to the frontend with gate-client.
gate_up() {
  if running bulwark-gate; then log "bulwark-gate already running (pid $(cat "$RUN/bulwark-gate.pid"))"; return; fi
  [[ -s $GATE_POLICY ]] || die "missing gate policy $GATE_POLICY (BULWARK_GATE_POLICY)"
  for f in temporal-server.crt temporal-server.key client-trust.pem gate-client.crt gate-client.key ca.crt jwks.json; do
    [[ -s $CERTS/$f ]] || die "missing $CERTS/$f; run bulwark-init generate"
  done
  [[ -s $SECRETS/gate-db.password ]] || die "missing $SECRETS/gate-db.password; run scripts/up.sh (all) first"
  local url="$SECRETS/gate-db.url"
  "$BIN/bulwark-init" secrets database-url --out "$url" --password-file "$SECRETS/gate-db.password" \
    --host 127.0.0.1 --port "$PG_PORT" --user bulwark_gate || die "writing $url failed"
  BULWARK_CERTS_DIR="$CERTS" BULWARK_GATE_LISTEN="$TEMPORAL_ADDRESS" BULWARK_TEMPORAL_UPSTREAM_ADDRESS="$UPSTREAM_ADDRESS" \
  BULWARK_TEMPORAL_SERVER_NAME=temporal BULWARK_GATE_POLICY="$GATE_POLICY" BULWARK_GATE_HEALTH_LISTEN="$GATE_HEALTH" \
  BULWARK_GATE_DATABASE_URL_FILE="$url" BULWARK_LOG_FORMAT=json \
    start_service_http bulwark-gate "http://$GATE_HEALTH/readyz" "$BIN/bulwark-gate"
}

schemas() {
  log "setting up / upgrading Temporal schemas"
  export SQL_PLUGIN=postgres12 SQL_HOST=127.0.0.1 SQL_PORT=$PG_PORT SQL_USER=temporal
  SQL_PASSWORD=$(cat "$SECRETS/temporal-db.password"); export SQL_PASSWORD
  for db in temporal:temporal temporal_visibility:visibility; do
    local name=${db%%:*} schema=${db##*:}
    local out="$LOGS/schema-$name.last"
    if ! "$TEMPORAL_BIN_DIR/sql" --db "$name" update-schema --schema-name "postgresql/v12/$schema" >"$out" 2>&1; then
      cat "$out" >>"$LOGS/schema.log"
      # Set up only a database that says it has no schema; any other failure is an error, so
      # a live database is never re-initialised.
      grep -q 'schema_version.* does not exist' "$out" \
        || { tail -5 "$out" >&2; die "temporal-sql-tool update-schema failed for $name (log: $LOGS/schema.log)"; }
      "$TEMPORAL_BIN_DIR/sql" --db "$name" setup-schema -v 0.0 >>"$LOGS/schema.log" 2>&1 \
        || { tail -20 "$LOGS/schema.log" >&2; die "temporal-sql-tool setup-schema failed for $name"; }
      "$TEMPORAL_BIN_DIR/sql" --db "$name" update-schema --schema-name "postgresql/v12/$schema" >>"$LOGS/schema.log" 2>&1 \
        || { tail -20 "$LOGS/schema.log" >&2; die "temporal-sql-tool update-schema failed for $name"; }
    else
      cat "$out" >>"$LOGS/schema.log"
    fi
  done
  unset SQL_PASSWORD
}

# --- Temporal ----------------------------------------------------------------------------
# Through the gate, as the admin identity (client-admin + system token).
tls_args=(--address "$TEMPORAL_ADDRESS" --tls-ca-path "$CERTS/ca.crt"
  --tls-cert-path "$CERTS/client-admin.crt" --tls-key-path "$CERTS/client-admin.key"
  --tls-server-name temporal)
# Straight to the frontend: it trusts only gate-trust.pem, so only the gate's certificate
# completes the handshake. Used for the health wait alone (the gate is not up yet then).
upstream_args=(--address "$UPSTREAM_ADDRESS" --tls-ca-path "$CERTS/ca.crt"
  --tls-cert-path "$CERTS/gate-client.crt" --tls-key-path "$CERTS/gate-client.key"
  --tls-server-name temporal)

temporal_up() {
  if running temporal; then log "Temporal already running (pid $(cat "$RUN/temporal.pid"))"; return; fi
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 5 \
    || die "Postgres at 127.0.0.1:$PG_PORT is unreachable; start it with scripts/up.sh postgres"
  [[ -s $SECRETS/temporal-db.password ]] || die "missing $SECRETS/temporal-db.password; run scripts/up.sh (all) first"
  for f in temporal-server.crt temporal-server.key internode.crt internode.key gate-trust.pem gate-client.crt gate-client.key \
    internode-trust.pem jwks.json system-token.jwt; do
    [[ -s $CERTS/$f ]] || die "missing $CERTS/$f; run bulwark-init generate"
  done
  log "starting Temporal $TEMPORAL_SERVER_VERSION (frontend $UPSTREAM_ADDRESS, behind the gate)"
  (
    cd "$ROOT"
    export BULWARK_CERTS_DIR="$CERTS" BULWARK_PG_PORT="$PG_PORT" BULWARK_TEMPORAL_FRONTEND_PORT="$UPSTREAM_PORT"
    export BULWARK_TEMPORAL_DYNAMIC_CONFIG="$ROOT/config/temporal/dynamicconfig.yaml"
    BULWARK_TEMPORAL_DB_PASSWORD=$(cat "$SECRETS/temporal-db.password"); export BULWARK_TEMPORAL_DB_PASSWORD
    exec setsid "$TEMPORAL_BIN_DIR/server" --config-file "$ROOT/config/temporal/temporal.yaml" start \
      --service frontend --service internal-frontend --service history --service matching --service worker \
      >>"$LOGS/temporal.log" 2>&1 </dev/null
  ) &
  echo $! >"$RUN/temporal.pid"
  local deadline=$((SECONDS + 120))
  # The CLI reads the token from TEMPORAL_API_KEY: never a command-line argument (ps shows it).
  local -x TEMPORAL_API_KEY; TEMPORAL_API_KEY=$(cat "$CERTS/system-token.jwt")
  until "$TEMPORAL_CLI" operator cluster health "${upstream_args[@]}" 2>/dev/null | grep -q SERVING; do
    running temporal || { tail -30 "$LOGS/temporal.log" >&2; die "Temporal exited during startup (log: $LOGS/temporal.log)"; }
    ((SECONDS < deadline)) || { tail -30 "$LOGS/temporal.log" >&2; die "Temporal not healthy after 120s"; }
    sleep 1
  done
  log "Temporal is serving"
}

namespaces() {
  # The CLI reads the token from TEMPORAL_API_KEY: never a command-line argument (ps shows it).
  local -x TEMPORAL_API_KEY; TEMPORAL_API_KEY=$(cat "$CERTS/system-token.jwt")
  IFS=, read -ra nss <<<"$NAMESPACES"
  for ns in "${nss[@]}"; do
    if "$TEMPORAL_CLI" operator namespace describe --namespace "$ns" "${tls_args[@]}" >/dev/null 2>&1; then
      continue
    fi
    log "creating namespace $ns"
    "$TEMPORAL_CLI" operator namespace create --namespace "$ns" --retention 72h "${tls_args[@]}" >>"$LOGS/namespaces.log" 2>&1 \
      || { cat "$LOGS/namespaces.log" >&2; die "creating namespace $ns failed"; }
  done
}

write_env() {
  local tmp="$STATE/env.tmp"
  cat >"$tmp" <<ENV
# Written by scripts/up.sh; read by the end-to-end suites in tests/.
BULWARK_TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS
BULWARK_TEMPORAL_UPSTREAM_ADDRESS=$UPSTREAM_ADDRESS
BULWARK_GATE_METRICS_URL=http://$GATE_HEALTH
BULWARK_GATE_POLICY=$GATE_POLICY
BULWARK_GATE_LOG=$LOGS/bulwark-gate.log
BULWARK_TEMPORAL_SERVER_NAME=temporal
BULWARK_TEMPORAL_INTERNODE_ADDRESS=127.0.0.1:7234
BULWARK_TEMPORAL_INTERNAL_FRONTEND_ADDRESS=127.0.0.1:7236
BULWARK_CERTS_DIR=$CERTS
BULWARK_NAMESPACES=$NAMESPACES
BULWARK_PG_HOST=127.0.0.1
BULWARK_PG_PORT=$PG_PORT
BULWARK_PG_SUPERUSER_PASSWORD_FILE=$SECRETS/postgres-superuser.password
BULWARK_BULWARK_DB_PASSWORD_FILE=$SECRETS/bulwark-db.password
BULWARK_TEMPORAL_CLI=$TEMPORAL_CLI
BULWARK_RESTART_CMD=$ROOT/scripts/restart.sh
BULWARK_CONTROL_URL=$CONTROL_URL
BULWARK_OPERATOR_CREDENTIALS=$CREDENTIALS/operator-credentials.json
BULWARK_DEPLOYMENT_SECRETS_DIR=$CREDENTIALS
BULWARK_LOGS_DIR=$LOGS
BULWARK_COMPONENTS_DIR=$STATE/components
BULWARK_APP_SECRETS=$CREDENTIALS/app-secrets.json
BULWARK_API_URL=$API_URL
BULWARK_WORKER_HEALTH_URL=http://$WORKER_HEALTH
BULWARK_TLS_REFRESH_INTERVAL=${BULWARK_TLS_REFRESH_INTERVAL:-1m}
BULWARK_ADMIN_URL=https://127.0.0.1:${BULWARK_ADMIN_PORT:-8445}/admin
BULWARK_ADMIN_AUDIT_REFUSAL_WINDOW=$REFUSAL_WINDOW
BULWARK_ADMIN_PASSWORD_FILE=$CREDENTIALS/admin-password
ENV
  mv "$tmp" "$STATE/env"
}

case $what in
  all)
    start=$SECONDS
    # The gate before everything that talks to Temporal (namespaces, control, api, worker).
    identity; postgres_up; bulwark_db; demo_data; schemas; temporal_up; gate_up; namespaces; control_up; api_up; worker_up
    write_env
    log "up in $((SECONDS - start))s; environment in $STATE/env" ;;
  postgres) postgres_up ;;
  temporal) identity; temporal_up; gate_up; namespaces ;;
  gate) gate_up ;;
  control) control_up ;;
  api) api_up ;;
  worker) worker_up ;;
  *) die "usage: $0 [all|postgres|temporal|gate|control|api|worker]" ;;
esac
