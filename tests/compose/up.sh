#!/usr/bin/env bash
# Start one stopped service of the compose test stack again (the suites' "up.sh worker").
source "$(dirname "$0")/lib.sh"
s=$(svc "${1:?usage: $0 SERVICE}")
compose start "$s" >/dev/null 2>&1
case $1 in
  temporal) wait_serving 120 ;;
  postgres|control|gate) wait_healthy "$s" 120 ;;
  worker|api) wait_healthy "$s" 60 || true ;;
esac
