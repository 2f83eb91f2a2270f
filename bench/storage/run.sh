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
bench_check_numbers "$clients" "$inflight" "$conns" "$seconds" "$warmup" "$keys" "$value_bytes"

say() { echo "run.sh: $*" >&2; }

# --- build, state and cleanup, database ------------------------------------------
bench_pgbench_setup storage "$BUILD/bench_storage_loadgen"

# --- 1. through the server ------------------------------------------------------
mkdir -p "$tmp/runtime"
bench_kaosnet_start "$BUILD/kaosnet" --runtime-path "${runtime:-$tmp/runtime}" \
    --api-workers "$conns" --rate-control-msgs 0 --rate-control-bytes 1073741824

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
for phase in write read; do
    script="$HERE/insert.sql"
    [ "$phase" = read ] && script="$HERE/select.sql"
    say "pgbench: $phase ($(basename "$script")), $conns clients, ${seconds} s"
    bench_pgbench "$phase" "$script" "$conns" "$seconds" \
        -D uid="$uid" -D keys="$keys" -D value="$value"
done
[ -n "$raw" ] && cp "$results" "$raw"

# --- table ----------------------------------------------------------------------
awk -v cores="$(nproc)" -v clients="$clients" -v inflight="$inflight" -v conns="$conns" \
    -v seconds="$seconds" -v vb="$value_bytes" -v runtime="${runtime:-none}" "$BENCH_AWK_LIB"'
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
