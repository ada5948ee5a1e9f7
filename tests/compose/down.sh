#!/usr/bin/env bash
# Stop one service of the compose test stack (the suites' "down.sh worker").
source "$(dirname "$0")/lib.sh"
compose stop "$(svc "${1:?usage: $0 SERVICE}")" >/dev/null 2>&1
