#!/usr/bin/env bash
# Restarts one component of the native stack: scripts/restart.sh temporal|postgres
source "$(dirname "$0")/lib.sh"
case ${1:-} in
  temporal) "$ROOT/scripts/down.sh" temporal; "$ROOT/scripts/up.sh" temporal ;;
  postgres) "$ROOT/scripts/down.sh" postgres; "$ROOT/scripts/up.sh" postgres ;;
  *) die "usage: $0 temporal|postgres" ;;
esac
