#!/usr/bin/env bash
# BULWARK_RESTART_CMD for the compose test stack: restart one service and wait until it serves.
#   tests/compose/restart.sh temporal|postgres|worker|api|control
source "$(dirname "$0")/lib.sh"
s=$(svc "${1:?usage: $0 temporal|postgres|worker|api|control}")
compose restart "$s" >/dev/null 2>&1
case $1 in
  temporal) wait_serving 120 ;;
  *) if [[ -n $(podman inspect --format '{{.Config.Healthcheck}}' "$(compose ps -q "$s" | head -1)" 2>/dev/null | grep -v '<nil>') ]]; then wait_healthy "$s" 120 || true; fi ;;
esac
