#!/usr/bin/env bash
# bench/relay/run.sh: relayed-match fan-out, KaosNet against a bare ENet
# baseline measured in the same run. Prints one table; asserts nothing.
#
#   bench/relay/run.sh [--quick] [--ccu 64,128,256,512] [--warmup S] [--window S]
#                      [--procs N] [--servers kaosnet,paced,tutorial] [--raw FILE]
#
# Builds build/release if a binary is missing or older than the sources,
# starts the project-local PostgreSQL unless KAOS_DATABASE_URL is set, makes a
# fresh database for the run (dropped at the end), then for each server runs
# every CCU step with bench_loadgen: `kaosnet serve` first, then
# bench_bare_server with --loop paced and --loop tutorial. Every process
# it starts is stopped on exit; every step is bounded by `timeout`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release
SLACK=64 # peer slots above the largest CCU step, for both servers

ccus="64,128,256,512"
warmup=3
window=10
procs=""
servers="kaosnet,paced,tutorial"
raw=""

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ccus="64,128"; warmup=1; window=4 ;;
        --ccu) ccus="${2:?}"; shift ;;
        --warmup) warmup="${2:?}"; shift ;;
        --window) window="${2:?}"; shift ;;
        --procs) procs="${2:?}"; shift ;;
        --servers) servers="${2:?}"; shift ;;
        --raw) raw="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
IFS=, read -r -a ccu_list <<<"$ccus"
IFS=, read -r -a server_list <<<"$servers"
max_ccu=0
for c in "${ccu_list[@]}"; do
    case "$c" in '' | *[!0-9]*) echo "run.sh: bad CCU '$c'" >&2; exit 2 ;; esac
    [ $((c % 8)) -eq 0 ] || { echo "run.sh: CCU $c is not a multiple of 8" >&2; exit 2; }
    [ "$c" -gt "$max_ccu" ] && max_ccu=$c
done
peers=$((max_ccu + SLACK))

say() { echo "run.sh: $*" >&2; }

# --- build ------------------------------------------------------------------
bench_build "$BUILD/kaosnet" "$BUILD/bench_bare_server" "$BUILD/bench_loadgen"

# --- state and cleanup -------------------------------------------------------
bench_workdir relay

# --- database ------------------------------------------------------------------
bench_db_open kaos_bench_relay

# --- servers -------------------------------------------------------------------
port=""

# Starts a server in the background, waits for its ready line, sets port.
start_server() {
    local kind="$1" pattern
    case "$kind" in
        kaosnet)
            # An empty runtime: lua-examples' hooks would cap match sizes at 4.
            mkdir -p "$tmp/data" "$tmp/runtime"
            "$BUILD/kaosnet" serve --database-url "$run_url" --data-dir "$tmp/data" \
                --runtime-path "$tmp/runtime" \
                --bind 127.0.0.1 --port 0 --http-port 0 --migrate --log-level warn \
                --max-connections "$peers" --max-connections-per-address 0 \
                >"$tmp/server.out" 2>"$tmp/server.err" &
            pattern='s/^kaosnet ready udp [0-9.]*:\([0-9][0-9]*\).*/\1/p'
            ;;
        paced | tutorial)
            "$BUILD/bench_bare_server" --workload relay --bind 127.0.0.1 --port 0 --peers "$peers" \
                --loop "$kind" --max-seconds 1800 >"$tmp/server.out" 2>"$tmp/server.err" &
            pattern='s/^ready \([0-9][0-9]*\).*/\1/p'
            ;;
    esac
    server_pid=$!
    bench_wait_ready "$server_pid" "$kind" "$pattern"
}

label_of() {
    case "$1" in
        kaosnet) echo "kaosnet" ;;
        paced) echo "bare-enet-paced" ;;
        tutorial) echo "bare-enet-tutorial" ;;
    esac
}

step_timeout=$((60 + warmup + window + 1 + 60))
for kind in "${server_list[@]}"; do
    case "$kind" in kaosnet | paced | tutorial) ;; *) say "unknown server $kind"; exit 2 ;; esac
    mode=enet
    [ "$kind" = kaosnet ] && mode=kaos
    start_server "$kind"
    for ccu in "${ccu_list[@]}"; do
        say "$(label_of "$kind") CCU $ccu: setup, ${warmup} s warm-up, ${window} s window"
        line="$(timeout "$step_timeout" "$BUILD/bench_loadgen" --mode "$mode" --workload relay \
            --port "$port" --ccu "$ccu" --warmup "$warmup" --window "$window" \
            --server-pid "$server_pid" ${procs:+--procs "$procs"} ${key:+--server-key "$key"} \
            2>"$tmp/loadgen.err" \
            | grep '^result ' || true)"
        sed 's/^/  /' "$tmp/loadgen.err" >&2
        [ -n "$line" ] || line="result status=failed ccu=$ccu"
        echo "server=$(label_of "$kind") $line" >>"$results"
        kill -0 "$server_pid" 2>/dev/null || { say "$kind exited"; start_server "$kind"; }
        sleep 1 # let the server retire the step's connections
    done
    bench_stop_server
done
[ -n "$raw" ] && cp "$results" "$raw"

