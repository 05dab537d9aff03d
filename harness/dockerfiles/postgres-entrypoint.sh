#!/bin/sh
# Mirrors the official image's contract: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB; extra arguments ("-c fsync=off") go to the server.
#
# The image is built with a cluster already in $PGDATA (`docker-entrypoint.sh prepare`, marked
# by $PREPARED): initdb at each start was most of the CPU the database burned booting, beside
# seven other containers on the same cores. A start then only names that cluster's bootstrap
# superuser (OID 10, as initdb -U would have) and gives it its password, and makes the database:
# one single-user run. An empty $PGDATA (a bind mount over it) is initialised as before.
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_PASSWORD:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
PREPARED="$PGDATA/.chaos-prepared"

# A value quoted for SQL: as an identifier ("...") or a string literal ('...').
ident() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
literal() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

# Runs SQL statements, one a line, in single-user mode (no server, no connection).
single_user() { runuser -u postgres -- postgres --single -D "$PGDATA" postgres >/dev/null; }

# initdb of $PGDATA with the bootstrap superuser $1 and the password in file $2.
init_cluster() {
  runuser -u postgres -- initdb -D "$PGDATA" -U "$1" --pwfile="$2" -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
}

create_database() {
  if [ "$POSTGRES_DB" != "postgres" ]; then
    echo "CREATE DATABASE $(ident "$POSTGRES_DB");" | single_user
  fi
}

case "${1:-postgres}" in -*) set -- postgres "$@" ;; esac
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ "$1" = "prepare" ]; then  # at image build: a cluster whose superuser each start renames
  pwfile=$(mktemp)
  echo postgres > "$pwfile"
  chown postgres "$pwfile"
  init_cluster postgres "$pwfile"
  rm -f "$pwfile"
  touch "$PREPARED"
  exit 0
fi
if [ -f "$PREPARED" ]; then
  # The bootstrap superuser is the session's own, which ALTER ROLE cannot rename: its catalog row is.
  {
    echo "UPDATE pg_authid SET rolname = $(literal "$POSTGRES_USER") WHERE oid = 10;"
    echo "ALTER ROLE $(ident "$POSTGRES_USER") PASSWORD $(literal "$POSTGRES_PASSWORD");"
  } | single_user
  create_database
  rm -f "$PREPARED"
elif [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  init_cluster "$POSTGRES_USER" "$pwfile"
  rm -f "$pwfile"
  create_database
fi
if [ "$1" = "postgres" ]; then
  # setpriv execs the server in place (runuser would stay as PID 1 and swallow the stop
  # signal), so `docker stop` shuts PostgreSQL down at once instead of after its timeout.
  exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
fi
exec "$@"
