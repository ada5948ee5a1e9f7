#!/bin/bash
# Entrypoint of the local postgres stand-in (written for Bulwark; behaves like the official
# image for the settings Bulwark uses). First start on an empty $PGDATA: initdb with the
# superuser from POSTGRES_USER/POSTGRES_PASSWORD(_FILE), host connections authenticated with
# POSTGRES_HOST_AUTH_METHOD (scram-sha-256), POSTGRES_DB created, /docker-entrypoint-initdb.d
# run against a server listening only on its Unix socket. Then exec postgres.
set -Eeuo pipefail

if [[ ${1:-} == -* ]]; then set -- postgres "$@"; fi
if [[ ${1:-} != postgres ]]; then exec "$@"; fi
for a in "$@"; do case $a in -V|--version|--help|-\?|--describe-config|-C) exec "$@" ;; esac; done

# Started as root: fix ownership, then re-exec as postgres.
if [[ $(id -u) == 0 ]]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql && chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

file_env() { # file_env VAR [default]: VAR or the contents of VAR_FILE
  local var=$1 file_var="${1}_FILE" def=${2:-}
  if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
    echo "error: both $var and $file_var are set" >&2; exit 1
  fi
  local val=$def
  if [[ -n ${!var:-} ]]; then val=${!var}; elif [[ -n ${!file_var:-} ]]; then val=$(<"${!file_var}"); fi
  export "$var"="$val"; unset "$file_var"
}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  if [[ -z $POSTGRES_PASSWORD && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
    echo "error: database is uninitialized and superuser password is not specified." >&2
    echo "       Set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust)." >&2
    exit 1
  fi
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" $POSTGRES_INITDB_ARGS
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
  psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [[ $POSTGRES_DB != postgres ]]; then
    "${psql[@]}" --dbname postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  export POSTGRES_USER POSTGRES_DB PGPASSWORD=
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh) if [[ -x $f ]]; then echo "running $f"; "$f"; else echo "sourcing $f"; . "$f"; fi ;;
      *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *) if [[ -e $f ]]; then echo "ignoring $f"; fi ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  unset POSTGRES_PASSWORD PGPASSWORD
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
