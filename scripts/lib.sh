# Shared helpers for scripts/*.sh. Source it; it sets ROOT, CACHE and the pins.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.env
source "$ROOT/scripts/versions.env"
CACHE=${BULWARK_CACHE_DIR:-$HOME/.cache/bulwark}
TEMPORAL_BIN_DIR="$CACHE/bin/temporal-$TEMPORAL_SERVER_VERSION"
VENV="$CACHE/venv-temporalio-$PY_TEMPORALIO_VERSION"
ST_VENV="$CACHE/venv-schemathesis-$PY_SCHEMATHESIS_VERSION"
STATE=${BULWARK_STATE_DIR:-$ROOT/.bulwark}
PG_BIN=${BULWARK_PG_BIN:-}
if [[ -z $PG_BIN ]]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi

log()  { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
