#!/usr/bin/env bash
# bench/social/run.sh: notifications to online users through KaosNet over
# ENet, against pgbench running the server's notification insert on the same
# PostgreSQL in the same run. Prints one table; asserts nothing.
#
#   bench/social/run.sh [--quick] [--pairs N] [--inflight K] [--conns C] [--batch B]
#                       [--seconds S] [--warmup S] [--rounds R] [--no-live] [--raw FILE]
#
# Builds build/release if a binary is missing or older than the sources,
# starts the project-local PostgreSQL (scripts/pg-local.sh; stopped again at
# the end if this run started it) unless KAOS_DATABASE_URL is set, and makes a
# fresh database for the run (dropped at the end). Then:
#   1. `kaosnet serve` with C API workers (so C Postgres connections), the
#      per-connection rate limits off and notify.lua as its only Lua module;
#   2. R rounds of: bench_notify_loadgen logs in N sender and N receiver
#      clients (each its own user) and each sender keeps K calls of the RPC
#      bench_notify in flight, each sending B persistent notifications to its
#      receiver (stored, then pushed); then pgbench with C clients runs
#      insert.sql (the server's transaction for a send: BEGIN, B x the
#      notification INSERT, COMMIT, prepared) for the same time;
#   3. for reference, live-only notifications (pushed, no database) through
#      the server, and the INSERT alone in pgbench.
# CPU of the server, of PostgreSQL (postmaster and backends), of the client
# side and of the rest of the machine is sampled over each window (local
# PostgreSQL only).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release
HERE=bench/social

pairs=16
inflight=4
conns=4
batch=1
seconds=10
warmup=2
rounds=3
live=1
raw=""

usage() {
    sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) seconds=4; warmup=1; rounds=2 ;;
        --pairs) pairs="${2:?}"; shift ;;
        --inflight) inflight="${2:?}"; shift ;;
        --conns) conns="${2:?}"; shift ;;
        --batch) batch="${2:?}"; shift ;;
        --seconds) seconds="${2:?}"; shift ;;
        --warmup) warmup="${2:?}"; shift ;;
        --rounds) rounds="${2:?}"; shift ;;
        --no-live) live=0 ;;
        --raw) raw="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
bench_check_numbers "$pairs" "$inflight" "$conns" "$batch" "$seconds" "$warmup" "$rounds"
[ "$rounds" -ge 1 ] || { echo "run.sh: --rounds must be at least 1" >&2; exit 2; }

say() { echo "run.sh: $*" >&2; }

# --- build, state and cleanup, database ------------------------------------------
bench_pgbench_setup social "$BUILD/bench_notify_loadgen"

# --- 1. the server ----------------------------------------------------------------
mkdir -p "$tmp/runtime"
cp "$HERE/notify.lua" "$tmp/runtime/"
bench_kaosnet_start "$BUILD/kaosnet" --runtime-path "$tmp/runtime" \
    --api-workers "$conns" --rate-control-msgs 0 --rate-control-bytes 1073741824

# One kaosnet phase (fresh clients and users each time): result lines tagged
# side=kaosnet round=ROUND.
notify() { # PHASES ROUND
    say "kaosnet: $1 (round $2): $pairs senders -> $pairs receivers, $inflight RPCs in flight" \
        "each, $batch notification(s) a call, $conns API workers; ${warmup} s warm-up, ${seconds} s window"
    timeout $((120 + 2 * (warmup + seconds + 10))) "$BUILD/bench_notify_loadgen" --port "$port" \
        --server-key "$key" --pairs "$pairs" --inflight "$inflight" --batch "$batch" \
        --warmup "$warmup" --seconds "$seconds" --phases "$1" \
        --server-pid "$server_pid" ${pg_pid:+--pg-pid "$pg_pid"} \
        2>"$tmp/loadgen.err" | sed "s/^result /result side=kaosnet round=$2 /" >>"$results" || true
    sed 's/^/  /' "$tmp/loadgen.err" >&2
    grep -q "round=$2 phase=${1%%,*}" "$results" \
        || { cat "$tmp/server.err" >&2; say "the load generator failed"; exit 1; }
}

# pgbench on SCRIPT (PHASE), tagged round=ROUND.
insert() { # PHASE ROUND
    say "pgbench: $1 (round $2), $conns clients, ${seconds} s"
    bench_pgbench "$1" "$tmp/$1.sql" "$conns" "$seconds" -D uid="$uid" \
        -D subject=bench -D content="$content" -D code=1 -D sender="$sender"
    sed -i "\$ s/^result /result round=$2 /" "$results"
}

# --- 2. rounds: the persistent phase, then pgbench, alternating -------------------
# Both sides of a round see much the same machine, so a round's ratio holds
# up when other work comes and goes (this machine is shared); the server
# stays up, idle, while pgbench runs.
for round in $(seq "$rounds"); do
    notify persistent "$round"
    if [ "$round" = 1 ]; then
        # A recipient and a sender of the notifications the server stored, and
        # the content the RPC made (a send time of the same size); insert.sql
        # with the INSERT repeated for a batch, and the INSERT alone.
        read -r uid sender < <(psql "$run_url" -X -tA -F ' ' -c \
            "SELECT user_id, sender_id FROM notification LIMIT 1")
        content="$(psql "$run_url" -X -tAc "SELECT content::text FROM notification LIMIT 1")"
        [ -n "$uid" ] && [ -n "$sender" ] || { say "the server stored no notification"; exit 1; }
        awk -v n="$batch" '
            /^BEGIN;$/ { body = 1; print; next }
            /^COMMIT;$/ { for (i = 0; i < n; i++) printf "%s", stmt; body = 0; print; next }
            body { stmt = stmt $0 "\n"; next }
            { print }' "$HERE/insert.sql" >"$tmp/tx.sql"
        grep -v -e '^BEGIN;$' -e '^COMMIT;$' "$HERE/insert.sql" >"$tmp/insert.sql"
    fi
    insert tx "$round"
