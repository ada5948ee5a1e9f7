#!/usr/bin/env bash
# Stops exactly what scripts/up.sh started, by pid. Data in .bulwark/ is kept.
#   scripts/down.sh [all|postgres|temporal|gate|control|api|worker]
source "$(dirname "$0")/lib.sh"
what=${1:-all}
RUN="$STATE/run"

stop_pid() { # stop_pid NAME
  local f="$RUN/$1.pid"
  [[ -f $f ]] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { log "$1 did not stop; killing"; kill -KILL "$pid"; }
  fi
  rm -f "$f"
}

stop_postgres() {
  if [[ -f $STATE/pg/data/PG_VERSION ]] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STATE/pg/data" status >/dev/null 2>&1; then
    log "stopping Postgres"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -m fast -w stop >/dev/null
  fi
  rm -f "$RUN/postgres.pid"
}

case $what in
  all) stop_pid bulwark-worker; stop_pid bulwark-api; stop_pid bulwark-control; stop_pid bulwark-gate; stop_pid temporal
       stop_postgres ;;
  temporal) stop_pid temporal ;;
  gate) stop_pid bulwark-gate ;;
  control) stop_pid bulwark-control ;;
  api) stop_pid bulwark-api ;;
  worker) stop_pid bulwark-worker ;;
  postgres) stop_postgres ;;
  *) die "usage: $0 [all|postgres|temporal|gate|control|api|worker]" ;;
esac
