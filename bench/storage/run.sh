#!/usr/bin/env bash
# bench/storage/run.sh: storage writes and reads through KaosNet over ENet,
# against pgbench running the same SQL on the same PostgreSQL in the same
# run. Prints one table; asserts nothing.
#
#   bench/storage/run.sh [--quick] [--clients N] [--inflight K] [--conns C] [--seconds S]
#                        [--warmup S] [--keys N] [--value-bytes B] [--runtime DIR] [--raw FILE]
#
# Builds build/release if a binary is missing or older than the sources,
# starts the project-local PostgreSQL (scripts/pg-local.sh; stopped again at
# the end if this run started it) unless KAOS_DATABASE_URL is set, and makes a
# fresh database for the run (dropped at the end). Then:
#   1. `kaosnet serve` with C API workers (so C Postgres connections), the
#      per-connection rate limits off and no Lua modules (--runtime DIR loads
#      DIR's, e.g. lua-examples with its storage_write before hook);
#      bench_storage_loadgen drives N SDK
#      clients with K requests in flight each: single-object unconditional
#      writes, then single-object reads of existing objects;
#   2. the server stopped, pgbench with C clients runs insert.sql then
#      select.sql (the server's statements, prepared) for the same time.
# CPU of the server, of PostgreSQL (postmaster and backends) and of the
# client side is sampled over each window (local PostgreSQL only).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release
HERE=bench/storage

clients=16
inflight=4
conns=4
seconds=10
warmup=2
keys=100
value_bytes=100
raw=""
runtime=""

usage() {
    sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) seconds=4; warmup=1 ;;
        --clients) clients="${2:?}"; shift ;;
        --inflight) inflight="${2:?}"; shift ;;
        --conns) conns="${2:?}"; shift ;;
        --seconds) seconds="${2:?}"; shift ;;
        --warmup) warmup="${2:?}"; shift ;;
        --keys) keys="${2:?}"; shift ;;
        --value-bytes) value_bytes="${2:?}"; shift ;;
        --raw) raw="${2:?}"; shift ;;
        --runtime) runtime="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
for v in "$clients" "$inflight" "$conns" "$seconds" "$warmup" "$keys" "$value_bytes"; do
    case "$v" in '' | *[!0-9]*) echo "run.sh: '$v' is not a whole number" >&2; exit 2 ;; esac
done

say() { echo "run.sh: $*" >&2; }

# --- build ------------------------------------------------------------------
bench_build "$BUILD/kaosnet" "$BUILD/bench_storage_loadgen"
command -v pgbench >/dev/null || { say "pgbench is not installed (postgresql-contrib / postgresql-client)"; exit 1; }

# --- state and cleanup -------------------------------------------------------
bench_workdir storage

# --- database ------------------------------------------------------------------
bench_db_open kaos_bench_storage
pg_pid=""
if [ -z "${KAOS_DATABASE_URL:-}" ]; then
    pg_pid="$(head -n 1 .kaos/pg/data/postmaster.pid 2>/dev/null || true)"
else
    say "KAOS_DATABASE_URL is set: PostgreSQL CPU is not measured"
fi

pg_cpu() {
    if [ -n "$pg_pid" ]; then "$BUILD/bench_storage_loadgen" --pg-cpu "$pg_pid"; else echo -1; fi
}

# --- 1. through the server ------------------------------------------------------
mkdir -p "$tmp/data" "$tmp/runtime"
"$BUILD/kaosnet" serve --database-url "$run_url" --data-dir "$tmp/data" \
    --bind 127.0.0.1 --port 0 --http-port 0 --migrate --log-level warn \
    --runtime-path "${runtime:-$tmp/runtime}" \
    --api-workers "$conns" --rate-control-msgs 0 --rate-control-bytes 1073741824 \
    >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
port=""
key=""
for _ in $(seq 300); do
    port="$(sed -n 's/^kaosnet ready udp [0-9.]*:\([0-9][0-9]*\).*/\1/p' "$tmp/server.out")"
    key="$(sed -n 's/^kaosnet ready udp .* key \([0-9a-f]*\).*/\1/p' "$tmp/server.out")"
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    cat "$tmp/server.err" >&2
    say "kaosnet did not become ready"
    exit 1
fi

say "kaosnet: $clients clients x $inflight in flight, $conns API workers; writes then reads," \
    "${warmup} s warm-up, ${seconds} s window each"
timeout $((120 + 2 * (warmup + seconds))) "$BUILD/bench_storage_loadgen" --port "$port" \
    --server-key "$key" --clients "$clients" --inflight "$inflight" --keys "$keys" \
    --value-bytes "$value_bytes" --warmup "$warmup" --seconds "$seconds" \
    --server-pid "$server_pid" ${pg_pid:+--pg-pid "$pg_pid"} \
    2>"$tmp/loadgen.err" | sed 's/^result /result side=kaosnet /' >>"$results" || true