# --- table ----------------------------------------------------------------------
awk -v cores="$(nproc)" -v window="$window" -v warmup="$warmup" '
function kv(line, a,   n, i, f, p) {
    delete a
    n = split(line, f, " ")
    for (i = 1; i <= n; i++) { p = index(f[i], "="); if (p) a[substr(f[i], 1, p - 1)] = substr(f[i], p + 1) }
}
function ms(us) { return sprintf("%.2f", us / 1000) }
BEGIN {
    printf "relay fan-out: rooms of 8, 30 Hz, 16-byte unreliable input, each relayed to 7 (loopback, %d cores)\n", cores
    printf "steady window %s s after %s s warm-up per step; latencies in ms\n", window, warmup
    fmt = "%-19s %5s %12s %6s %8s %9s %12s %6s %8s %8s %8s %11s %11s %7s %10s %7s %8s\n"
    printf fmt, "server", "CCU", "cpu_s/ccu_s", "cpu%", "msgs/s", "delivered", "lost_in/out", "kdrop", "lat_p50", \
        "lat_p99", "lat_max", "B/client/s", "wire_B/cl/s", "RSS_MB", "overhead_B", "lg_cpu%", "lg_lag99"
}
{
    kv($0, r)
    s = r["server"]; c = r["ccu"]
    if (r["status"] != "ok") { printf "%-19s %5s  FAILED (see the log above)\n", s, c; next }
    cpu[s, c] = r["srv_cpu_per_ccu_s"]; p50[s, c] = r["lat_p50_us"]; p99[s, c] = r["lat_p99_us"]
    wire[s, c] = r["lo_B_per_client_s"]
    if (!(c in seen)) { seen[c] = 1; order[++nc] = c }
    bytes = r["mode"] == "kaos" ? sprintf("%.0f*", r["app_B_per_client_s"]) : sprintf("%.0f", r["wire_B_per_client_s"])
    over = r["mode"] == "kaos" ? sprintf("%d/%d", r["env_send_B"] - 16, r["env_recv_B"] - 16) : "0"
    lag = ms(r["lag_p99_us"]) (r["behind"] == 1 ? "!" : "")
    printf fmt, s, c, sprintf("%.6f", r["srv_cpu_per_ccu_s"]), sprintf("%.1f", r["srv_cpu_per_ccu_s"] * c * 100), \
        sprintf("%.0f", r["msgs_per_s"]), sprintf("%.2f%%", r["delivery"] * 100), \
        r["lost_inputs"] "/" r["lost_fanout"], r["udp_buffer_drops"] < 0 ? "?" : r["udp_buffer_drops"], \
        ms(r["lat_p50_us"]), \
        ms(r["lat_p99_us"]), ms(r["lat_max_us"]), bytes, sprintf("%.0f", r["lo_B_per_client_s"]), \
        sprintf("%.1f", r["srv_rss_kb"] / 1024), over, sprintf("%.0f", r["lg_cpu_cores"] * 100), lag
    if (r["misrouted"] + r["disconnects"] + r["server_errors"] + r["send_errors"] > 0)
        notes = notes sprintf("  %s CCU %s: misrouted %s, disconnects %s, server errors %s, send errors %s\n", \
            s, c, r["misrouted"], r["disconnects"], r["server_errors"], r["send_errors"])
}
function ratios(title, arr, base,   i, c, line) {
    line = title ":"
    for (i = 1; i <= nc; i++) {
        c = order[i]
        if (("kaosnet", c) in arr && (base, c) in arr && arr[base, c] > 0)
            line = line sprintf("  %s: %.2fx", c, arr["kaosnet", c] / arr[base, c])
    }
    print line
}
# Server CPU added per added client between the first and last step: the
# fixed cost of an idle loop cancels out, what is left is the per-message work.
# CPU time comes in 10 ms ticks, so only a wide step (4x or more) says much.
function marginal(base,   lo, hi, k, b) {
    lo = order[1]; hi = order[nc]
    if (nc < 2 || hi < 4 * lo || !(("kaosnet", lo) in cpu) || !(("kaosnet", hi) in cpu) || !((base, lo) in cpu) || !((base, hi) in cpu)) return
    k = (cpu["kaosnet", hi] * hi - cpu["kaosnet", lo] * lo) / (hi - lo)
    b = (cpu[base, hi] * hi - cpu[base, lo] * lo) / (hi - lo)
    if (b > 0) printf "ratio kaosnet/%s marginal cpu per added CCU (%s->%s): %.2fx (%.6f vs %.6f cpu_s/ccu_s)\n", base, lo, hi, k / b, k, b
}
END {
    ratios("ratio kaosnet/bare-paced cpu per CCU", cpu, "bare-enet-paced")
    ratios("ratio kaosnet/bare-tutorial cpu per CCU", cpu, "bare-enet-tutorial")
    ratios("ratio kaosnet/bare-paced lat_p50", p50, "bare-enet-paced")
    ratios("ratio kaosnet/bare-paced lat_p99", p99, "bare-enet-paced")
    ratios("ratio kaosnet/bare-paced wire bytes", wire, "bare-enet-paced")
    marginal("bare-enet-paced")
    marginal("bare-enet-tutorial")
    print "B/client/s: bare = ENet host totals (UDP payload, both ways); * = KaosNet envelope bytes (the SDK exposes no byte count)."
    print "wire_B/cl/s: UDP payload bytes on the loopback interface (/proc/net/dev minus 28 B per datagram), same method for all."
    print "lost_in/out: window inputs no room member got (lost before fan-out) / single deliveries missing after fan-out."
    print "kdrop: datagrams the kernel dropped on full UDP socket buffers during the window (machine-wide)."
    print "overhead_B: envelope bytes on top of the 16-byte payload, sent/received. lg_*: load generator CPU and send lag p99 (! = behind schedule)."
    if (notes != "") printf "anomalies:\n%s", notes
}' "$results"
