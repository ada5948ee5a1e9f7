#!/usr/bin/env bash
# BULWARK_RESTART_CMD for the compose test stack: restart one service and wait until it serves.
#   tests/compose/restart.sh temporal|postgres|control|gate|api|worker
# api and worker are only restarted: the suites decide what readiness they expect next.
source "$(dirname "$0")/lib.sh"
s=$(svc "${1:?usage: $0 temporal|postgres|control|gate|api|worker}")
compose restart "$s" >/dev/null 2>&1
case $1 in
  temporal) wait_serving 120 ;;
  postgres|control|gate) wait_healthy "$s" 120 ;;
esac
