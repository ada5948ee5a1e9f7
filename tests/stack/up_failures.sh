#!/usr/bin/env bash
# Bad input to scripts/up.sh fails fast with a message naming the cause, and touches nothing
# else: a corrupted certificate, a bad version pin, an unreachable Postgres.
# Runs in a scratch state dir, so it is safe beside a running stack.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
pass=0 fail=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

expect_failure() { # expect_failure NAME NEEDLE CMD...
  local name=$1 needle=$2; shift 2
  local out rc start=$SECONDS
  out=$("$@" 2>&1); rc=$?
  if [[ $rc -ne 0 && $out == *"$needle"* ]]; then
    echo "ok   - $name (exit $rc in $((SECONDS - start))s: $(grep -m1 '^error' <<<"$out"))"; pass=$((pass+1))
  else
    echo "FAIL - $name (exit $rc; wanted a message containing '$needle')"; echo "$out" | tail -5 | sed 's/^/       /'; fail=$((fail+1))
  fi
}

init="${BULWARK_BIN_DIR:-$ROOT/target/debug}/bulwark-init"
"$init" generate --out "$scratch/certs" >/dev/null 2>&1
echo "garbage" >"$scratch/certs/temporal-server.crt"
expect_failure "corrupted temporal-server.crt names the file" "temporal-server.crt" \
  env BULWARK_STATE_DIR="$scratch/state" BULWARK_CERTS_DIR="$scratch/certs" "$ROOT/scripts/up.sh" temporal

rm -f "$scratch/certs/temporal-server.key"
expect_failure "missing temporal-server.key names the file" "temporal-server.key" \
  env BULWARK_STATE_DIR="$scratch/state" BULWARK_CERTS_DIR="$scratch/certs" "$ROOT/scripts/up.sh" temporal

expect_failure "a bad Temporal version pin names the pin" "v0.0.0-bulwark-bogus" \
  env TEMPORAL_SERVER_VERSION=v0.0.0-bulwark-bogus BULWARK_CACHE_DIR="$scratch/cache" "$ROOT/scripts/install.sh"

"$init" generate --out "$scratch/certs2" >/dev/null 2>&1
expect_failure "an unreachable Postgres is named" "Postgres at 127.0.0.1:1 is unreachable" \
  env BULWARK_STATE_DIR="$scratch/state2" BULWARK_CERTS_DIR="$scratch/certs2" BULWARK_PG_PORT=1 "$ROOT/scripts/up.sh" temporal

expect_failure "a malformed port is named" "BULWARK_PG_PORT must be a port number" \
  env BULWARK_STATE_DIR="$scratch/state3" BULWARK_PG_PORT=abc "$ROOT/scripts/up.sh"

expect_failure "a malformed gate port is named" "BULWARK_GATE_PORT must be a port number" \
  env BULWARK_STATE_DIR="$scratch/state4" BULWARK_GATE_PORT=7233x "$ROOT/scripts/up.sh"

expect_failure "the gate and the frontend on one port is refused" "must differ" \
  env BULWARK_STATE_DIR="$scratch/state5" BULWARK_GATE_PORT=7237 BULWARK_TEMPORAL_UPSTREAM_PORT=7237 "$ROOT/scripts/up.sh"

echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
