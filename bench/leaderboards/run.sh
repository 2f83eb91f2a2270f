#!/usr/bin/env bash
# bench/leaderboards/run.sh: leaderboard submissions through KaosNet over ENet
# against pgbench running the same upsert on the same PostgreSQL in the same
# run, and the same submissions to a tournament (bench_tn) in that server;
# then the rank index against SQL on boards of 10^4, 10^5 and 10^6 records
# (rank lookup, around-owner, rebuild time, memory per record).
# Prints the loadgen's and the rank bench's result lines and a table;
# asserts nothing.
#
#   bench/leaderboards/run.sh [--quick] [--clients N] [--inflight K] [--conns C]
#                             [--seconds S] [--sizes N,N,N] [--lookups N]
#
# Database and build as bench/storage/run.sh (bench/lib/common.sh). The server runs with C API
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

bench_check_numbers "$clients" "$inflight" "$conns" "$seconds" "$warmup" "$lookups"

say() { echo "run.sh: $*" >&2; }

# --- build, state and cleanup, database ------------------------------------------
bench_build "$BUILD/bench_leaderboard_rank"
bench_pgbench_setup lb "$BUILD/bench_storage_loadgen"

# --- 1. submissions through the server ------------------------------------------------
bench_kaosnet_start "$BUILD/kaosnet" --runtime-path "$HERE/lua" \
    --api-workers "$conns" --rate-control-msgs 0 --rate-control-bytes 1073741824
say "kaosnet: $clients clients x $inflight in flight, $conns API workers, ${seconds} s window"
timeout $((120 + 2 * (warmup + seconds))) "$BUILD/bench_storage_loadgen" --port "$port" \
    --server-key "$key" --clients "$clients" --inflight "$inflight" --keys 100 \
    --warmup "$warmup" --seconds "$seconds" --phases write --board bench \
    --server-pid "$server_pid" ${pg_pid:+--pg-pid "$pg_pid"} \
    2>"$tmp/loadgen.err" | sed 's/^result /result side=kaosnet /' >>"$results" || true
sed 's/^/  /' "$tmp/loadgen.err" >&2
grep -q 'side=kaosnet' "$results" || { cat "$tmp/server.err" >&2; say "the load generator failed"; exit 1; }
say "kaosnet: the same to a tournament (bench_tn), same server"
timeout $((120 + 2 * (warmup + seconds))) "$BUILD/bench_storage_loadgen" --port "$port" \
    --server-key "$key" --clients "$clients" --inflight "$inflight" --keys 100 \
    --warmup "$warmup" --seconds "$seconds" --phases write --board bench_tn --tournament \
    --server-pid "$server_pid" ${pg_pid:+--pg-pid "$pg_pid"} \
    2>"$tmp/loadgen.err" | sed 's/^result /result side=tournament /' >>"$results" || true
sed 's/^/  /' "$tmp/loadgen.err" >&2
bench_stop_server

# --- 2. pgbench, the same upsert, same cluster -------------------------------------------
say "pgbench: upsert.sql, $conns clients, $clients owners, ${seconds} s"
bench_pgbench write "$HERE/upsert.sql" "$conns" "$seconds" -D owners="$clients"

# --- 3. the rank index against SQL ---------------------------------------------------------
say "rank index vs SQL: sizes $sizes, $lookups lookups each"
"$BUILD/bench_leaderboard_rank" --database-url "$run_url" --sizes "$sizes" --lookups "$lookups" \
    | sed 's/^result /result side=rank /' >>"$results"

cat "$results"
awk "$BENCH_AWK_LIB"'
{
    kv($0, r)
    if (r["side"] == "kaosnet") { k = r["ops_per_s"]; kp50 = r["lat_p50_us"] / 1000; kp99 = r["lat_p99_us"] / 1000; kerr = r["errors"] + r["other_errors"] }
    else if (r["side"] == "tournament") { t = r["ops_per_s"]; tp50 = r["lat_p50_us"] / 1000; tp99 = r["lat_p99_us"] / 1000; terr = r["errors"] + r["other_errors"] }
    else if (r["side"] == "pgbench") { p = r["ops_per_s"]; plat = r["lat_avg_ms"] }
    else if (r["side"] == "rank") rows[++nr] = $0
}
END {
    printf "submissions: kaosnet %.0f/s (p50 %.2f ms, p99 %.2f ms, errors %d) vs pgbench %.0f/s (avg %.2f ms): ratio %.2f\n", k, kp50, kp99, kerr, p, plat, (p > 0 ? k / p : 0)
    printf "tournament submissions: %.0f/s (p50 %.2f ms, p99 %.2f ms, errors %d): %.2f of the board'"'"'s\n", t, tp50, tp99, terr, (k > 0 ? t / k : 0)
    fmt = "%9s %10s %8s %8s %12s %12s %7s %13s %13s %7s\n"
    printf fmt, "records", "rebuild_s", "idx_B/r", "rss_B/r", "rank idx p50", "rank sql p50", "ratio", "around idx p50", "around sql p50", "ratio"
    for (i = 1; i <= nr; i++) {
        kv(rows[i], r)
        printf "%9d %10.3f %8.0f %8.0f %10.2fus %10.0fus %7.0f %11.0fus %11.0fus %7.1f\n", r["records"], r["rebuild_s"], r["index_bytes_per_record"], r["rss_bytes_per_record"], r["rank_index_p50_us"], r["rank_sql_p50_us"], r["rank_sql_p50_us"] / r["rank_index_p50_us"], r["around_index_p50_us"], r["around_sql_p50_us"], r["around_sql_p50_us"] / r["around_index_p50_us"]
    }
}' "$results"
