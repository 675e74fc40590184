#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests: Debian's postgresql package, a data directory
# of its own, trust authentication on loopback, a free port.
#
#   scripts/test-postgres.sh start DIR   initdb (when new) and start the server; prints
#                                        postgresql://collectord@127.0.0.1:PORT/postgres
#                                        and writes it to DIR/url
#   scripts/test-postgres.sh stop DIR    stop it (fast shutdown); the files stay
#   scripts/test-postgres.sh kill DIR    stop it at once (immediate shutdown: a crash)
#   scripts/test-postgres.sh remove DIR  stop it and delete its files and DIR
#
# PostgreSQL refuses to run as root; as root the server runs as the `postgres` account the
# package creates. Its files (data, log, socket) live in a folder of their own under /tmp,
# named in DIR/datadir, since that account may not be able to reach DIR (a checkout under a
# home folder, say). A restart after stop reuses the files and the port.
set -euo pipefail

command=${1:?usage: $0 start|stop|kill|remove DIR}
dir=${2:?usage: $0 start|stop|kill|remove DIR}

bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/pg_ctl" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ ! -x "$bindir/pg_ctl" ]; then
  echo "test-postgres: no PostgreSQL server found (install Debian's postgresql package)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The server's own folder, when DIR names one that still exists.
files=$(cat "$dir/datadir" 2>/dev/null || true)
if [ -n "$files" ] && [ ! -d "$files" ]; then files=""; fi

case "$command" in
  start)
    mkdir -p "$dir"
    if [ -z "$files" ]; then
      files=$(mktemp -d /tmp/collectord-pg-data-XXXXXX)
      [ "$(id -u)" -eq 0 ] && chown postgres: "$files"
      echo "$files" >"$dir/datadir"
    fi
    if [ ! -f "$files/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$files/data" -U collectord --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$files/initdb.log" 2>&1 ||
        { cat "$files/initdb.log" >&2; exit 1; }
    fi
    port=$(cat "$dir/port" 2>/dev/null || true)
    if [ -z "$port" ]; then
      port=$(free_port)
      echo "$port" >"$dir/port"
    fi
    # Quick: the tests create hundreds of databases. fsync=off gives up durability only across
    # a power loss of the test machine; a killed server (`kill`) loses no commit, since every
    # commit's WAL is in the kernel before the client hears of it (synchronous_commit stays on).
    as_owner "$bindir/pg_ctl" -D "$files/data" -l "$files/server.log" -w -t 60 start \
      -o "-p $port -k $files -c listen_addresses=127.0.0.1 -c max_connections=400 \
          -c fsync=off -c full_page_writes=off \
          -c shared_buffers=64MB" >/dev/null ||
      { tail -n 20 "$files/server.log" >&2; exit 1; }
    url="postgresql://collectord@127.0.0.1:$port/postgres"
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
  stop)
    [ -n "$files" ] && as_owner "$bindir/pg_ctl" -D "$files/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  kill)
    [ -n "$files" ] && as_owner "$bindir/pg_ctl" -D "$files/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  remove)
    if [ -n "$files" ]; then
      if [ -f "$files/data/PG_VERSION" ]; then
        as_owner "$bindir/pg_ctl" -D "$files/data" -m immediate -w stop >/dev/null 2>&1 || true
      fi
      rm -rf "$files"
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop|kill|remove DIR" >&2
    exit 2
    ;;
esac
