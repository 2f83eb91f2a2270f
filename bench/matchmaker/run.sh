#!/usr/bin/env bash
# bench/matchmaker/run.sh: the time from a ticket to its MatchmakerMatched
# under a steady stream of tickets through a real KaosNet server over ENet,
# at a low rate (the baseline) and at the target rate in the same run, with
# the server's own pass time beside them. Prints one table; asserts nothing.
#
#   bench/matchmaker/run.sh [--quick] [--rates LIST] [--interval MS] [--clients N]
#                           [--seconds S] [--warmup S] [--raw FILE]
#
# Builds build/release if a binary is missing or older than the sources,
# starts the project-local PostgreSQL (scripts/pg-local.sh) unless
# KAOS_DATABASE_URL is set, and makes a fresh database for the run (dropped
# at the end). Then `kaosnet serve` with --matchmaker-interval-ms MS (1000:
# the fast mode; Nakama's and KaosNet's default is 15000) and no Lua modules
# (no matched hook: every group gets a relay token), and
# bench_matchmaker_stream (bench/matchmaker/stream.c) logs in N clients and
# runs one phase per rate: --warmup, then a --seconds window of tickets.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release

rates=25,500
interval=1000
clients=900
seconds=20
warmup=5
raw=""

usage() {
    sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) seconds=6; warmup=3 ;;
        --rates) rates="${2:?}"; shift ;;
        --interval) interval="${2:?}"; shift ;;
        --clients) clients="${2:?}"; shift ;;
        --seconds) seconds="${2:?}"; shift ;;
        --warmup) warmup="${2:?}"; shift ;;
        --raw) raw="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
bench_check_numbers "$interval" "$clients" "$seconds" "$warmup" ${rates//,/ }

bench_build "$BUILD/kaosnet" "$BUILD/bench_matchmaker_stream"
bench_workdir matchmaker
bench_db_open kaos_bench_matchmaker
mkdir -p "$tmp/runtime"
bench_kaosnet_start "$BUILD/kaosnet" --runtime-path "$tmp/runtime" \
    --matchmaker-interval-ms "$interval" --rate-control-msgs 0 --rate-control-bytes 1073741824 \
    --max-connections $((clients + 64)) --max-connections-per-address 0
bench_say "kaosnet: matchmaker every $interval ms; $clients clients; rates $rates tickets/s;" \
    "${warmup} s warm-up, ${seconds} s window each"
timeout $((300 + 3 * (warmup + seconds + 30))) "$BUILD/bench_matchmaker_stream" --port "$port" \
    --server-key "$key" --http-port "$http_port" --clients "$clients" --phases "$rates" \
    --warmup "$warmup" --seconds "$seconds" --drain $((interval * 12 / 1000 + 5)) \
    --server-pid "$server_pid" 2>"$tmp/loadgen.err" >>"$results" || true
sed 's/^/  /' "$tmp/loadgen.err" >&2
grep -q '^result ' "$results" || { cat "$tmp/server.err" >&2; bench_say "the load generator failed"; exit 1; }
bench_stop_server
[ -n "$raw" ] && cp "$results" "$raw"

awk -v cores="$(nproc)" -v interval="$interval" -v clients="$clients" -v seconds="$seconds" "$BENCH_AWK_LIB"'
BEGIN {
    printf "matchmaker: ticket -> MatchmakerMatched through kaosnet over ENet (loopback, %d cores)\n", cores
    printf "duels (2-2), 4 regions, skill 0-3000 +-200 widening 100/pass to 600; pass every %d ms; %d clients, %s s windows\n", interval, clients, seconds
    fmt = "%10s %8s %8s %7s %9s %9s %9s %9s %7s %10s %10s %9s %7s\n"
    printf fmt, "tickets/s", "sent", "matched", "groups", "p50 ms", "p90 ms", "p99 ms", "max ms", "passes", "pass mean", "server_cpu", "unmatched", "errors"
}
{
    kv($0, r)
    printf fmt, r["phase"], r["sent"], r["matched"], r["groups"], sprintf("%.1f", r["lat_p50_us"] / 1000), \
        sprintf("%.1f", r["lat_p90_us"] / 1000), sprintf("%.1f", r["lat_p99_us"] / 1000), sprintf("%.1f", r["lat_max_us"] / 1000), \
        r["passes"], sprintf("%.2f ms", r["pass_mean_us"] / 1000), pct(r["srv_cpu_s"], r["window_s"]), \
        r["unmatched"], r["errors"] + r["skipped"] + r["dead"]
}
END {
    print "latency: from MatchmakerAdd sent to MatchmakerMatched received, tickets sent in the window (their match may come later)."
    print "groups: groups the server formed in the window (its /metrics); pass mean: the server'"'"'s time per pass in the window."
    print "unmatched: window tickets still waiting after a drain of 12 intervals (no partner within their widest window)."
    print "errors: refused tickets, schedule slots with no free client, dead clients."
}' "$results"
