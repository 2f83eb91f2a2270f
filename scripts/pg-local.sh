#!/usr/bin/env bash
# A project-local PostgreSQL cluster for development (`make run`), kept in .kaos/pg
# of this checkout and listening only on 127.0.0.1:${KAOS_PG_PORT:-5439}.
# Usage: scripts/pg-local.sh start|stop|status|url
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd -P)"

PORT="${KAOS_PG_PORT:-5439}"
DBNAME="kaosnet"
BASE="$ROOT/.kaos/pg"
DATA="$BASE/data"
RUN="$BASE/run"
LOG="$BASE/log"
SUPERUSER_FILE="$BASE/superuser"

die() {
    echo "pg-local: $*" >&2
    exit 1
}
say() { echo "pg-local: $*"; }

case "$PORT" in
    '' | *[!0-9]*) die "KAOS_PG_PORT must be a port number, got '$PORT'" ;;
esac

# Newest installed server version, e.g. /usr/lib/postgresql/15/bin.
find_pgbin() {
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/pg_ctl" ] || continue
        best="$(printf '%s\n%s\n' "$best" "$dir" | sed '/^$/d' | sort -V | tail -n 1)"
    done
    [ -n "$best" ] || die "no PostgreSQL server found in /usr/lib/postgresql/*/bin (run scripts/deps.sh)"
    echo "$best"
}
PGBIN="$(find_pgbin)"

# Postgres refuses to run as root: as root, the server side runs as the `postgres`
# system user; as a normal user, it runs as that user.
if [ "$(id -u)" -eq 0 ]; then
    RUN_AS=postgres
    id -u "$RUN_AS" >/dev/null 2>&1 \
        || die "system user '$RUN_AS' does not exist (install postgresql: scripts/deps.sh)"
    as_owner() { runuser -u "$RUN_AS" -- "$@"; }
else
    RUN_AS="$(id -un)"
    as_owner() { "$@"; }
fi

# The superuser name the cluster was created with (the OS user that ran initdb).
superuser() {
    if [ -r "$SUPERUSER_FILE" ]; then
        head -n 1 "$SUPERUSER_FILE"
    else
        echo "$RUN_AS"
    fi
}

# The port of the running server (from postmaster.pid), else the configured one.
current_port() {
    local p=""
    if [ -r "$DATA/postmaster.pid" ]; then
        p="$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)"
    fi
    case "$p" in
        '' | *[!0-9]*) echo "$PORT" ;;
        *) echo "$p" ;;
    esac
}

url() {
    echo "postgresql://$(superuser)@127.0.0.1:$(current_port)/$DBNAME"
}

is_running() {
    # pg_ctl status: 0 running, 3 not running, 4 no/unreadable data directory.
    [ -d "$DATA" ] && as_owner "$PGBIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

# As root: give the postgres user .kaos/pg, and let it traverse every ancestor
# directory (e.g. a checkout under /root, mode 700) by adding only an `x` ACL entry.
prepare_owner_access() {
    [ "$(id -u)" -eq 0 ] || return 0
    local dir="$ROOT/.kaos"
    local -a chain=()
    while :; do
        chain=("$dir" "${chain[@]}")
        [ "$dir" = / ] && break
        dir="$(dirname "$dir")"
    done
    for dir in "${chain[@]}"; do
        runuser -u "$RUN_AS" -- test -x "$dir" && continue
        command -v setfacl >/dev/null 2>&1 \
            || die "user '$RUN_AS' cannot traverse $dir and setfacl is missing (run scripts/deps.sh)"
        setfacl -m "u:$RUN_AS:x" "$dir" \
            || die "could not grant '$RUN_AS' traverse permission on $dir"
        say "granted user '$RUN_AS' traverse-only permission (ACL u:$RUN_AS:x) on $dir"
    done
    chown -R "$RUN_AS:" "$BASE"
}

ensure_cluster() {
    mkdir -p "$BASE"
    prepare_owner_access
    if [ -f "$DATA/PG_VERSION" ]; then
        local have want
        have="$(cat "$DATA/PG_VERSION")"
        want="$(basename "$(dirname "$PGBIN")")"
        [ "$have" = "$want" ] || say "warning: cluster is version $have but newest server is $want; using $PGBIN"
        return 0
    fi
    [ -d "$DATA" ] && [ -n "$(ls -A "$DATA" 2>/dev/null)" ] \
        && die "$DATA exists but is not a PostgreSQL cluster; remove it to start over"
    say "initdb $DATA (superuser '$RUN_AS', trust auth on the local socket and 127.0.0.1 only)"
    as_owner mkdir -p "$DATA" "$RUN"
    (cd "$BASE" && as_owner "$PGBIN/initdb" -D "$DATA" -U "$RUN_AS" --auth=trust \
        --encoding=UTF8 --locale=C >"$BASE/initdb.log" 2>&1) || {
        cat "$BASE/initdb.log" >&2
        die "initdb failed"
    }
    # Dev cluster: trust, but only over the unix socket and IPv4 loopback.
    as_owner tee "$DATA/pg_hba.conf" >/dev/null <<'HBA'
# KaosNet dev cluster (scripts/pg-local.sh): trust local connections only.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
HBA
    echo "$RUN_AS" | as_owner tee "$SUPERUSER_FILE" >/dev/null
}

start() {
    ensure_cluster
    as_owner mkdir -p "$RUN"
    if is_running; then
        say "already running on 127.0.0.1:$(current_port)"
    else
        local sock="$RUN/.s.PGSQL.$PORT"
        [ "${#sock}" -lt 100 ] \
            || die "socket path $sock is too long for a unix socket; move the checkout to a shorter path"
        say "starting PostgreSQL ($PGBIN) on 127.0.0.1:$PORT, log in .kaos/pg/log"
        if ! (cd "$BASE" && as_owner "$PGBIN/pg_ctl" start -w -t 60 -D "$DATA" -l "$LOG" \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories='$RUN'" \
            >/dev/null); then
            tail -n 20 "$LOG" >&2 || true
            die "PostgreSQL failed to start (is port $PORT in use? set KAOS_PG_PORT)"
        fi
    fi
    local port su
    port="$(current_port)"
    su="$(superuser)"
    if [ "$("$PGBIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$su" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" != "1" ]; then
        say "creating database $DBNAME"
        "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U "$su" "$DBNAME"
    fi
    say "ready: $(url)"
}

stop() {
    if is_running; then
        say "stopping"
        (cd "$BASE" && as_owner "$PGBIN/pg_ctl" stop -w -m fast -D "$DATA" >/dev/null)
        say "stopped"
    else
        say "not running"
    fi
}

status() {
    if [ ! -f "$DATA/PG_VERSION" ]; then
        say "no cluster yet (scripts/pg-local.sh start creates it in .kaos/pg)"
        return 3
    fi
    if is_running; then
        say "running: $(url)"
    else
        say "stopped (data in .kaos/pg/data)"
        return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    url)
        is_running || echo "pg-local: note: the cluster is not running (scripts/pg-local.sh start)" >&2
        url
        ;;
    *)
        echo "usage: $0 start|stop|status|url" >&2
        exit 2
        ;;
esac
