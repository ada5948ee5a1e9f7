#!/usr/bin/env bash
# Runs every test: installs what is missing, checks formatting and lints, brings up the
# native stack, runs the Rust tests (with a real Postgres), the OpenSSL cross-check of the
# certs, the up.sh failure tests and the auth conformance suite, then stops the stack.
# Set BULWARK_KEEP_UP=1 to leave the stack running afterwards.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
status=0
step() { printf '\n=== %s\n' "$*"; }
# Incremental artifacts only pay off across edits; a one-shot run would keep gigabytes of them.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
disk_report() {
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  printf 'disk: %s free on %s; target dir %s\n' \
    "$(df -h --output=avail "$ROOT" | tail -1 | tr -d ' ')" "$ROOT" \
    "$(du -sh "$target" 2>/dev/null | cut -f1 || echo 0)"
}
run() { "$@" || { echo "--- FAILED: $*"; status=1; }; }

step "install"
scripts/install.sh
disk_report

step "cargo fmt --check"
run cargo fmt --all -- --check
step "cargo clippy -D warnings"
run cargo clippy -q --workspace --all-targets -- -D warnings
step "cargo deny check licenses bans sources"
# Advisories are left out: they need the RustSec database from GitHub, which CI cannot reach
# (deny.toml says more). Errors only; `cargo deny check licenses bans sources` shows warnings.
run cargo deny --log-level error check licenses bans sources

step "bring up the native stack"
started_here=0
[[ -f $STATE/run/temporal.pid ]] && kill -0 "$(cat "$STATE/run/temporal.pid")" 2>/dev/null || started_here=1
if [[ ${BULWARK_KEEP_UP:-0} != 1 && $started_here == 1 ]]; then
  trap 'step "stop the native stack"; scripts/down.sh' EXIT
fi
# Temporal re-reads its certificates this often; short, as the rotation tests wait on it.
# Only for a stack started here: a running one keeps (and .bulwark/env records) its own.
if ((started_here)); then export BULWARK_TLS_REFRESH_INTERVAL=${BULWARK_TLS_REFRESH_INTERVAL:-10s}; fi
# Refused logins' count rows are written when their audit window closes; the hostile suite
# waits for them, so a stack started here closes windows after 20 s instead of 5 minutes.
if ((started_here)); then export BULWARK_ADMIN_AUDIT_REFUSAL_WINDOW=${BULWARK_ADMIN_AUDIT_REFUSAL_WINDOW:-20s}; fi
scripts/up.sh || { echo "--- FAILED: scripts/up.sh"; exit 1; }
set -a; source "$STATE/env"; set +a

step "cargo test (workspace, with Postgres)"
export BULWARK_TEST_DATABASE_URL="postgres://postgres:$(cat "$BULWARK_PG_SUPERUSER_PASSWORD_FILE")@127.0.0.1:$BULWARK_PG_PORT/postgres"
# Test suites create throwaway databases named *_test_*; drop the previous run's.
runuser -u postgres -- psql -h "$STATE/pg/run" -p "$BULWARK_PG_PORT" -d postgres -Atq \
  -c "SELECT datname FROM pg_database WHERE datname LIKE 'bulwark\_%test\_%'" 2>/dev/null |
  while read -r db; do runuser -u postgres -- dropdb -h "$STATE/pg/run" -p "$BULWARK_PG_PORT" "$db" 2>/dev/null || true; done
BULWARK_REQUIRE_DB=1 run cargo test -q --workspace


step "OpenSSL cross-check of $BULWARK_CERTS_DIR"
run scripts/check-certs-openssl.sh "$BULWARK_CERTS_DIR"

step "up.sh fails fast on bad input"
run tests/stack/up_failures.sh

step "auth conformance suite"
run "$VENV/bin/python" tests/conformance/conformance.py --env "$STATE/env"

step "admin page in a real browser (Chromium)"
run tests/browser/run.sh

step "workflows end to end through bulwark-api"
run "$VENV/bin/python" tests/workflows/workflows.py --env "$STATE/env"

step "API contract: schemathesis against bulwark-api's OpenAPI document"
BULWARK_SCHEMATHESIS="$ST_VENV/bin/st" run "$VENV/bin/python" tests/contract/contract.py --env "$STATE/env"

step "hostile clients (floods, oversized ids, login storms, half-sent requests)"
run "$VENV/bin/python" tests/hostile/hostile.py --env "$STATE/env"

# Faults under 25 starts/s: Postgres and Temporal stopped, control down past its tokens'
# lifetime, control killed mid-rotation, a verifier's clock skewed. Each restores the stack.
step "faults under load (Postgres, Temporal, control down and killed, clock skew)"
run "$VENV/bin/python" tests/faults/faults.py --env "$STATE/env"
run "$VENV/bin/python" tests/faults/control_down.py --env "$STATE/env"
run "$VENV/bin/python" tests/faults/kill_control.py --env "$STATE/env"
run "$VENV/bin/python" tests/faults/clock_skew.py --env "$STATE/env"
# Root only (it mounts a tmpfs over the certs dir); skips with a note when not root or not permitted.
run "$VENV/bin/python" tests/faults/disk_full.py --env "$STATE/env"

# Last, because they rotate the stack's material: every rotation under 25 starts/s, then an
# expired leaf recovered from the command line with control stopped.
step "rotation under load (admin page, 25 workflow starts/s)"
run "$VENV/bin/python" tests/rotation/under_load.py --env "$STATE/env"
step "emergency revoke of the JWT key (admin page; services recover without a restart)"
run "$VENV/bin/python" tests/rotation/revoke.py --env "$STATE/env"
step "recovery of an expired leaf from the command line"
run "$VENV/bin/python" tests/rotation/recovery.py --env "$STATE/env"

if [[ ${BULWARK_TEST_COMPOSE:-0} == 1 ]]; then
  step "docker compose files under podman (BULWARK_TEST_COMPOSE=1)"
  run tests/compose/run.sh
fi

step "result"
disk_report
if ((status == 0)); then echo "ALL TESTS PASSED"; else echo "SOME TESTS FAILED"; fi
exit $status
