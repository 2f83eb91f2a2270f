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
#   bench_check_numbers V...
#                         exits with a message unless every V is a whole number
#   bench_wait_ready PID NAME [PORT_SED]
#                         waits up to 30 s for the ready line in
#                         $tmp/server.out of the server PID started, and sets
#                         port (PORT_SED, a sed -n program; by default
#                         kaosnet's "kaosnet ready udp ADDR:PORT ..."), key
#                         and http_port (kaosnet's; else empty). When PID
#                         exits or the time runs out it shows
#                         $tmp/server.err, says NAME did not become ready and
#                         returns 1
#   bench_kaosnet_start BIN ARGS...
#                         starts `BIN serve` (kaosnet) in the background on
#                         127.0.0.1 with free UDP and HTTP ports, the run's
#                         database (migrated), a data dir in tmp and ARGS;
#                         waits for it (bench_wait_ready) and sets server_pid,
#                         port and key; exits the script when it fails
#   bench_pg_watch BIN    sets pg_pid, the local PostgreSQL's postmaster (""
#                         with KAOS_DATABASE_URL, said on stderr), for pg_cpu:
#                         PostgreSQL's CPU seconds so far (postmaster,
#                         backends and reaped children), from `BIN --pg-cpu
#                         PID`, or -1 when not measured
#   bench_pgbench_setup NAME LOADGEN
#                         what a benchmark against pgbench starts with: builds
#                         (bench_build of build/release/kaosnet and LOADGEN),
#                         checks that pgbench is there, bench_workdir NAME,
#                         bench_db_open kaos_bench_NAME, bench_pg_watch LOADGEN
#   bench_pgbench PHASE SCRIPT CONNS SECONDS [PGBENCH ARGS...]
#                         pgbench -n -M prepared -f SCRIPT -c CONNS -j 2
#                         -T SECONDS on the run's database; appends its line
#                         "result side=pgbench phase=PHASE status=ok
#                         ops_per_s= lat_avg_ms= pg_cpu_s= lg_cpu_s=
#                         machine_cpu_s= window_s=" to $results (pg_cpu as
#                         above; machine_cpu_s as bench_machine_cpu)
#   bench_machine_cpu     CPU seconds the whole machine has been busy (all
#                         CPUs; /proc/stat user, nice, system, irq, softirq)

admin_url="" dbname="" run_url="" bench_pg_started=0

# awk functions for the tables, to put before a program: kv(line, a) splits
# a "result k=v ..." line into a[k] = v; pct(cpu_s, window_s) is CPU seconds
# as a share of one core ("?" when not measured).
BENCH_AWK_LIB='
function kv(line, a,   n, i, f, p) {
    delete a
    n = split(line, f, " ")
    for (i = 1; i <= n; i++) { p = index(f[i], "="); if (p) a[substr(f[i], 1, p - 1)] = substr(f[i], p + 1) }
}
function pct(cpu, w) { return cpu < 0 ? "?" : sprintf("%.0f%%", 100 * cpu / w) }
'

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

bench_check_numbers() {
    local v
    for v in "$@"; do
        case "$v" in '' | *[!0-9]*) bench_say "'$v' is not a whole number"; exit 2 ;; esac
    done
}

bench_wait_ready() {
    local pid="$1" name="$2"
    local pattern="${3:-s/^kaosnet ready udp [0-9.]*:\([0-9][0-9]*\).*/\1/p}"
    port="" key="" http_port=""
    for _ in $(seq 300); do
        port="$(sed -n "$pattern" "$tmp/server.out")"
        # KaosNet's ready line names the key clients pin and the HTTP port.
        key="$(sed -n 's/^kaosnet ready udp .* key \([0-9a-f]*\).*/\1/p' "$tmp/server.out")"
        http_port="$(sed -n 's/^kaosnet ready .* http \([0-9][0-9]*\).*/\1/p' "$tmp/server.out")"
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$tmp/server.err" >&2
    bench_say "$name did not become ready"
    return 1
}

bench_kaosnet_start() {
    local bin="$1"
    shift
    mkdir -p "$tmp/data"
    "$bin" serve --database-url "$run_url" --data-dir "$tmp/data" \
        --bind 127.0.0.1 --port 0 --http-port 0 --migrate --log-level warn "$@" \
        >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    bench_wait_ready "$server_pid" kaosnet || exit 1
}

bench_pg_cpu_bin="" pg_pid=""

bench_pg_watch() {
    bench_pg_cpu_bin="$1"
    pg_pid=""
    if [ -z "${KAOS_DATABASE_URL:-}" ]; then
        pg_pid="$(head -n 1 .kaos/pg/data/postmaster.pid 2>/dev/null || true)"
    else
        bench_say "KAOS_DATABASE_URL is set: PostgreSQL CPU is not measured"
    fi
}

pg_cpu() {
    if [ -n "$pg_pid" ]; then "$bench_pg_cpu_bin" --pg-cpu "$pg_pid"; else echo -1; fi
}

bench_pgbench_setup() {
    bench_build build/release/kaosnet "$2"
    command -v pgbench >/dev/null \
        || { bench_say "pgbench is not installed (postgresql-contrib / postgresql-client)"; exit 1; }
    bench_workdir "$1"
    bench_db_open "kaos_bench_$1"
    bench_pg_watch "$2"
}

bench_machine_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8) / hz; exit }' /proc/stat
}

bench_pgbench() {
    local phase="$1" script="$2" conns="$3" seconds="$4" pg0 pg1 all0 all1 tps lat cpu
    shift 4
    local TIMEFORMAT='%U %S'
    pg0="$(pg_cpu)"
    all0="$(bench_machine_cpu)"
    { time pgbench -n -M prepared -f "$script" -c "$conns" -j 2 -T "$seconds" "$@" "$run_url" \
        >"$tmp/pgbench.out" 2>"$tmp/pgbench.err"; } 2>"$tmp/pgbench.time" \
        || { cat "$tmp/pgbench.err" >&2; exit 1; }
    all1="$(bench_machine_cpu)"
    sleep 0.3 # the postmaster reaps the backends, so their CPU lands in its cutime
    pg1="$(pg_cpu)"
    tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$tmp/pgbench.out")"
    lat="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$tmp/pgbench.out")"
    cpu="$(awk '{print $1 + $2}' "$tmp/pgbench.time")"
    echo "result side=pgbench phase=$phase status=ok ops_per_s=$tps lat_avg_ms=$lat" \
        "pg_cpu_s=$(awk -v a="$pg0" -v b="$pg1" 'BEGIN{print (a < 0 ? -1 : b - a)}')" \
        "lg_cpu_s=$cpu machine_cpu_s=$(awk -v a="$all0" -v b="$all1" 'BEGIN{print b - a}')" \
        "window_s=$seconds" >>"$results"
}
