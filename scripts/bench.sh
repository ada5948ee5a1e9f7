#!/usr/bin/env bash
# Runs every benchmark against the running native stack (scripts/up.sh) and prints figures,
# each beside the baseline it measured in the same run.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
[[ -f $STATE/env ]] || die "start the stack first: scripts/up.sh"
set -a; source "$STATE/env"; set +a
export BULWARK_TEST_DATABASE_URL="postgres://postgres:$(cat "$BULWARK_PG_SUPERUSER_PASSWORD_FILE")@127.0.0.1:$BULWARK_PG_PORT/postgres"
# Measure the services as they would run in production: optimised builds.
cargo build -q --release -p bulwark-api -p bulwark-worker -p bulwark-gate
BULWARK_BIN_DIR="$ROOT/target/release" "$ROOT/scripts/restart.sh" gate
BULWARK_BIN_DIR="$ROOT/target/release" "$ROOT/scripts/restart.sh" api
BULWARK_BIN_DIR="$ROOT/target/release" "$ROOT/scripts/restart.sh" worker
cargo bench -q -p bulwark-pki --bench generate
cargo bench -q -p bulwark-control --bench token_throughput
cargo bench -q -p bulwark-api --bench start_throughput
# The gate vs straight to the frontend, same calls and token, side by side.
cargo bench -q -p bulwark-gate --bench through_gate
cargo bench -q -p bulwark-gate-policy --bench decide
for extra in bulwark-token-client bulwark-secrets; do
  if cargo metadata --no-deps --format-version 1 | grep -q "\"name\":\"$extra\""; then cargo bench -q -p "$extra"; fi
done