sed 's/^/  /' "$tmp/loadgen.err" >&2
grep -q 'phase=read' "$results" || { cat "$tmp/server.err" >&2; say "the load generator failed"; exit 1; }
bench_stop_server

# --- 2. pgbench, same statements, same cluster -----------------------------------
uid="$(psql "$run_url" -X -tAc "SELECT user_id FROM storage WHERE collection = 'bench' LIMIT 1")"
value="$(printf '{"n":1,"pad":"%s"}' "$(head -c $((value_bytes - 16)) /dev/zero | tr '\0' x)")"
TIMEFORMAT='%U %S'
for phase in write read; do
    script="$HERE/insert.sql"
    [ "$phase" = read ] && script="$HERE/select.sql"
    say "pgbench: $phase ($(basename "$script")), $conns clients, ${seconds} s"
    pg0="$(pg_cpu)"
    { time pgbench -n -M prepared -f "$script" -c "$conns" -j 2 -T "$seconds" \
        -D uid="$uid" -D keys="$keys" -D value="$value" "$run_url" >"$tmp/pgbench.out" \
        2>"$tmp/pgbench.err"; } 2>"$tmp/pgbench.time" || { cat "$tmp/pgbench.err" >&2; exit 1; }
    sleep 0.3 # the postmaster reaps the backends, so their CPU lands in its cutime
    pg1="$(pg_cpu)"
    tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$tmp/pgbench.out")"
    lat="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$tmp/pgbench.out")"
    bench_cpu="$(awk '{print $1 + $2}' "$tmp/pgbench.time")"
    echo "result side=pgbench phase=$phase status=ok ops_per_s=$tps lat_avg_ms=$lat" \
        "pg_cpu_s=$(awk -v a="$pg0" -v b="$pg1" 'BEGIN{print (a < 0 ? -1 : b - a)}')" \
        "lg_cpu_s=$bench_cpu window_s=$seconds" >>"$results"
done
[ -n "$raw" ] && cp "$results" "$raw"

# --- table ----------------------------------------------------------------------
awk -v cores="$(nproc)" -v clients="$clients" -v inflight="$inflight" -v conns="$conns" \
    -v seconds="$seconds" -v vb="$value_bytes" -v runtime="${runtime:-none}" '
function kv(line, a,   n, i, f, p) {
    delete a
    n = split(line, f, " ")
    for (i = 1; i <= n; i++) { p = index(f[i], "="); if (p) a[substr(f[i], 1, p - 1)] = substr(f[i], p + 1) }
}
function pct(cpu, w) { return cpu < 0 ? "?" : sprintf("%.0f%%", 100 * cpu / w) }
BEGIN {
    printf "storage: single-object writes (unconditional) and reads of existing objects, ~%d-byte values (loopback, %d cores)\n", vb, cores
    printf "kaosnet: %d SDK clients x %d in flight over ENet, %d API workers, Lua modules: %s; pgbench: -c %d -j 2 -M prepared, same SQL; %s s windows\n", clients, inflight, conns, runtime, conns, seconds
    fmt = "%-8s %-6s %10s %12s %12s %9s %8s %8s\n"
    printf fmt, "side", "phase", "ops/s", "lat", "server_cpu", "pg_cpu", "client", "errors"
}
{
    kv($0, r)
    s = r["side"]; ph = r["phase"]
    ops[s, ph] = r["ops_per_s"]
    lat = s == "kaosnet" ? sprintf("p50 %.2f ms", r["lat_p50_us"] / 1000) : sprintf("avg %.2f ms", r["lat_avg_ms"])
    srv = s == "kaosnet" ? pct(r["srv_cpu_s"], r["window_s"]) : "-"
    err = s == "kaosnet" ? r["errors"] + r["other_errors"] : "-"
    printf fmt, s, ph, sprintf("%.0f", r["ops_per_s"]), lat, srv, pct(r["pg_cpu_s"], r["window_s"]), \
        pct(r["lg_cpu_s"], r["window_s"]), err
    if (s == "kaosnet") p99[ph] = r["lat_p99_us"] / 1000
}
END {
    for (i = 1; i <= 2; i++) {
        ph = i == 1 ? "write" : "read"
        if (("pgbench", ph) in ops && ops["pgbench", ph] > 0)
            printf "ratio kaosnet/pgbench %s: %.2f (%.0f vs %.0f per s; kaosnet p99 %.2f ms)\n", ph, \
                ops["kaosnet", ph] / ops["pgbench", ph], ops["kaosnet", ph], ops["pgbench", ph], p99[ph]
    }
    print "cpu columns: share of one core over the window (user+system). pg_cpu: postmaster, backends and reaped children."
    print "client: the load generator (kaosnet) or pgbench itself."
}' "$results"
