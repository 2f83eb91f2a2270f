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
    sed -n '7,9p' "$0" | sed 's/^# \{0,1\}//' >&2
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
for v in "$threads" "$seconds" "$warmup"; do
    case "$v" in '' | *[!0-9]*) echo "run.sh: '$v' is not a whole number" >&2; exit 2 ;; esac
done

bench_build "$BUILD/kaosnet" "$BUILD/bench_economy" "$BUILD/bench_storage_loadgen"
command -v pgbench >/dev/null || { bench_say "pgbench is not installed"; exit 1; }
bench_workdir economy
bench_db_open kaos_bench_economy
pg_pid=""
if [ -z "${KAOS_DATABASE_URL:-}" ]; then
    pg_pid="$(head -n 1 .kaos/pg/data/postmaster.pid 2>/dev/null || true)"
fi
pg_cpu() {
    if [ -n "$pg_pid" ]; then "$BUILD/bench_storage_loadgen" --pg-cpu "$pg_pid"; else echo -1; fi
}

"$BUILD/kaosnet" migrate up --database-url "$run_url" --log-level warn >/dev/null
psql "$run_url" -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO users (id, username)
  SELECT ('b0000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'bench' || i
  FROM generate_series(0, $threads - 1) AS i" >/dev/null

TIMEFORMAT='%U %S'
for ledger in 0 1; do
    flag=false
    [ "$ledger" = 1 ] && flag=true
    bench_say "service: $threads threads, ledger $flag, ${warmup} s warm-up, ${seconds} s window"
    pg0="$(pg_cpu)"
    { time "$BUILD/bench_economy" --url "$run_url" --threads "$threads" --seconds "$seconds" \
        --warmup "$warmup" --ledger "$ledger" >"$tmp/service.out"; } 2>"$tmp/service.time"
    sleep 0.3 # as below: the backends' CPU lands in the postmaster's cutime once reaped
    pg1="$(pg_cpu)"
    echo "$(cat "$tmp/service.out") pg_cpu_s=$(awk -v a="$pg0" -v b="$pg1" 'BEGIN{print (a < 0 ? -1 : b - a)}')" \
        "lg_cpu_s=$(awk '{print $1 + $2}' "$tmp/service.time")" >>"$results"

    bench_say "pgbench: wallet.sql, ledger $flag, $threads clients, ${seconds} s"
    pg0="$(pg_cpu)"
    { time pgbench -n -M prepared -f "$HERE/wallet.sql" -c "$threads" -j 2 -T "$seconds" \
        -D ledger="$flag" "$run_url" >"$tmp/pgbench.out" 2>"$tmp/pgbench.err"; } \
        2>"$tmp/pgbench.time" || { cat "$tmp/pgbench.err" >&2; exit 1; }
    sleep 0.3 # the postmaster reaps the backends, so their CPU lands in its cutime
    pg1="$(pg_cpu)"
    tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$tmp/pgbench.out")"
    lat="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$tmp/pgbench.out")"
    echo "result side=pgbench ledger=$([ "$ledger" = 1 ] && echo on || echo off) ops_per_s=$tps" \
        "lat_avg_ms=$lat pg_cpu_s=$(awk -v a="$pg0" -v b="$pg1" 'BEGIN{print (a < 0 ? -1 : b - a)}')" \
        "lg_cpu_s=$(awk '{print $1 + $2}' "$tmp/pgbench.time") window_s=$seconds" >>"$results"
done
entries="$(psql "$run_url" -X -tAc "SELECT count(*) FROM wallet_ledger")"
[ -n "$raw" ] && cp "$results" "$raw"

awk -v cores="$(nproc)" -v threads="$threads" -v seconds="$seconds" -v entries="$entries" \
    -v commit="$commit" '
function kv(line, a,   n, i, f, p) {
    delete a
    n = split(line, f, " ")
    for (i = 1; i <= n; i++) { p = index(f[i], "="); if (p) a[substr(f[i], 1, p - 1)] = substr(f[i], p + 1) }
}
function pct(cpu, w) { return cpu < 0 ? "?" : sprintf("%.0f%%", 100 * cpu / w) }
BEGIN {
    printf "economy: one wallet update (2 currencies) per call, each thread/client on its own user, %s commit (loopback, %d cores)\n", commit == "sync" ? "durable" : "asynchronous", cores
    printf "service: %d threads x kn_wallets_update, own connection each; pgbench: -c %d -j 2 -M prepared, same statement; %s s windows\n", threads, threads, seconds
    fmt = "%-8s %-7s %10s %14s %8s %8s %7s\n"
    printf fmt, "side", "ledger", "updates/s", "lat", "pg_cpu", "client", "errors"
}
{
    kv($0, r)
    s = r["side"]; l = r["ledger"]
    ops[s, l] = r["ops_per_s"]
    w = r["window_s"] + 0 ? r["window_s"] : seconds
    printf fmt, s, l, sprintf("%.0f", r["ops_per_s"]), sprintf("avg %.3f ms", r["lat_avg_ms"]), \
        pct(r["pg_cpu_s"], w), pct(r["lg_cpu_s"], w + 0), s == "service" ? r["errors"] : "-"
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
    print "cpu columns: share of one core over the window (user+system); client includes warm-up for the service side."
}' "$results"
