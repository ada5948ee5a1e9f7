#!/usr/bin/env bash
# End-to-end test of the compose files on a machine with no Docker engine and no registry:
# podman (runc) behind its Docker-compatible API socket, the Docker Compose v2 CLI, images
# built locally (docker/build-local-images.sh). Prints one line per step and a final
# `N passed, N failed`; tears down what it started (containers, networks, volumes, the API
# service) and keeps the images, so a second run reuses them.
#
#   tests/compose/run.sh            # everything
#   BULWARK_COMPOSE_KEEP=1 tests/compose/run.sh   # leave the stack up for inspection
#   BULWARK_COMPOSE_UP_ONLY=1 tests/compose/run.sh  # only build and bring it up (then keep it)
#
# Not in scripts/test.sh by default (BULWARK_TEST_COMPOSE=1 adds it): a cold run installs the
# container tools, builds a Debian base, a Rust release build of the four services and the
# compose CLI (~25-35 min on 2 shared cores); a warm run takes ~5 min.
# Host ports used (loopback only): 17233 (the gate) 17234 17236 17237 18443 18444 18445 18080
# 15433 19102 19103.
source "$(dirname "$0")/lib.sh"
WORK=${BULWARK_IMAGE_WORKDIR:-/var/tmp/bulwark-images}
OUT="$WORK/compose-test"
PY="$CACHE/venv-temporalio-1.35.0/bin/python"
SOCK=${DOCKER_HOST#unix://}
passed=0 failed=0 t_start=$SECONDS
mkdir -p "$OUT" "$OUT/logs"

step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() { passed=$((passed + 1)); printf 'ok   - %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$*"; }
check() { local name=$1; shift; if out=$("$@" 2>&1); then pass "$name${out:+ ($out)}"; else fail "$name: ${out:0:400}"; fi; }
finish() {
  printf '%s passed, %s failed (total %ss)\n' "$passed" "$failed" "$((SECONDS - t_start))"
  ((failed == 0))
}

# --- prerequisites --------------------------------------------------------------------------
prereqs() {
  local missing=()
  command -v go >/dev/null || { fail "prerequisites: Go is required (Compose CLI and ui-server builds)"; finish; exit 1; }
  for c in podman runc debootstrap; do command -v "$c" >/dev/null || missing+=("$c"); done
  if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
      || { fail "prerequisites: missing ${missing[*]} (apt-get install podman runc netavark iptables uidmap debootstrap)"; finish; exit 1; }
    step "installing podman runc netavark iptables uidmap debootstrap (Debian packages)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc netavark iptables uidmap debootstrap >/dev/null \
      || { fail "apt-get install of the container tools failed"; finish; exit 1; }
  fi
  # The settings DESIGN.md names for podman on these machines, written only when the file is
  # absent: an existing containers.conf is the machine owner's, and only checked.
  if [[ ! -e /etc/containers/containers.conf && $(id -u) == 0 ]]; then
    mkdir -p /etc/containers
    printf '%s\n' '# Written by tests/compose/run.sh (DESIGN.md: podman without systemd or a registry).' \
      '[containers]' 'default_ulimits = []' 'pids_limit = 0' '' '[engine]' 'runtime = "runc"' \
      'cgroup_manager = "cgroupfs"' 'events_logger = "file"' >/etc/containers/containers.conf
  fi
  grep -q '^runtime *= *"runc"' /etc/containers/containers.conf 2>/dev/null \
    || { fail "/etc/containers/containers.conf must set runtime = \"runc\", cgroup_manager = \"cgroupfs\" (DESIGN.md)"; finish; exit 1; }
  if [[ ! -x $COMPOSE_BIN ]]; then
    step "building the Docker Compose CLI $COMPOSE_VERSION from the Go module proxy"
    local dir src="$WORK/compose-src"
    dir=$(GOTOOLCHAIN=auto GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
      | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    rm -rf "$src"; cp -r "$dir" "$src"; chmod -R u+w "$src"
    mkdir -p "$(dirname "$COMPOSE_BIN")"
    (cd "$src" && GOTOOLCHAIN=auto CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" -o "$COMPOSE_BIN.tmp" ./cmd) \
      >"$OUT/compose-build.log" 2>&1 || { tail -20 "$OUT/compose-build.log"; fail "building docker compose"; finish; exit 1; }
    mv "$COMPOSE_BIN.tmp" "$COMPOSE_BIN"; rm -rf "$src"
  fi
  pass "prerequisites: podman $(podman version --format '{{.Client.Version}}'), $("$COMPOSE_BIN" version --short)"
}

# --- podman's Docker API socket and a stand-in for the daemon's health-check scheduler -------
api_pid='' health_pid='' events_pid='' log_pid='' gate_log_pid=''
start_api() {
  mkdir -p "$(dirname "$SOCK")"
  if ! curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
    podman system service --time=0 "unix://$SOCK" >"$OUT/podman-service.log" 2>&1 &
    api_pid=$!
    for _ in $(seq 50); do curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null || { fail "podman API socket $SOCK"; finish; exit 1; }
  # podman schedules health checks with systemd timers; there is no systemd here, so run them
  # the way the Docker daemon would: every few seconds for each container of the project.
  # Each check is bounded, so one hung `podman healthcheck run` cannot stall all later ones.
  (
    while sleep 3; do
      podman ps --format '{{.ID}} {{index .Labels "com.docker.compose.project"}}' 2>/dev/null | while read -r id project; do
        [[ $project == "$COMPOSE_PROJECT_NAME" || $project == "$COMPOSE_PROJECT_NAME-prod" ]] || continue
        timeout 15 podman healthcheck run "$id" >/dev/null 2>&1 || true
      done
    done
  ) &
  health_pid=$!
  # Docker reports "starting" from the moment a container with a health check starts; podman
  # without systemd reports an empty status until the first check, which compose rejects. So
  # run the first check as soon as a container of ours starts.
  (
    podman events --filter type=container --filter event=start --format '{{.ID}}' 2>/dev/null | while read -r id; do
      project=$(podman inspect --format '{{index .Config.Labels "com.docker.compose.project"}}' "$id" 2>/dev/null || true)
      [[ $project == "$COMPOSE_PROJECT_NAME" || $project == "$COMPOSE_PROJECT_NAME-prod" ]] || continue
      timeout 15 podman healthcheck run "$id" >/dev/null 2>&1 &
    done
  ) &
  events_pid=$!
  step "podman API on $SOCK (health-check drivers: pids $health_pid $events_pid)"
}

teardown() {
  local rc=$?
  # Under set -e a failed kill (the process already gone) would end the trap here, before the
  # teardown, with status 1: every kill below is allowed to fail.
  if [[ -n $log_pid ]]; then kill "$log_pid" 2>/dev/null || true; fi
  if [[ -n $gate_log_pid ]]; then pkill -P "$gate_log_pid" 2>/dev/null || true; kill "$gate_log_pid" 2>/dev/null || true; fi
  if [[ -z ${BULWARK_COMPOSE_KEEP:-} ]]; then
    step "tearing down (compose down -v)"
    compose --profile ui down -v --remove-orphans >"$OUT/down.log" 2>&1 || true
  else
    step "BULWARK_COMPOSE_KEEP set: stack left running (project $COMPOSE_PROJECT_NAME, DOCKER_HOST=$DOCKER_HOST)"
  fi
  if [[ -n $health_pid ]]; then kill "$health_pid" 2>/dev/null || true; fi
  if [[ -n $events_pid ]]; then pkill -P "$events_pid" 2>/dev/null || true; kill "$events_pid" 2>/dev/null || true; fi
  if [[ -n $api_pid && -z ${BULWARK_COMPOSE_KEEP:-} ]]; then kill "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true; fi
  exit "$rc"
}
trap teardown EXIT

# --- the steps -------------------------------------------------------------------------------
prereqs

step "building images (docker/build-local-images.sh)"
t0=$SECONDS
if "$ROOT/docker/build-local-images.sh" all 2>&1 | tee "$OUT/images.log" | sed 's/^/    /'; then
  pass "images built or cached in $((SECONDS - t0))s"
else
  fail "image build (see $OUT/images.log)"; finish; exit 1
fi
sizes=$(for i in "$POSTGRES_IMAGE" "$TEMPORAL_SERVER_IMAGE" "$TEMPORAL_ADMIN_TOOLS_IMAGE" "$TEMPORAL_UI_IMAGE" \
  "$BULWARK_IMAGE_REPO"/{init,control,api,worker,gate}:"$BULWARK_VERSION"; do
  printf '%s=%s ' "${i##*/}" "$(podman image inspect --format '{{.Size}}' "$i" | awk '{printf "%.0fMB", $1/1e6}')"; done)
step "image sizes: $sizes"

start_api

# Compose names the same third-party images docker/images.env pins.
pins_agree() {
  local cfg; cfg=$(compose config --images)
  for i in "$POSTGRES_IMAGE" "$TEMPORAL_SERVER_IMAGE" "$TEMPORAL_ADMIN_TOOLS_IMAGE" "$TEMPORAL_UI_IMAGE"; do
    grep -qx "$i" <<<"$cfg" || { echo "$i not in compose config"; return 1; }
  done
}
check "docker-compose.yml names the pinned images of docker/images.env" pins_agree

# A leftover stack from an interrupted run would make the cold/warm numbers meaningless.
compose --profile ui down -v --remove-orphans >/dev/null 2>&1 || true
# The certs volume is created here (labelled as compose labels its own) so that its host path
# is known before init runs: the Temporal CLI profiles in temporal.toml name it
# (BULWARK_CLI_CERTS_DIR), as an operator who copies the certs out names their copy.
podman volume create --label "com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
  --label com.docker.compose.volume=certs "${COMPOSE_PROJECT_NAME}_certs" >/dev/null
BULWARK_CLI_CERTS_DIR=$(podman volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}_certs")
export BULWARK_CLI_CERTS_DIR

up_stack() { # up_stack LABEL: compose up -d (which waits on depends_on conditions), then readiness
  local t0=$SECONDS
  if ! compose up -d --no-build >"$OUT/up-$1.log" 2>&1; then
    tail -25 "$OUT/up-$1.log"
    for s in bulwark-init bulwark-init-db temporal-schema temporal-setup temporal gate bulwark-control; do
      echo "--- $s"; compose logs --no-color --tail 15 "$s" 2>&1 | sed 's/^/    /'
    done
    return 1
  fi
  wait_healthy gate 120 && wait_healthy bulwark-control 120 && wait_healthy bulwark-api 180 && wait_healthy bulwark-worker 180 \
    || { compose ps -a; for s in gate bulwark-api bulwark-worker; do compose logs --no-color --tail 20 "$s"; done; return 1; }
  echo "$((SECONDS - t0))"
}

step "compose up (cold: empty volumes)"
if cold=$(up_stack cold); then pass "cold up: every service healthy, one-shots exited 0, in ${cold}s"; else fail "cold up: $cold"; finish; exit 1; fi

# Service logs to files (the workflows suite greps them for planted secrets).
compose logs -f --no-color >"$OUT/logs/compose.log" 2>&1 &
log_pid=$!
# The gate's own stream, one JSON object a line as in the native stack's log file (the
# conformance suite reads its audit events and reload warnings there), kept across restarts
# of the gate: when `compose logs -f` ends with the container, follow again from then on.
GATE_LOG="$OUT/logs/bulwark-gate.log"
: >"$GATE_LOG"
(
  since=''
  while :; do
    compose logs -f --no-color --no-log-prefix ${since:+--since "$since"} gate >>"$GATE_LOG" 2>/dev/null || true
    since=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
    sleep 1
  done
) &
gate_log_pid=$!

CERTS=$(podman volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}_certs")
CREDS=$(podman volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}_credentials")
SECRETS=$(podman volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}_secrets")
ENV_FILE="$OUT/env"
cat >"$ENV_FILE" <<ENV
# The compose test stack, described for tests/ (written by tests/compose/run.sh).
BULWARK_TEMPORAL_ADDRESS=127.0.0.1:$BULWARK_TEMPORAL_HOST_PORT
BULWARK_TEMPORAL_UPSTREAM_ADDRESS=127.0.0.1:${BULWARK_TEST_UPSTREAM_PORT:-17237}
BULWARK_GATE_METRICS_URL=http://127.0.0.1:${BULWARK_TEST_GATE_HEALTH_PORT:-19103}
BULWARK_GATE_POLICY=$ROOT/config/gate-policy.toml
BULWARK_GATE_LOG=$GATE_LOG
BULWARK_TEMPORAL_SERVER_NAME=temporal
BULWARK_TEMPORAL_INTERNODE_ADDRESS=127.0.0.1:${BULWARK_TEST_INTERNODE_PORT:-17234}
BULWARK_TEMPORAL_INTERNAL_FRONTEND_ADDRESS=127.0.0.1:${BULWARK_TEST_INTERNAL_FRONTEND_PORT:-17236}
BULWARK_CERTS_DIR=$CERTS
BULWARK_NAMESPACES=default
BULWARK_PG_HOST=127.0.0.1
BULWARK_PG_PORT=$BULWARK_PG_HOST_PORT
BULWARK_BULWARK_DB_PASSWORD_FILE=$SECRETS/bulwark-db.password
BULWARK_TEMPORAL_CLI=$CACHE/venv-temporalio-1.35.0/bin/temporal
BULWARK_RESTART_CMD=$HERE/restart.sh
BULWARK_CONTROL_URL=https://127.0.0.1:$BULWARK_CONTROL_HOST_PORT
BULWARK_ADMIN_URL=https://127.0.0.1:$BULWARK_ADMIN_HOST_PORT/admin
BULWARK_OPERATOR_CREDENTIALS=$CREDS/operator-credentials.json
BULWARK_DEPLOYMENT_SECRETS_DIR=$CREDS
BULWARK_APP_SECRETS=$CREDS/app-secrets.json
BULWARK_LOGS_DIR=$OUT/logs
BULWARK_API_URL=https://127.0.0.1:$BULWARK_API_HOST_PORT
BULWARK_API_URL_FOR_WORKER=https://bulwark-api:8444
BULWARK_WORKER_HEALTH_URL=http://127.0.0.1:${BULWARK_TEST_WORKER_HEALTH_PORT:-19102}
ENV
step "stack description for the suites: $ENV_FILE"
if [[ -n ${BULWARK_COMPOSE_UP_ONLY:-} ]]; then
  BULWARK_COMPOSE_KEEP=1
  step "BULWARK_COMPOSE_UP_ONLY set: stopping here with the stack up"
  finish; exit
fi

# --- properties of the running stack ---------------------------------------------------------
ids() { compose ps -a -q "$@"; }
non_root() {
  local id u bad=()
  for id in $(compose ps -q); do
    u=$(podman top "$id" huser 2>/dev/null | tail -n +2 | sort -u | tr '\n' ' ')
    n=$(podman inspect --format '{{index .Config.Labels "com.docker.compose.service"}}' "$id")
    [[ $u =~ (^| )root( |$) || $u =~ (^| )0( |$) ]] && bad+=("$n:$u")
  done
  ((${#bad[@]} == 0)) || { echo "processes running as root: ${bad[*]}"; return 1; }
  echo "$(compose ps -q | wc -l) running containers, no root process"
}
read_only_roots() {
  local id bad=()
  for id in $(ids); do
    [[ $(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$id") == true ]] \
      || bad+=("$(podman inspect --format '{{.Name}}' "$id")")
  done
  ((${#bad[@]} == 0)) || { echo "writable root fs: ${bad[*]}"; return 1; }
  echo "$(ids | wc -l) containers"
}
certs_ro() {
  local s m bad=()
  for s in temporal gate temporal-setup temporal-ui bulwark-api bulwark-worker; do
    for id in $(ids "$s"); do
      m=$(podman inspect --format '{{range .Mounts}}{{if eq .Destination "/certs"}}{{.RW}}{{end}}{{end}}' "$id")
      [[ $m == false ]] || bad+=("$s:rw=$m")
    done
  done
  for s in bulwark-init bulwark-control; do
    for id in $(ids "$s"); do
      m=$(podman inspect --format '{{range .Mounts}}{{if eq .Destination "/certs"}}{{.RW}}{{end}}{{end}}' "$id")
      [[ $m == true ]] || bad+=("$s:rw=$m")
    done
  done
  ((${#bad[@]} == 0)) || { echo "${bad[*]}"; return 1; }
  echo "read-only in temporal, gate, temporal-setup, temporal-ui, api, worker; writable in init, control"
}
no_secret_in_config() {
  local f v hits=()
  local dump; dump=$(compose config; for id in $(ids); do podman inspect --format '{{json .Config.Env}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}' "$id"; done)
  for f in "$SECRETS"/*.password; do
    v=$(tr -d '\n' <"$f"); [[ -n $v ]] && grep -qF "$v" <<<"$dump" && hits+=("$(basename "$f")")
  done
  for v in $("$PY" -c 'import json,sys; print(" ".join(str(x) for f in sys.argv[1:] for x in json.load(open(f)).values() if isinstance(x,str) and len(x)>=16))' "$CREDS"/deployment-secrets-*.json); do
    grep -qF "$v" <<<"$dump" && hits+=("a deployment secret")
  done
  ((${#hits[@]} == 0)) || { echo "secret values in compose config or container env: ${hits[*]}"; return 1; }
  echo "$(ls "$SECRETS"/*.password | wc -l) passwords and the deployment secrets absent from config and container env"
}
secret_modes() {
  local out; out=$(stat -c '%n %U:%G %a' "$SECRETS"/* "$CERTS"/ca.key "$CERTS"/temporal-jwt-private.key | sed "s|$SECRETS/||; s|$CERTS/||")
  grep -E ' (6[0-7][1-7]|[0-7][0-7][1-7])$' <<<"$out" && { echo "world-accessible: $out"; return 1; }
  echo "$(tr '\n' ';' <<<"$out")"
}
ui_up() {
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BULWARK_UI_HOST_PORT/healthz")
  [[ $code == 200 ]] || { echo "ui /healthz: $code; $(compose logs --no-color --tail 5 temporal-ui)"; return 1; }
  # The UI reaches Temporal through the gate over mTLS; without a bearer token the gate
  # refuses the call.
  local body; body=$(curl -s "http://127.0.0.1:$BULWARK_UI_HOST_PORT/api/v1/namespaces" || true)
  grep -qiE 'unauthori|permission|denied|Request unauthorized|code' <<<"$body" || { echo "unexpected /api/v1/namespaces: ${body:0:200}"; return 1; }
  echo "/healthz 200; an API call without a token is refused: ${body:0:80}"
}
# The gate sees the UI's certificate, so the forwarded token must be bound to it (client-ui,
# role viewer); a token bound to another certificate is refused there.
ui_with_token() {
  local body tok other
  tok=$("$PY" "$HERE/ui_token.py" "$CERTS" default) || { echo "ui_token.py failed: $tok"; return 1; }
  body=$(curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$BULWARK_UI_HOST_PORT/api/v1/namespaces/default" || true)
  grep -q '"namespaceInfo"' <<<"$body" || { echo "bound to client-ui: ${body:0:200}"; return 1; }
  other=$(cat "$CERTS/client-token.jwt")
  body=$(curl -s -H "Authorization: Bearer $other" "http://127.0.0.1:$BULWARK_UI_HOST_PORT/api/v1/namespaces/default" || true)
  if grep -q '"namespaceInfo"' <<<"$body"; then echo "client-token.jwt (bound to temporal-client) passed through the UI"; return 1; fi
  echo "a token bound to client-ui reads namespace default through the UI and the gate; client-token.jwt is refused: ${body:0:80}"
}
# Each service reads its own keys and credentials and nothing else: every file of
# config/access.table, probed from inside each running service (tests/compose/access.py
# derives yes/no from the table); directories are traversable, not listable.
least_privilege() {
  local bad=() n=0 s f want got id probes
  probes=$("$PY" "$HERE/access.py" probes) || { echo "access.py probes failed"; return 1; }
  # Public files the table does not list: Temporal and the gate read the JWKS.
  probes+=$'\ntemporal /certs/jwks.json yes\ngate /certs/jwks.json yes'
  while read -r s f want; do
    id=$(compose ps -q "$s" | head -1)
    [[ -n $id ]] || { bad+=("$s not running"); continue; }
    if podman exec "$id" sh -c "cat '$f' >/dev/null 2>&1" </dev/null; then got=yes; else got=no; fi
    n=$((n + 1)); [[ $got == "$want" ]] || bad+=("$s read $f: $got")
  done <<<"$probes"
  id=$(compose ps -q bulwark-api | head -1)
  if podman exec "$id" ls /certs >/dev/null 2>&1 </dev/null; then bad+=("bulwark-api can list /certs"); fi
  ((${#bad[@]} == 0)) || { echo "${bad[*]}"; return 1; }
  echo "$n reads as config/access.table says (own keys yes; CA, JWT and other services' keys no); /certs not listable"
}
# The files on the volumes have the table's owners, groups and modes, and compose runs each
# service as the table's identity.
access_table() {
  local v r out=''
  for v in certs:"$CERTS" credentials:"$CREDS" secrets:"$SECRETS"; do
    r=$("$PY" "$HERE/access.py" tree "${v%%:*}" "${v#*:}") || { echo "$r"; return 1; }
    out+="$r; "
  done
  compose config --format json >"$OUT/config.json" || { echo "compose config failed"; return 1; }
  r=$("$PY" "$HERE/access.py" compose "$OUT/config.json") || { echo "$r"; return 1; }
  echo "$out$r"
}
# Replacing a granted file keeps its group: bulwark-init (as bulwark, member of 10011 and
# 10012 in the bulwark-init-db service) rotates client-api; the API keeps reading it. A writer
# that is not in the serving key's group (10016: temporal and the gate) is refused
# temporal-server's rotation and nothing changes.
rotation_keeps_grants() {
  local R=(compose run --rm --no-deps -v "${COMPOSE_PROJECT_NAME}_certs:/certs"
    -e "BULWARK_TEMPORAL_ADDRESS=localhost:$BULWARK_TEMPORAL_HOST_PORT" -e "BULWARK_CLI_CERTS_DIR=$BULWARK_CLI_CERTS_DIR"
    --entrypoint bulwark-init bulwark-init-db)
  local before; before=$(sha256sum <"$CERTS/client-api.key")
  # compose run's exit status is not reliable through podman's API, so judge by what the
  # command printed and by the files.
  "${R[@]}" rotate client-api --dir /certs >"$OUT/rotate-api.log" 2>&1 || true
  grep -q "client-api *rotated" "$OUT/rotate-api.log" || { tail -5 "$OUT/rotate-api.log"; return 1; }
  [[ $(sha256sum <"$CERTS/client-api.key") != "$before" ]] || { echo "client-api.key unchanged"; return 1; }
  [[ $(stat -c '%g %a' "$CERTS/client-api.key") == "10011 640" ]] || { echo "grant lost: $(stat -c '%g %a' "$CERTS/client-api.key")"; return 1; }
  podman exec "$(compose ps -q bulwark-api | head -1)" sh -c 'cat /certs/client-api.key >/dev/null' || { echo "the API cannot read its rotated key"; return 1; }
  before=$(sha256sum <"$CERTS/temporal-server.key")
  "${R[@]}" rotate temporal-server --dir /certs >"$OUT/rotate-temporal.log" 2>&1 || true
  grep -q "cannot keep group 10016" "$OUT/rotate-temporal.log" || { echo "not refused: $(tail -3 "$OUT/rotate-temporal.log")"; return 1; }
  [[ $(sha256sum <"$CERTS/temporal-server.key") == "$before" && $(stat -c '%g %a' "$CERTS/temporal-server.key") == "10016 640" ]] \
    || { echo "temporal-server.key changed after a refused rotation"; return 1; }
  echo "client-api rotated, still group 10011/0640 and read by the API; temporal-server refused ($(grep -o 'cannot keep group 10016[^(]*' "$OUT/rotate-temporal.log" | head -1)), unchanged"
}
# docker-compose.yml itself (without the test overlay, which publishes the frontend's port on
# loopback to prove it refuses client certificates): of Temporal's ports only the gate's is
# published, and every Temporal client goes through the gate.
behind_gate() {
  "$COMPOSE_BIN" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" config --format json >"$OUT/base.json" 2>"$OUT/base.err" \
    || { cat "$OUT/base.err"; return 1; }
  "$PY" - "$OUT/base.json" <<'PYEOF'
import json, sys
svcs = json.load(open(sys.argv[1]))["services"]
bad = []
if svcs["temporal"].get("ports"):
    bad.append(f"temporal publishes {[p.get('target') for p in svcs['temporal']['ports']]}")
if {str(p.get("target")) for p in svcs["gate"].get("ports") or []} != {"7233"}:
    bad.append(f"gate publishes {[p.get('target') for p in svcs['gate'].get('ports') or []]}, want only 7233")
fport = svcs["temporal"]["environment"].get("BULWARK_TEMPORAL_FRONTEND_PORT")
if svcs["gate"]["environment"].get("BULWARK_TEMPORAL_UPSTREAM_ADDRESS") != f"temporal:{fport}" or fport in (None, "7233"):
    bad.append(f"gate upstream {svcs['gate']['environment'].get('BULWARK_TEMPORAL_UPSTREAM_ADDRESS')}, frontend port {fport}")
clients = {"bulwark-api": "BULWARK_TEMPORAL_ADDRESS", "bulwark-worker": "BULWARK_TEMPORAL_ADDRESS",
           "bulwark-control": "BULWARK_TEMPORAL_ADDRESS", "temporal-setup": "BULWARK_TEMPORAL_ADDRESS",
           "temporal-ui": "TEMPORAL_ADDRESS"}
for s, var in clients.items():
    if svcs[s]["environment"].get(var) != "gate:7233":
        bad.append(f"{s} {var}={svcs[s]['environment'].get(var)}")
if bad:
    print("; ".join(bad)); sys.exit(1)
print(f"temporal publishes nothing, its frontend on {fport}; the gate publishes 7233; {', '.join(clients)} use gate:7233")
PYEOF
}
check "docker-compose.yml: the gate is the only Temporal-facing published port; every client goes through it" behind_gate
check "no process in any container runs as root (init's root phase has exited)" non_root
check "each service reads its own keys and credentials, and no other's" least_privilege
check "the volumes and the compose services agree with config/access.table" access_table
check "every container has a read-only root filesystem" read_only_roots
check "certs volume read-only except in bulwark-init and bulwark-control" certs_ro
check "no secret value in the rendered compose config or any container's env/command" no_secret_in_config
check "generated secret files are not world-readable" secret_modes
check "temporal-ui (real ui-server) serves and talks mTLS to the frontend" ui_up
check "temporal-ui forwards the caller's bearer token to Temporal" ui_with_token

# --- the end-to-end suites -------------------------------------------------------------------
run_suite() { # run_suite NAME PATH
  local name=$1 path=$2 t0=$SECONDS line
  step "suite $name ($path --env $ENV_FILE)"
  "$PY" "$ROOT/$path" --env "$ENV_FILE" >"$OUT/$name.out" 2>&1 || true
  sed 's/^/    /' "$OUT/$name.out"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/$name.out" | tail -1)
  if [[ -z $line ]]; then fail "suite $name did not finish (see $OUT/$name.out)"; return; fi
  local p f; p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
  passed=$((passed + p)); failed=$((failed + f))
  step "suite $name: $line in $((SECONDS - t0))s"
}
run_suite conformance tests/conformance/conformance.py
# The suite restarts Temporal and Postgres; say if Temporal needed its restart policy after.
step "temporal container restarts so far: $(podman inspect --format '{{.RestartCount}}' "$(compose ps -q temporal)" 2>/dev/null || echo '?')"
[[ -f $ROOT/tests/workflows/workflows.py ]] && run_suite workflows tests/workflows/workflows.py
check "a rotation keeps each key's group grant; a writer outside the group is refused" rotation_keeps_grants

# --- scaling and warm restart ----------------------------------------------------------------
scale_workers() {
  # The test override publishes one worker's health port, which two replicas cannot share,
  # so scale with the plain compose file.
  printf 'services: {}\n' >"$OUT/scale.yml"
  "$COMPOSE_BIN" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" -f "$OUT/scale.yml" up -d --no-build --no-recreate --scale bulwark-worker=2 bulwark-worker >"$OUT/scale.log" 2>&1 \
    || { tail -5 "$OUT/scale.log"; return 1; }
  wait_healthy bulwark-worker 180 || { echo "not all workers healthy"; return 1; }
  echo "$(compose ps -q bulwark-worker | wc -l) workers healthy"
}
check "bulwark-worker scales (--scale bulwark-worker=2)" scale_workers

step "compose down (volumes kept) and up again (warm)"
ca_sum=$(sha256sum <"$CERTS/ca.crt")
compose down >/dev/null 2>&1
if warm=$(up_stack warm); then pass "warm up: existing volumes reused, healthy in ${warm}s"; else fail "warm up: $warm"; fi
warm_same_ca() {
  [[ $(podman volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}_certs") == "$CERTS" ]] || { echo "a new certs volume"; return 1; }
  [[ $(sha256sum <"$CERTS/ca.crt") == "$ca_sum" ]] || { echo "ca.crt changed"; return 1; }
  # Healthy api and worker do not mean the frontend answers the host yet (published ports
  # come up with the container, the gRPC server later); give it the time temporal-setup would.
  wait_serving 60 || { echo "frontend not SERVING from the host within 60s"; return 1; }
  local out
  out=$(TEMPORAL_API_KEY="$(cat "$CERTS/system-token.jwt")" "$CACHE/venv-temporalio-1.35.0/bin/temporal" operator namespace describe --namespace default --address "127.0.0.1:$BULWARK_TEMPORAL_HOST_PORT" --tls-ca-path "$CERTS/ca.crt" --tls-cert-path "$CERTS/client-admin.crt" --tls-key-path "$CERTS/client-admin.key" --tls-server-name temporal -o json 2>&1) \
    || { echo "namespace describe: ${out:0:300}"; return 1; }
  grep -q '"name": "default"' <<<"$out" || { echo "namespace default missing: ${out:0:300}"; return 1; }
  echo "same CA and tokens, namespace still there"
}
check "warm up keeps identity material and data" warm_same_ca

# --- the production overlay, rendered ----------------------------------------------------------
prod_render() {
  local dir; dir=$(mktemp -d)
  mkdir -p "$dir/secrets"; for n in postgres-superuser temporal-db bulwark-db demo-reader gate-db; do echo placeholder >"$dir/secrets/$n.password"; done
  BULWARK_SECRETS_DIR="$dir/secrets" "$COMPOSE_BIN" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.prod.yml" \
    --profile ui config --format json >"$OUT/prod.json" 2>"$OUT/prod.err" || { cat "$OUT/prod.err"; rm -rf "$dir"; return 1; }
  rm -rf "$dir"
  "$PY" "$HERE/prod_assert.py" "$OUT/prod.json" "$ROOT/docker-compose.prod.yml"
}
check "docker-compose.prod.yml renders and keeps its promises" prod_render

# --- the production overlay, running -----------------------------------------------------------
prod_run() {
  local P=("$COMPOSE_BIN" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.prod.yml" -p "${COMPOSE_PROJECT_NAME}-prod")
  local sd="$OUT/prod-secrets" t0=$SECONDS
  rm -rf "$sd"; mkdir -p "$sd"
  for n in postgres-superuser temporal-db bulwark-db demo-reader gate-db; do (umask 077; openssl rand -hex 24 >"$sd/$n.password"); done
  chown 999:999 "$sd/postgres-superuser.password"; chmod 0400 "$sd/postgres-superuser.password"
  chown 10010:999 "$sd/temporal-db.password"; chown 10001:999 "$sd"/{bulwark-db,demo-reader,gate-db}.password
  chmod 0440 "$sd"/{temporal-db,bulwark-db,demo-reader,gate-db}.password
  export BULWARK_SECRETS_DIR=$sd BULWARK_WORKER_REPLICAS=2
  compose down -v >/dev/null 2>&1 || true   # the dev stack's host ports
  if ! "${P[@]}" up -d --no-build >"$OUT/prod-up.log" 2>&1; then
    tail -15 "$OUT/prod-up.log"; "${P[@]}" down -v >/dev/null 2>&1; return 1
  fi
  local ok=1 s id
  for s in gate bulwark-control bulwark-api bulwark-worker; do
    COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME}-prod" wait_healthy_p "$s" 240 "${P[@]}" || { ok=0; echo "$s not healthy"; "${P[@]}" logs --no-color --tail 10 "$s"; }
  done
  local published; published=$(for id in $("${P[@]}" ps -q); do podman port "$id" | sed 's/.*-> //'; done | sort -u | tr '\n' ' ')
  local creds; creds=$(podman volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}-prod_credentials")
  local certs; certs=$(podman volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}-prod_certs")
  local env_leak; env_leak=$(for id in $("${P[@]}" ps -a -q); do podman inspect --format '{{json .Config.Env}}' "$id"; done | grep -cF "$(cat "$sd/temporal-db.password")" || true)
  local workers; workers=$("${P[@]}" ps -q bulwark-worker | wc -l)
  # An operator token from control, then an authenticated API call, both over the published ports.
  local op tok code
  op=$(cat "$creds/operator-credentials.json")
  tok=$(curl -fsS --cacert "$certs/ca.crt" -u "$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["client_id"]+":"+d["client_secret"])' "$op")" \
    -d grant_type=client_credentials "https://127.0.0.1:$BULWARK_CONTROL_HOST_PORT/oauth/token" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') || tok=''
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$certs/ca.crt" -H "Authorization: Bearer $tok" "https://127.0.0.1:$BULWARK_API_HOST_PORT/api/v1/workflows")
  # Temporal from the host: through the gate's published port, as the admin identity.
  local ns_out
  ns_out=$(TEMPORAL_API_KEY="$(cat "$certs/system-token.jwt")" "$CACHE/venv-temporalio-1.35.0/bin/temporal" operator namespace describe \
    --namespace default --address "127.0.0.1:$BULWARK_TEMPORAL_HOST_PORT" --tls-ca-path "$certs/ca.crt" \
    --tls-cert-path "$certs/client-admin.crt" --tls-key-path "$certs/client-admin.key" --tls-server-name temporal -o json 2>&1) || true
  "${P[@]}" down -v >/dev/null 2>&1
  rm -rf "$sd"; unset BULWARK_SECRETS_DIR BULWARK_WORKER_REPLICAS
  local port
  for port in "$BULWARK_TEMPORAL_HOST_PORT" "$BULWARK_CONTROL_HOST_PORT" "$BULWARK_API_HOST_PORT"; do
    [[ " $published" == *":$port "* ]] || { ok=0; echo "port $port not published: $published"; }
  done
  [[ $(wc -w <<<"$published") -eq 3 ]] || { ok=0; echo "unexpected published ports: $published"; }
  grep -q '"name": "default"' <<<"$ns_out" || { ok=0; echo "namespace describe through the gate's published port: ${ns_out:0:200}"; }
  [[ $env_leak == 0 ]] || { ok=0; echo "a password in container env"; }
  [[ $workers == 2 ]] || { ok=0; echo "$workers workers"; }
  [[ $code == 200 ]] || { ok=0; echo "API with an operator token from control: HTTP $code"; }
  ((ok)) && echo "healthy in $((SECONDS - t0))s; published only: $published(gate, control, api); Temporal answers through the gate; 2 workers; passwords only as Docker secrets; operator token -> API 200"
  ((ok))
}
wait_healthy_p() { # wait_healthy_p SERVICE SECONDS COMPOSE...: wait_healthy for another project
  local s=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs)) id st all
  while :; do
    all=1
    for id in $("$@" ps -q "$s"); do
      timeout 15 podman healthcheck run "$id" >/dev/null 2>&1 || true
      st=$(podman inspect --format '{{.State.Health.Status}}' "$id"); [[ $st == healthy ]] || all=0
    done
    [[ -n $("$@" ps -q "$s") ]] || all=0
    ((all)) && return 0
    ((SECONDS < deadline)) || return 1
    sleep 2
  done
}
check "the production overlay runs: networks, Docker secrets, limits, only the gate, api and control published" prod_run

finish
