# Shared by tests/compose/*.sh: the compose command for the test project. Source it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${BULWARK_CACHE_DIR:-$HOME/.cache/bulwark}
COMPOSE_VERSION=${BULWARK_COMPOSE_VERSION:-v2.40.3}
COMPOSE_BIN=${BULWARK_COMPOSE_BIN:-$CACHE/bin/docker-compose-$COMPOSE_VERSION}
export COMPOSE_PROJECT_NAME=${BULWARK_TEST_PROJECT:-bulwark-test}
export DOCKER_HOST=${BULWARK_TEST_DOCKER_HOST:-unix:///run/bulwark-compose-test/podman.sock}
# Test host ports: clear of the native stack (7233-7239, 8443-8445, 15432, 9090).
export BULWARK_TEMPORAL_HOST_PORT=${BULWARK_TEMPORAL_HOST_PORT:-17233}
export BULWARK_CONTROL_HOST_PORT=${BULWARK_CONTROL_HOST_PORT:-18443}
export BULWARK_ADMIN_HOST_PORT=${BULWARK_ADMIN_HOST_PORT:-18445}
export BULWARK_API_HOST_PORT=${BULWARK_API_HOST_PORT:-18444}
export BULWARK_UI_HOST_PORT=${BULWARK_UI_HOST_PORT:-18080}
export BULWARK_PG_HOST_PORT=${BULWARK_PG_HOST_PORT:-15433}
export BULWARK_CONTROL_PUBLIC_URL=https://localhost:$BULWARK_CONTROL_HOST_PORT
set -a; source "$ROOT/docker/images.env"; set +a
export BULWARK_IMAGE_REPO BULWARK_VERSION
COMPOSE=("$COMPOSE_BIN" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" -f "$HERE/compose.test.yml")
compose() { "${COMPOSE[@]}" "$@"; }
svc() { case $1 in temporal|postgres) echo "$1" ;; worker|api|control) echo "bulwark-$1" ;; *) echo "$1" ;; esac; }
# wait_healthy SERVICE SECONDS: until every container of SERVICE reports healthy.
wait_healthy() {
  local s=$1 deadline=$((SECONDS + $2)) ids id st ok
  while :; do
    ok=1
    ids=$(compose ps -q "$s" 2>/dev/null || true)
    [[ -n $ids ]] || ok=0
    for id in $ids; do
      timeout 15 podman healthcheck run "$id" >/dev/null 2>&1 || true
      st=$(podman inspect --format '{{.State.Health.Status}}' "$id" 2>/dev/null || echo none)
      [[ $st == healthy ]] || ok=0
    done
    ((ok)) && return 0
    ((SECONDS < deadline)) || return 1
    sleep 2
  done
}
# wait_serving SECONDS: until Temporal answers cluster health over mTLS through the gate's
# published port (the gate forwards health checks to the frontend).
wait_serving() {
  local deadline=$((SECONDS + $1)) certs
  certs=$(podman volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}_certs")
  until "$CACHE/venv-temporalio-1.35.0/bin/temporal" operator cluster health --address "127.0.0.1:$BULWARK_TEMPORAL_HOST_PORT" \
      --tls-ca-path "$certs/ca.crt" --tls-cert-path "$certs/client-admin.crt" --tls-key-path "$certs/client-admin.key" \
      --tls-server-name temporal 2>/dev/null | grep -q SERVING; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}
