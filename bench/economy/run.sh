#!/usr/bin/env bash
# bench/economy/run.sh: wallet updates per second through the economy
# service, with the ledger on and off, against pgbench running the same
# statement on the same PostgreSQL in the same run. Prints one table;
# asserts nothing.
#
#   bench/economy/run.sh [--quick] [--threads T] [--seconds S] [--warmup S] [--async-commit]
#                        [--raw FILE]
#
# Builds build/release if a binary is missing or older than the sources,
# starts the project-local PostgreSQL (scripts/pg-local.sh) unless
# KAOS_DATABASE_URL is set, makes a fresh database (dropped at the end) and
# migrates it. Then, for the ledger off and on:
#   1. bench_economy: T threads, each with its own connection and its own
#      user, calling kn_wallets_update back to back (what kaos.wallet_update
#      runs on an API worker, without the RPC around it);
#   2. pgbench -c T -M prepared running wallet.sql, the service's statement,
#      each client on its own user.
# PostgreSQL's CPU is sampled over each window (local PostgreSQL only).
# --async-commit runs both sides with synchronous_commit=off (PGOPTIONS):
# commits no longer wait for the WAL flush, so the figures show what the
# statement and the service cost rather than the disk's flush rate (and an
# acknowledged update may then be lost in a crash of PostgreSQL).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release
HERE=bench/economy

threads=4
seconds=10
warmup=2
raw=""
commit=sync

usage() {
    sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) seconds=4; warmup=1 ;;
        --threads) threads="${2:?}"; shift ;;
        --seconds) seconds="${2:?}"; shift ;;
        --warmup) warmup="${2:?}"; shift ;;
        --raw) raw="${2:?}"; shift ;;
        --async-commit) commit=async; export PGOPTIONS="-c synchronous_commit=off" ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
bench_check_numbers "$threads" "$seconds" "$warmup"

bench_pgbench_setup economy "$BUILD/bench_economy"
"$BUILD/kaosnet" migrate up --database-url "$run_url" --log-level warn >/dev/null
psql "$run_url" -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO users (id, username)
  SELECT ('b0000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'bench' || i
  FROM generate_series(0, $threads - 1) AS i" >/dev/null

TIMEFORMAT='%U %S'
for ledger in off on; do
    flag=false
    [ "$ledger" = on ] && flag=true
    bench_say "service: $threads threads, ledger $ledger, ${warmup} s warm-up, ${seconds} s window"
    pg0="$(pg_cpu)"
    { time "$BUILD/bench_economy" --url "$run_url" --threads "$threads" --seconds "$seconds" \
        --warmup "$warmup" --ledger "$([ "$ledger" = on ] && echo 1 || echo 0)" \
        >"$tmp/service.out"; } 2>"$tmp/service.time"
    sleep 0.3 # the postmaster reaps the backends, so their CPU lands in its cutime
    pg1="$(pg_cpu)"
    echo "$(cat "$tmp/service.out")" \
        "pg_cpu_s=$(awk -v a="$pg0" -v b="$pg1" 'BEGIN{print (a < 0 ? -1 : b - a)}')" \
        "lg_cpu_s=$(awk '{print $1 + $2}' "$tmp/service.time")" >>"$results"
    bench_say "pgbench: wallet.sql, ledger $ledger, $threads clients, ${seconds} s"
    bench_pgbench "ledger-$ledger" "$HERE/wallet.sql" "$threads" "$seconds" -D ledger="$flag"
done
entries="$(psql "$run_url" -X -tAc "SELECT count(*) FROM wallet_ledger")"
[ -n "$raw" ] && cp "$results" "$raw"

awk -v cores="$(nproc)" -v threads="$threads" -v seconds="$seconds" -v entries="$entries" \
    -v commit="$commit" "$BENCH_AWK_LIB"'
BEGIN {
    printf "economy: one wallet update (2 currencies) per call, each thread/client on its own user, %s commit (loopback, %d cores)\n", commit == "sync" ? "durable" : "asynchronous", cores
    printf "service: %d threads x kn_wallets_update, own connection each; pgbench: -c %d -j 2 -M prepared, same statement; %s s windows\n", threads, threads, seconds
    fmt = "%-8s %-7s %10s %14s %8s %8s %7s\n"
    printf fmt, "side", "ledger", "updates/s", "lat", "pg_cpu", "client", "errors"
}
{
    kv($0, r)
    s = r["side"]; l = substr(r["phase"], 8)
    ops[s, l] = r["ops_per_s"]
    printf fmt, s, l, sprintf("%.0f", r["ops_per_s"]), sprintf("avg %.3f ms", r["lat_avg_ms"]), \
        pct(r["pg_cpu_s"], seconds), pct(r["lg_cpu_s"], seconds), s == "service" ? r["errors"] : "-"
}
END {
    for (i = 0; i < 2; i++) {
        l = i ? "on" : "off"
        if (("pgbench", l) in ops && ops["pgbench", l] > 0)
            printf "ratio service/pgbench, ledger %s: %.2f\n", l, ops["service", l] / ops["pgbench", l]
    }
    if (("service", "off") in ops && ops["service", "off"] > 0)
        printf "ledger cost (service): %.0f%% fewer updates/s\n", 100 * (1 - ops["service", "on"] / ops["service", "off"])
    printf "ledger entries written in the run: %s\n", entries
    print "cpu columns: share of one core over the window (user+system); the service side includes its warm-up."
}' "$results"
