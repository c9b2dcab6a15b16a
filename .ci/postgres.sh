#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests, from Debian's packages.
#
#   eval "$(.ci/postgres.sh start)"   # install if needed, start (or find running), export WATTSHARE_TEST_PG_DSN
#   .ci/postgres.sh stop              # stop it and delete its files
#   .ci/postgres.sh dsn               # print the export line of the running server
#
# The cluster lives in $WATTSHARE_PG_DIR (default /tmp/wattshare-ci-pg), listens on 127.0.0.1 at a
# free port, trusts local connections and is tuned for speed, not durability (fsync off): never
# put data you want to keep there. As root, initdb / pg_ctl run as the 'postgres' user (initdb
# refuses root). Running `start` twice reuses the running server. Only the export line goes to
# stdout; progress goes to stderr.
set -euo pipefail

DIR="${WATTSHARE_PG_DIR:-/tmp/wattshare-ci-pg}"
DATA="$DIR/data"
PORT_FILE="$DIR/port"

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

install_postgres() {
    if find_bin >/dev/null; then return 0; fi
    if [[ $(id -u) -ne 0 ]]; then
        log "PostgreSQL is not installed and this is not root: run 'apt-get install -y postgresql' as root"
        exit 1
    fi
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # policy-rc.d: do not start the package's default cluster (the tests use their own); leave an
    # existing policy file alone
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    local rc=0
    apt-get install -y -qq postgresql >&2 || rc=$?
    if [[ $made_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    if [[ $rc -ne 0 ]]; then log "apt-get install postgresql failed ($rc)"; exit 1; fi
    find_bin >/dev/null || { log "postgresql installed, but no initdb / pg_ctl under /usr/lib/postgresql/*/bin"; exit 1; }
}

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local p
    for p in $(seq 54329 54400); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    log "no free port in 54329-54400"; exit 1
}

export_line() { echo "export WATTSHARE_TEST_PG_DSN=postgresql://postgres@127.0.0.1:$(cat "$PORT_FILE")/postgres"; }

running() {
    local bin="$1"
    [[ -f "$PORT_FILE" && -d "$DATA" ]] && as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
    install_postgres
    local bin; bin="$(find_bin)"
    if running "$bin"; then
        log "already running on port $(cat "$PORT_FILE")"
        export_line
        return
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$DIR"; fi
    local port; port="$(free_port)"
    as_owner "$bin/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
        -o "-p $port -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
    echo "$port" > "$PORT_FILE"
    log "started PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $DIR)"
    export_line
}

stop() {
    local bin
    if bin="$(find_bin)" && [[ -d "$DATA" ]]; then
        as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
    log "stopped"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    dsn)
        bin="$(find_bin)" || { log "PostgreSQL is not installed"; exit 1; }
        running "$bin" || { log "not running"; exit 1; }
        export_line ;;
    *) echo "usage: $0 [start|stop|dsn]" >&2; exit 2 ;;
esac
