#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests: Debian's postgresql package, a data directory
# of its own, trust authentication on loopback, a free port.
#
#   scripts/test-postgres.sh start DIR   initdb into DIR/data (when new) and start the server;
#                                        prints postgresql://collectord@127.0.0.1:PORT/postgres
#                                        and writes it to DIR/url
#   scripts/test-postgres.sh stop DIR    stop it (fast shutdown); the files stay
#   scripts/test-postgres.sh kill DIR    stop it at once (immediate shutdown: a crash)
#   scripts/test-postgres.sh remove DIR  stop it and delete DIR
#
# PostgreSQL refuses to run as root; as root the server runs as the `postgres` account the
# package creates. A restart after stop reuses DIR/data and the same port.
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

case "$command" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir/data" -U collectord --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    port=$(cat "$dir/port" 2>/dev/null || true)
    if [ -z "$port" ]; then
      port=$(free_port)
      echo "$port" >"$dir/port"
    fi
    # Quick: the tests create hundreds of databases. fsync=off gives up durability only across
    # a power loss of the test machine; a killed server (`kill`) loses no commit, since every
    # commit's WAL is in the kernel before the client hears of it (synchronous_commit stays on).
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 \
          -c fsync=off -c full_page_writes=off \
          -c shared_buffers=64MB" >/dev/null ||
      { tail -n 20 "$dir/server.log" >&2; exit 1; }
    url="postgresql://collectord@127.0.0.1:$port/postgres"
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
  stop)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  kill)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  remove)
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop|kill|remove DIR" >&2
    exit 2
    ;;
esac
