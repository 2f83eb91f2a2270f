#!/usr/bin/env bash
# bench/idle/run.sh: N authenticated, idle connections on one KaosNet server
# (several network threads): memory per session and CPU while idle. Prints
# one table; asserts nothing.
#
#   bench/idle/run.sh [--quick] [--ccu N] [--window S] [--procs K] [--net-threads T] [--ping-ms MS]
#
# The issue's setting is the default: 20,000 sessions. Each is an SDK client
# (its own socket) that connects, logs in with a fresh device id and then
# only keeps the connection alive (ENet's pings; the SDK's keepalive). The
# server's resident memory is read before the first client and again with all
# of them; its CPU over the window. Builds build/release when needed, starts
# the project-local PostgreSQL unless KAOS_DATABASE_URL is set (stopped again
# if this run started it), makes a fresh database (dropped at the end), raises
# the open-files limit for the clients' sockets, stops every process it
# starts. Loopback only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release

ccu=20000
window=20
procs=""
net_threads=""
ping_ms=""

usage() {
    sed -n '6,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ccu=2000; window=5 ;;
        --ccu) ccu="${2:?}"; shift ;;
        --window) window="${2:?}"; shift ;;
        --procs) procs="${2:?}"; shift ;;
        --net-threads) net_threads="${2:?}"; shift ;;
        --ping-ms) ping_ms="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
bench_check_numbers "$ccu" "$window" ${procs:+"$procs"} ${net_threads:+"$net_threads"} ${ping_ms:+"$ping_ms"}

# Every client has a socket; the server one per network thread.
ulimit -n "$(( ccu + 4096 > $(ulimit -Hn) ? $(ulimit -Hn) : ccu + 4096 ))"
[ "$(ulimit -n)" -ge $((ccu / ${procs:-1} + 256)) ] || bench_say "open-files limit $(ulimit -n) may be too low"

bench_build "$BUILD/kaosnet" "$BUILD/bench_idle"
bench_workdir idle
bench_db_open kaos_bench_idle

mkdir -p "$tmp/runtime"
# A quarter more slots than sessions: SO_REUSEPORT spreads clients over the
# network threads by a hash of their address, not evenly, and a thread whose
# slots are full leaves its next clients unanswered.
bench_kaosnet_start "$BUILD/kaosnet" --runtime-path "$tmp/runtime" \
    --max-connections $((ccu * 5 / 4 + 256)) --max-connections-per-address 0 \
    --max-handshakes 1024 --auth-timeout-ms 120000 ${net_threads:+--net-threads "$net_threads"} \
    ${ping_ms:+--net-ping-interval-ms "$ping_ms"}
threads="$(curl -s "http://127.0.0.1:$http_port/metrics" 2>/dev/null \
    | grep -c '^kaos_net_thread_connections{' || true)"
bench_say "$ccu idle sessions on ${threads:-?} network threads: setup, then a ${window} s window"
timeout $((600 + window)) "$BUILD/bench_idle" --port "$port" --server-key "$key" \
    --server-pid "$server_pid" --ccu "$ccu" --window "$window" ${procs:+--procs "$procs"} \
    ${ping_ms:+--ping-ms "$ping_ms"} \
    2>"$tmp/idle.err" >>"$results" || true
sed 's/^/  /' "$tmp/idle.err" | head -20 >&2
bench_stop_server
grep -q '^result ' "$results" || { cat "$tmp/server.err" >&2; bench_say "the load generator failed"; exit 1; }

awk -v cores="$(nproc)" -v threads="${threads:-?}" '
/^result / {
    for (i = 2; i <= NF; i++) { p = index($i, "="); r[substr($i, 1, p - 1)] = substr($i, p + 1) }
    printf "idle: %d authenticated SDK clients doing nothing on one server, %s network threads (loopback, %d cores)\n", r["ccu"], threads, cores
    fmt = "%-7s %8s %9s %9s %10s %10s %11s %9s %12s %8s %8s\n"
    printf fmt, "status", "sessions", "setup_s", "RSS0_MB", "RSS_MB", "B/session", "ENet_chan_B", "beyond_B", "srv_cpu%", "us/s/ses", "lg_cpu%"
    printf fmt, r["status"], r["ccu"], r["setup_s"], sprintf("%.1f", r["rss0_kib"] / 1024), sprintf("%.1f", r["rss_kib"] / 1024), r["bytes_per_session"], r["enet_channel_bytes"], r["beyond_peer_bytes"], r["srv_cpu_pct"], r["srv_us_per_session_s"], r["lg_cpu_pct"]
    printf "B/session: (server RSS with the sessions - before any) / sessions. The ENetPeer slots (%s B each) are allocated at start, so in RSS0;\n", r["enet_peer_slot_bytes"]
    print "ENet_chan_B: the 3 channels ENet allocates per connection; beyond_B: the rest, KaosNet'"'"'s own (target < 4096)."
    print "srv_cpu%: server CPU over the window as % of one core; us/s/ses: of that, microseconds per second per session."
}' "$results"
