#!/usr/bin/env bash
# A throwaway PostgreSQL 15 with plpython3u for the benchmark (Debian's
# packages, installed if missing). Defaults, fsync on, loopback only.
#   bench/pg.sh start PORT DIR   |   bench/pg.sh stop DIR
set -eu
bin=/usr/lib/postgresql/15/bin
as_pg() {
  if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi
}
if [ ! -x $bin/postgres ] || [ ! -e /usr/lib/postgresql/15/lib/plpython3.so ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  ($sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq \
    postgresql-15 postgresql-plpython3-15 postgresql-client-15) >/dev/null
fi
case $1 in
  start)
    port=$2; dir=$3
    rm -rf "$dir"; mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg $bin/initdb -D "$dir" -A trust -U amber >/dev/null
    as_pg $bin/pg_ctl -D "$dir" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200" \
      -l "$dir/log" -w start >/dev/null
    psql -h 127.0.0.1 -p "$port" -U amber -d postgres -qc "CREATE DATABASE amber" ;;
  stop)
    as_pg $bin/pg_ctl -D "$2" -m fast -w stop >/dev/null || true ;;
esac
