#!/bin/sh
# Runs Debian's Postgres 15 in the foreground as the `postgres` user. On an empty data
# directory (a fresh volume) it first initialises a cluster the way the official image's
# environment describes it: POSTGRES_USER (default postgres) with POSTGRES_PASSWORD, and a
# database POSTGRES_DB (default: the user's name). Connections from other containers need
# that password (scram-sha-256); the socket inside the container is trusted.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres: POSTGRES_PASSWORD is empty; it is needed to initialise the cluster in $PGDATA" >&2
        exit 1
    fi
    echo "postgres: initialising a new cluster in $PGDATA for user $POSTGRES_USER"
    password_file="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    initdb --username="$POSTGRES_USER" --pwfile="$password_file" --encoding=UTF8 \
        --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != "postgres" ]; then
        pg_ctl --silent --wait --options="-c listen_addresses=''" start
        psql --quiet --set=ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
            --set=database="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"database";
SQL
        pg_ctl --silent --wait --mode=fast stop
    fi
fi

exec postgres -c listen_addresses='*' "$@"
