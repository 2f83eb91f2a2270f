#!/usr/bin/env bash
# bench/chat/run.sh: one chat room through KaosNet over ENet — N members,
# each sending R messages a second, every message delivered to every member —
# once with live-only messages and once with stored ones. Prints one table;
# asserts nothing.
#
#   bench/chat/run.sh [--quick] [--clients N] [--rate R] [--bytes B] [--seconds S] [--warmup S]
#                     [--raw FILE]
#
# The issue's setting is the default: 1,000 members, 1 message a second each
# (1,000,000 deliveries a second at full speed). Builds build/release if a
# binary is missing or older than the sources, starts the project-local
# PostgreSQL (scripts/pg-local.sh; stopped again if this run started it)
# unless KAOS_DATABASE_URL is set, makes a fresh database (dropped at the
# end), and for --persist 0 then 1 starts a fresh `kaosnet serve` with room
# for the clients on one address and no Lua modules and runs
# bench_chat_loadgen against it. CPU of the server, of PostgreSQL and of the load generator is
# sampled over each window (PostgreSQL: local cluster only).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release

clients=1000
rate=1
bytes=64
seconds=10
warmup=3
raw=""

usage() {
    sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) clients=100; seconds=4; warmup=2 ;;
        --clients) clients="${2:?}"; shift ;;
        --rate) rate="${2:?}"; shift ;;
        --bytes) bytes="${2:?}"; shift ;;
        --seconds) seconds="${2:?}"; shift ;;
        --warmup) warmup="${2:?}"; shift ;;
        --raw) raw="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
bench_check_numbers "$clients" "$bytes" "$seconds" "$warmup"

bench_build "$BUILD/kaosnet" "$BUILD/bench_chat_loadgen"
bench_workdir chat
bench_db_open kaos_bench_chat
bench_pg_watch "$BUILD/bench_chat_loadgen"

mkdir -p "$tmp/runtime"
# A fresh server per step: a room of thousands leaving takes it a while.
for persist in 0 1; do
    bench_kaosnet_start "$BUILD/kaosnet" --runtime-path "$tmp/runtime" \
        --max-connections $((clients + 64)) --max-connections-per-address 0 \
        --max-handshakes $((clients + 64))
    bench_say "room of $clients, $rate msg/s each, persist=$persist: ${warmup} s warm-up, ${seconds} s window"
    timeout $((180 + warmup + seconds)) "$BUILD/bench_chat_loadgen" --port "$port" \
        --server-key "$key" --clients "$clients" --rate "$rate" --bytes "$bytes" \
        --persist "$persist" --room "bench $persist" --warmup "$warmup" --seconds "$seconds" \
        --server-pid "$server_pid" ${pg_pid:+--pg-pid "$pg_pid"} \
        2>"$tmp/loadgen.err" >>"$results" || true
    sed 's/^/  /' "$tmp/loadgen.err" | head -20 >&2
    bench_stop_server
done
grep -q 'persist=' "$results" || { cat "$tmp/server.err" >&2; bench_say "the load generator failed"; exit 1; }
[ -n "$raw" ] && cp "$results" "$raw"

awk -v cores="$(nproc)" -v clients="$clients" -v rate="$rate" -v bytes="$bytes" "$BENCH_AWK_LIB"'
BEGIN {
    printf "chat: one room of %d SDK clients, %s msg/s each, ~%d-byte messages, every message to every member (loopback, %d cores)\n", clients, rate, bytes, cores
    fmt = "%-8s %9s %11s %11s %9s %9s %10s %8s %8s %8s %7s\n"
    printf fmt, "messages", "sends/s", "deliv/s", "expected/s", "p50", "p99", "srv_us/dlv", "server", "pg", "loadgen", "errors"
}
{
    kv($0, r)
    printf fmt, r["persist"] + 0 ? "stored" : "live", sprintf("%.0f", r["sends"] / r["window_s"]), \
        r["deliveries_per_s"], r["expected_per_s"], sprintf("%.1f ms", r["lat_p50_us"] / 1000), \
        sprintf("%.1f ms", r["lat_p99_us"] / 1000), r["srv_us_per_delivery"], \
        pct(r["srv_cpu_s"], r["window_s"]), pct(r["pg_cpu_s"], r["window_s"]), \
        pct(r["lg_cpu_s"], r["window_s"]), r["errors"]
}
END {
    print "latency: send to receive, in one process (one clock). cpu: share of one core over the window."
    print "deliv/s below expected/s: the server or the load generator (which receives every delivery) is saturated."
}' "$results"
