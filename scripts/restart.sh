#!/usr/bin/env bash
# Restarts one component of the native stack: scripts/restart.sh temporal|postgres
source "$(dirname "$0")/lib.sh"
case ${1:-} in
  temporal) "$ROOT/scripts/down.sh" temporal; "$ROOT/scripts/up.sh" temporal ;;
  postgres) "$ROOT/scripts/down.sh" postgres; "$ROOT/scripts/up.sh" postgres ;;
  control|api|worker) "$ROOT/scripts/down.sh" "$1"; "$ROOT/scripts/up.sh" "$1" ;;
  *) die "usage: $0 temporal|postgres|control|api|worker" ;;
esac