done
# --- 3. references: live only (no database), the INSERT alone ---------------------
[ "$live" = 1 ] && notify live 0
insert insert 0
bench_stop_server
[ -s "$tmp/server.err" ] && { say "server log:"; sed "s/^[^ ]* /  /" "$tmp/server.err" | sort | uniq -c | sort -rn | head -5 >&2; }
[ -n "$raw" ] && cp "$results" "$raw"

# --- table ----------------------------------------------------------------------
awk -v cores="$(nproc)" -v pairs="$pairs" -v inflight="$inflight" -v conns="$conns" \
    -v batch="$batch" -v seconds="$seconds" -v rounds="$rounds" -v cbytes="${#content}" "$BENCH_AWK_LIB"'
BEGIN {
    printf "social: persistent notifications to online users, %d a call, %d-byte content (loopback, %d cores)\n", batch, cbytes, cores
    printf "kaosnet: %d senders x %d RPCs in flight -> %d receivers over ENet, %d API workers, Lua RPC bench_notify;\n", pairs, inflight, pairs, conns
    printf "pgbench: -c %d -j 2 -M prepared, the server'"'"'s SQL; %d rounds of kaosnet then pgbench, %s s windows\n", conns, rounds, seconds
    fmt = "%-8s %-13s %9s %-25s %10s %7s %7s %7s %7s\n"
    printf fmt, "side", "phase", "ops/s", "latency", "server_cpu", "pg_cpu", "client", "other", "errors"
}
{
    kv($0, r)
    s = r["side"]; ph = r["phase"]; rd = r["round"]
    label = rd > 0 ? ph " " rd : ph
    if (s == "kaosnet") {
        lat = sprintf("p50 %.2f / p99 %.2f ms", r["lat_p50_us"] / 1000, r["lat_p99_us"] / 1000)
        err = r["errors"] + r["other_errors"] + r["dead"] + (r["missing"] < 0 ? -r["missing"] : r["missing"])
        rpc = rpc sprintf("%s  %s: %.0f/s, p50 %.2f / p99 %.2f ms", rpc == "" ? "" : ";", label, \
            r["rpc_per_s"], r["rpc_p50_us"] / 1000, r["rpc_p99_us"] / 1000)
    } else {
        r["ops_per_s"] *= ph == "tx" ? batch : 1 # rows a second
        lat = sprintf("avg %.2f ms", r["lat_avg_ms"])
        err = "-"
    }
    if (rd > 0) by_round[s, rd] = r["ops_per_s"]
    sum[s, ph] += r["ops_per_s"]; n[s, ph]++
    srv = s == "kaosnet" ? pct(r["srv_cpu_s"], r["window_s"]) : "-"
    other = r["machine_cpu_s"] - r["lg_cpu_s"] - (r["pg_cpu_s"] > 0 ? r["pg_cpu_s"] : 0) - (s == "kaosnet" ? r["srv_cpu_s"] : 0)
    printf fmt, s, label, sprintf("%.0f", r["ops_per_s"]), lat, srv, pct(r["pg_cpu_s"], r["window_s"]), \
        pct(r["lg_cpu_s"], r["window_s"]), (r["machine_cpu_s"] < 0 || r["pg_cpu_s"] < 0 ? "?" : pct(other < 0 ? 0 : other, r["window_s"])), err
}
function mean(s, ph) { return n[s, ph] ? sum[s, ph] / n[s, ph] : 0 }
END {
    k = 0
    for (i = 1; i <= rounds; i++)
        if (by_round["pgbench", i] > 0) { q[++k] = by_round["kaosnet", i] / by_round["pgbench", i]; list = list sprintf(" %.2f", q[k]) }
    for (i = 2; i <= k; i++) for (j = i; j > 1 && q[j - 1] > q[j]; j--) { t = q[j]; q[j] = q[j - 1]; q[j - 1] = t }
    med = k % 2 ? q[(k + 1) / 2] : (q[k / 2] + q[k / 2 + 1]) / 2
    if (k) printf "ratio kaosnet/pgbench: %.2f, the median of the rounds (%s ); means %.0f vs %.0f per s, persistent deliveries vs rows inserted by the server'"'"'s transaction\n", \
        med, substr(list, 2), mean("kaosnet", "persistent"), mean("pgbench", "tx")
    if (batch == 1 && mean("pgbench", "insert") > 0)
        printf "reference: persistent mean / the INSERT alone %.2f (%.0f per s); live only / persistent %.1fx\n", \
            mean("kaosnet", "persistent") / mean("pgbench", "insert"), mean("pgbench", "insert"), \
            (mean("kaosnet", "persistent") > 0 ? mean("kaosnet", "live") / mean("kaosnet", "persistent") : 0)
    print "rpc round trips (calls answered):" rpc
    print "ops/s: kaosnet, notifications that reached their receiver in the window; pgbench, rows inserted (transactions x batch)."
    print "latency: kaosnet, from the RPC call to the notification'"'"'s arrival; pgbench, per transaction (or statement)."
    print "cpu columns: share of one core over the window (user+system). pg_cpu: postmaster, backends and reaped children."
    print "client: the load generator (kaosnet) or pgbench itself. other: the rest of the machine (all CPUs busy less those three;"
    print "  softirq work on our own loopback traffic included). errors: failed calls + lost or surplus notifications + disconnects."
}' "$results"
