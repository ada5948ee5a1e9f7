#!/usr/bin/env bash
# Restarts one component of the native stack: scripts/restart.sh temporal|postgres|gate|control|api|worker
source "$(dirname "$0")/lib.sh"
case ${1:-} in
  temporal) "$ROOT/scripts/down.sh" temporal; "$ROOT/scripts/up.sh" temporal ;;
  postgres) "$ROOT/scripts/down.sh" postgres; "$ROOT/scripts/up.sh" postgres ;;
  gate|control|api|worker) "$ROOT/scripts/down.sh" "$1"; "$ROOT/scripts/up.sh" "$1" ;;
  *) die "usage: $0 temporal|postgres|gate|control|api|worker" ;;
esac
