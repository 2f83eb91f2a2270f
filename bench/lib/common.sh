# bench/lib/common.sh: what every bench/*/run.sh needs around its workload —
# a fresh database on the project-local PostgreSQL (or KAOS_DATABASE_URL),
# dropped again at the end, and stopping a background process for sure.
# Source it from the repository root (the scripts cd there first).
#
#   bench_db_open NAME    sets admin_url, dbname (NAME_<pid>) and run_url;
#                         starts the local PostgreSQL unless KAOS_DATABASE_URL
#                         is set, and remembers whether it started it
#   bench_db_close        drops the database; stops PostgreSQL if bench_db_open
#                         started it (call from the script's EXIT trap)
#   bench_stop_pid PID    TERM, up to 15 s, then KILL; reaps it
#   bench_workdir NAME    tmp (a fresh directory), results (an empty file in it)
#                         and server_pid=""; on exit the server is stopped
#                         (bench_stop_server), the database closed, tmp removed
#   bench_build BIN...    builds build/release (scripts/build.sh) when a BIN is
#                         missing or a source is newer than one of them

admin_url="" dbname="" run_url="" bench_pg_started=0

bench_say() { echo "run.sh: $*" >&2; }

# The URL of the same server with another database name (URI or conninfo).
bench_with_db() {
    local url="$1" db="$2"
    case "$url" in
        postgres://* | postgresql://*)
            local scheme="${url%%://*}" rest="${url#*://}" query=""
            case "$rest" in *\?*) query="?${rest#*\?}"; rest="${rest%%\?*}" ;; esac
            echo "$scheme://${rest%%/*}/$db$query"
            ;;
        *) echo "$url dbname=$db" ;;
    esac
}

bench_db_open() {
    if [ -z "${KAOS_DATABASE_URL:-}" ]; then
        bash scripts/pg-local.sh status >/dev/null 2>&1 || bench_pg_started=1
        bash scripts/pg-local.sh start >&2
        admin_url="$(bash scripts/pg-local.sh url)"
    else
        admin_url="$KAOS_DATABASE_URL"
    fi
    dbname="${1}_$$"
    psql "$admin_url" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $dbname" >/dev/null
    run_url="$(bench_with_db "$admin_url" "$dbname")"
}

bench_db_close() {
    if [ -n "$dbname" ]; then
        psql "$admin_url" -X -q -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" >/dev/null 2>&1 \
            || bench_say "could not drop database $dbname"
        dbname=""
    fi
    if [ "$bench_pg_started" -eq 1 ]; then
        bash scripts/pg-local.sh stop >&2 || bench_say "could not stop the local PostgreSQL"
        bench_pg_started=0
    fi
}

bench_stop_server() {
    bench_stop_pid "$server_pid"
    server_pid=""
}

bench_workdir() {
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/kaos-bench-$1.XXXXXX")"
    results="$tmp/results"
    : >"$results"
    server_pid=""
    trap 'bench_stop_server; bench_db_close; rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM
}

bench_build() {
    local b
    for b in "$@"; do
        if [ ! -x "$b" ] || [ -n "$(find src client-sdk bench proto lua-examples CMakeLists.txt \
            -type f -newer "$b" -print -quit)" ]; then
            bash scripts/build.sh release >&2
            return
        fi
    done
}

bench_stop_pid() {
    local pid="$1"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
