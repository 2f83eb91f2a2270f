#!/usr/bin/env bash
# bench/leaderboards/run.sh: leaderboard submissions through KaosNet over ENet
# against pgbench running the same upsert on the same PostgreSQL in the same
# run; then the rank index against SQL on boards of 10^4, 10^5 and 10^6
# records (rank lookup, around-owner, rebuild time, memory per record).
# Prints the loadgen's and the rank bench's result lines and a table;
# asserts nothing.
#
#   bench/leaderboards/run.sh [--quick] [--clients N] [--inflight K] [--conns C]
#                             [--seconds S] [--sizes N,N,N] [--lookups N]
#
# Database and build as bench/storage/run.sh. The server runs with C API
# workers, the rate limits off and bench/leaderboards/lua (one "set" board);
# bench_storage_loadgen --board drives N SDK clients (one record each) with
# K writes in flight; pgbench runs upsert.sql with C clients over as many
# owners.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release
HERE=bench/leaderboards

clients=16
inflight=4
conns=4
seconds=10
warmup=2
sizes=10000,100000,1000000
lookups=1000

usage() {
    sed -n '9,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) seconds=4; warmup=1; sizes=10000,100000; lookups=300 ;;
        --clients) clients="${2:?}"; shift ;;
        --inflight) inflight="${2:?}"; shift ;;
        --conns) conns="${2:?}"; shift ;;
        --seconds) seconds="${2:?}"; shift ;;
        --sizes) sizes="${2:?}"; shift ;;
        --lookups) lookups="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done

say() { echo "run.sh: $*" >&2; }

bench_build "$BUILD/kaosnet" "$BUILD/bench_storage_loadgen" "$BUILD/bench_leaderboard_rank"
command -v pgbench >/dev/null || { say "pgbench is not installed"; exit 1; }
bench_workdir leaderboards
bench_db_open kaos_bench_lb
pg_pid=""
[ -z "${KAOS_DATABASE_URL:-}" ] && pg_pid="$(head -n 1 .kaos/pg/data/postmaster.pid 2>/dev/null || true)"
pg_cpu() {
    if [ -n "$pg_pid" ]; then "$BUILD/bench_storage_loadgen" --pg-cpu "$pg_pid"; else echo -1; fi
}

# --- 1. submissions through the server ------------------------------------------------
mkdir -p "$tmp/data"
"$BUILD/kaosnet" serve --database-url "$run_url" --data-dir "$tmp/data" \
    --bind 127.0.0.1 --port 0 --http-port 0 --migrate --log-level warn \
    --runtime-path "$HERE/lua" \
    --api-workers "$conns" --rate-control-msgs 0 --rate-control-bytes 1073741824 \
    >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
port="" key=""
for _ in $(seq 300); do
    port="$(sed -n 's/^kaosnet ready udp [0-9.]*:\([0-9][0-9]*\).*/\1/p' "$tmp/server.out")"
    key="$(sed -n 's/^kaosnet ready udp .* key \([0-9a-f]*\).*/\1/p' "$tmp/server.out")"
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/server.err" >&2; say "kaosnet did not become ready"; exit 1; }
say "kaosnet: $clients clients x $inflight in flight, $conns API workers, ${seconds} s window"
timeout $((120 + 2 * (warmup + seconds))) "$BUILD/bench_storage_loadgen" --port "$port" \
    --server-key "$key" --clients "$clients" --inflight "$inflight" --keys 100 \
    --warmup "$warmup" --seconds "$seconds" --phases write --board bench \
    --server-pid "$server_pid" ${pg_pid:+--pg-pid "$pg_pid"} \
    2>"$tmp/loadgen.err" | sed 's/^result /result side=kaosnet /' >>"$results" || true
sed 's/^/  /' "$tmp/loadgen.err" >&2
grep -q 'side=kaosnet' "$results" || { cat "$tmp/server.err" >&2; say "the load generator failed"; exit 1; }
bench_stop_server

# --- 2. pgbench, the same upsert, same cluster -------------------------------------------
say "pgbench: upsert.sql, $conns clients, $clients owners, ${seconds} s"
TIMEFORMAT='%U %S'
pg0="$(pg_cpu)"
{ time pgbench -n -M prepared -f "$HERE/upsert.sql" -c "$conns" -j 2 -T "$seconds" \
    -D owners="$clients" "$run_url" >"$tmp/pgbench.out" 2>"$tmp/pgbench.err"; } \
    2>"$tmp/pgbench.time" || { cat "$tmp/pgbench.err" >&2; exit 1; }
sleep 0.3
pg1="$(pg_cpu)"
tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$tmp/pgbench.out")"
lat="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$tmp/pgbench.out")"
echo "result side=pgbench phase=write ops_per_s=$tps lat_avg_ms=$lat" \
    "pg_cpu_s=$(awk -v a="$pg0" -v b="$pg1" 'BEGIN{print (a < 0 ? -1 : b - a)}') window_s=$seconds" \
    >>"$results"

# --- 3. the rank index against SQL ---------------------------------------------------------
say "rank index vs SQL: sizes $sizes, $lookups lookups each"
"$BUILD/bench_leaderboard_rank" --database-url "$run_url" --sizes "$sizes" --lookups "$lookups" \
    | sed 's/^result /result side=rank /' >>"$results"

cat "$results"
awk '
function kv(line, a,   n, i, f, p) {
    delete a
    n = split(line, f, " ")
    for (i = 1; i <= n; i++) { p = index(f[i], "="); if (p) a[substr(f[i], 1, p - 1)] = substr(f[i], p + 1) }
}
{
    kv($0, r)
    if (r["side"] == "kaosnet") { k = r["ops_per_s"]; kp50 = r["lat_p50_us"] / 1000; kp99 = r["lat_p99_us"] / 1000; kerr = r["errors"] + r["other_errors"] }
    else if (r["side"] == "pgbench") { p = r["ops_per_s"]; plat = r["lat_avg_ms"] }
    else if (r["side"] == "rank") rows[++nr] = $0
}
END {
    printf "submissions: kaosnet %.0f/s (p50 %.2f ms, p99 %.2f ms, errors %d) vs pgbench %.0f/s (avg %.2f ms): ratio %.2f\n", k, kp50, kp99, kerr, p, plat, (p > 0 ? k / p : 0)
    fmt = "%9s %10s %8s %8s %12s %12s %7s %13s %13s %7s\n"
    printf fmt, "records", "rebuild_s", "idx_B/r", "rss_B/r", "rank idx p50", "rank sql p50", "ratio", "around idx p50", "around sql p50", "ratio"
    for (i = 1; i <= nr; i++) {
        kv(rows[i], r)
        printf "%9d %10.3f %8.0f %8.0f %10.2fus %10.0fus %7.0f %11.0fus %11.0fus %7.1f\n", r["records"], r["rebuild_s"], r["index_bytes_per_record"], r["rss_bytes_per_record"], r["rank_index_p50_us"], r["rank_sql_p50_us"], r["rank_sql_p50_us"] / r["rank_index_p50_us"], r["around_index_p50_us"], r["around_sql_p50_us"], r["around_sql_p50_us"] / r["around_index_p50_us"]
    }
}' "$results"
