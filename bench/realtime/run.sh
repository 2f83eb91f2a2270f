#!/usr/bin/env bash
# bench/realtime/run.sh: authoritative realtime matches, KaosNet (Lua handler,
# sealed transport) against a bare ENet server doing the same traffic,
# measured in the same run. Prints one table; asserts nothing.
#
#   bench/realtime/run.sh [--quick] [--ccu 64,128,...] [--warmup S] [--window S]
#                         [--procs N] [--servers kaosnet,kaosnet-plain,paced,tutorial] [--all]
#                         [--server-cpu C] [--lg-cpu C] [--net-threads N]
#                         [--perf DIR] [--raw FILE]
#
# Rooms of 8 at 30 Hz: every client sends one 16-byte unreliable input per
# tick; every room's match keeps each player's last input and sends every
# player one 80-byte snapshot per tick (KaosNet: bench/realtime/lua, run by
# the match engine; bare: bench_bare_server --workload realtime). Each step
# gets a fresh server process pinned to --server-cpu and a load generator
# pinned to --lg-cpu. Steps go up until the tick stops holding (client p99
# interval over 36 ms), the load generator saturates, or a step fails; --all
# runs every step regardless. One ENet host holds at most 4095 peers: the
# bare server has one, so its steps above that are listed as not run;
# KaosNet runs several network threads, one host each, on one port
# (--net-threads N, passed on; by default as many as the step needs), and
# pinned with --server-cpu they share that CPU. --perf DIR records a profile of
# each server (perf record, 997 Hz, DWARF call graphs) during each
# window into DIR/SERVER-CCU.data.
#
# Builds build/release if a binary is missing or older than the sources,
# starts the project-local PostgreSQL (scripts/pg-local.sh, stopped again at
# the end if this script started it) unless KAOS_DATABASE_URL is set, makes a
# fresh database for the run (dropped at the end). Every process it starts is
# stopped on exit; every step is bounded by `timeout`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release
SLACK=64          # peer slots above the step's CCU
MAX_PEERS=4095    # one ENet host: peer ids are 12 bits (ENET_PROTOCOL_MAXIMUM_PEER_ID)
HOLD_P99_US=36000 # the tick holds while the client p99 interval stays at or below this

ccus="64,128,256,512,1000,2000,3000,4000"
warmup=3
window=10
procs=""
servers="kaosnet,paced"
all=0
server_cpu=0
lg_cpu=1
perf_dir=""
raw=""
net_threads=""

usage() {
    sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ccus="64,256"; warmup=1; window=4 ;;
        --ccu) ccus="${2:?}"; shift ;;
        --warmup) warmup="${2:?}"; shift ;;
        --window) window="${2:?}"; shift ;;
        --procs) procs="${2:?}"; shift ;;
        --servers) servers="${2:?}"; shift ;;
        --all) all=1 ;;
        --server-cpu) server_cpu="${2:?}"; shift ;;
        --lg-cpu) lg_cpu="${2:?}"; shift ;;
        --perf) perf_dir="${2:?}"; shift ;;
        --net-threads) net_threads="${2:?}"; shift ;;
        --raw) raw="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
IFS=, read -r -a ccu_list <<<"$ccus"
IFS=, read -r -a server_list <<<"$servers"
for c in "${ccu_list[@]}"; do
    case "$c" in '' | *[!0-9]*) echo "run.sh: bad CCU '$c'" >&2; exit 2 ;; esac
    [ $((c % 8)) -eq 0 ] || { echo "run.sh: CCU $c is not a multiple of 8" >&2; exit 2; }
done
for k in "${server_list[@]}"; do
    case "$k" in kaosnet | kaosnet-plain | paced | tutorial) ;; *) echo "run.sh: unknown server $k" >&2; exit 2 ;; esac
done
if [ -n "$perf_dir" ]; then
    command -v perf >/dev/null || { echo "run.sh: --perf needs perf" >&2; exit 2; }
    mkdir -p "$perf_dir"
    perf_dir="$(cd "$perf_dir" && pwd)"
fi

say() { echo "run.sh: $*" >&2; }

# Pinning: with one CPU there is nothing to separate.
pin_server=() pin_lg=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin_server=(taskset -c "$server_cpu")
    pin_lg=(taskset -c "$lg_cpu")
else
    say "fewer than 2 CPUs or no taskset: server and load generator share the CPU"
fi

# --- build ------------------------------------------------------------------
bench_build "$BUILD/kaosnet" "$BUILD/bench_bare_server" "$BUILD/bench_loadgen"

# --- state and cleanup -------------------------------------------------------
bench_workdir realtime

# --- database ------------------------------------------------------------------
if [ -n "$(printf '%s\n' "${server_list[@]}" | grep '^kaosnet')" ]; then
    bench_db_open kaos_bench_realtime
fi

# --- servers -------------------------------------------------------------------
port="" key="" http_port=""

# Starts a server in the background with room for `peers` peers, waits for
# its ready line, sets port (and key, http_port for KaosNet).
start_server() {
    local kind="$1" peers="$2" pattern
    case "$kind" in
        kaosnet | kaosnet-plain)
            mkdir -p "$tmp/data"
            "${pin_server[@]}" "$BUILD/kaosnet" serve --database-url "$run_url" \
                --data-dir "$tmp/data" --runtime-path bench/realtime/lua \
                --bind 127.0.0.1 --port 0 --http-port 0 --console false --migrate --log-level warn \
                --max-connections "$peers" --max-connections-per-address 0 \
                ${net_threads:+--net-threads "$net_threads"} \
                --rate-match-msgs 1000 --auth-timeout-ms 60000 \
                --net-batch-syscalls "$([ "$kind" = kaosnet ] && echo true || echo false)" \
                >"$tmp/server.out" 2>"$tmp/server.err" &
            pattern='s/^kaosnet ready udp [0-9.]*:\([0-9][0-9]*\).*/\1/p'
            ;;
        paced | tutorial)
            # Throttle off, as KaosNet sets it (src/server/net/net.c).
            "${pin_server[@]}" "$BUILD/bench_bare_server" --workload realtime --hz 30 --no-throttle \
                --bind 127.0.0.1 --port 0 --peers "$peers" --loop "$kind" --max-seconds 1800 \
                >"$tmp/server.out" 2>"$tmp/server.err" &
            pattern='s/^ready \([0-9][0-9]*\).*/\1/p'
            ;;
    esac
    server_pid=$!
    bench_wait_ready "$server_pid" "$kind" "$pattern"
}

label_of() {
    case "$1" in
        kaosnet) echo "kaosnet" ;;
        kaosnet-plain) echo "kaosnet-plain" ;;
        paced) echo "bare-enet-paced" ;;
        tutorial) echo "bare-enet-tutorial" ;;
    esac
}

# Whether a result line says the step broke: failed, the tick did not hold,
# or the load generator was the limit.
broke() {
    echo "$1" | awk -v hold="$HOLD_P99_US" '{
        for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) r[substr($i, 1, p - 1)] = substr($i, p + 1) }
        exit !(r["status"] != "ok" || r["int_p99_us"] + 0 > hold + 0 || r["behind"] + 0 == 1 ||
               r["lg_core_busy"] + 0 >= 0.9)
    }'
}

for kind in "${server_list[@]}"; do
    mode=enet
    case "$kind" in kaosnet*) mode=kaos ;; esac
    stopped=""
    for ccu in "${ccu_list[@]}"; do
        if [ -n "$stopped" ]; then
            echo "server=$(label_of "$kind") result status=skipped ccu=$ccu after=$stopped" >>"$results"
            continue
        fi
        if [ "$ccu" -gt "$MAX_PEERS" ] && [ "${kind#kaosnet}" = "$kind" ]; then
            echo "server=$(label_of "$kind") result status=toobig ccu=$ccu" >>"$results"
            continue
        fi
        peers=$((ccu + SLACK))
        [ "$peers" -le "$MAX_PEERS" ] || [ "${kind#kaosnet}" != "$kind" ] || peers=$MAX_PEERS
        setup_timeout=$((60 + ccu / 50))
        step_timeout=$((setup_timeout + warmup + window + 60))
        say "$(label_of "$kind") CCU $ccu: fresh server, setup, ${warmup} s warm-up, ${window} s window"
        if ! start_server "$kind" "$peers"; then
            bench_stop_server
            echo "server=$(label_of "$kind") result status=failed ccu=$ccu" >>"$results"
            stopped=$ccu
            continue
        fi
        perf_cmd=()
        if [ -n "$perf_dir" ]; then
            perf_cmd=(--exec-at-window "perf record -q -F 997 --call-graph dwarf,8192 -p $server_pid -o $perf_dir/$kind-$ccu.data -- sleep $window")
        fi
        line="$(timeout "$step_timeout" "${pin_lg[@]}" "$BUILD/bench_loadgen" --mode "$mode" \
            --workload realtime --port "$port" --ccu "$ccu" --warmup "$warmup" --window "$window" \
            --setup-timeout "$setup_timeout" --server-pid "$server_pid" \
            ${procs:+--procs "$procs"} ${key:+--server-key "$key"} \
            ${http_port:+--metrics-port "$http_port"} "${perf_cmd[@]}" \
            2>"$tmp/loadgen.err" | grep '^result ' || true)"
        sed 's/^/  /' "$tmp/loadgen.err" >&2
        [ -n "$line" ] || line="result status=failed ccu=$ccu"
        echo "server=$(label_of "$kind") $line" >>"$results"
        kill -0 "$server_pid" 2>/dev/null || say "$kind exited during the step"
        bench_stop_server
        sed 's/^/  server: /' "$tmp/server.err" | grep -v 'http_key is empty' | tail -n 5 >&2 || true
        if [ "$all" -eq 0 ] && broke "$line"; then stopped=$ccu; fi
    done
done
[ -n "$raw" ] && cp "$results" "$raw"

# --- table ----------------------------------------------------------------------
awk -v cores="$(nproc)" -v window="$window" -v warmup="$warmup" -v hold="$HOLD_P99_US" '
# Fields of a result line; numbers become numbers (substr gives strings,
# which awk would compare as text).
function kv(line, a,   n, i, f, p, v) {
    delete a
    n = split(line, f, " ")
    for (i = 1; i <= n; i++) {
        p = index(f[i], "=")
        if (!p) continue
        v = substr(f[i], p + 1)
        if (v ~ /^-?[0-9]+(\.[0-9]+)?$/) v += 0
        a[substr(f[i], 1, p - 1)] = v
    }
}
function ms(us) { return sprintf("%.1f", us / 1000) }
function pct(x) { return x == "" ? "?" : sprintf("%.0f", (x < 0 ? 0 : x) * 100) }
# The smallest lateness bound (ms) under which 99 % of the window'"'"'s ticks started.
function late_p99(r,   k, b, n, want, bounds, i) {
    n = split("250 500 1000 2000 3000 5000 10000 33333", bounds, " ")
    if (!("m_match_tick_lateness_us_count" in r) || r["m_match_tick_lateness_us_count"] == 0) return "-"
    want = 0.99 * r["m_match_tick_lateness_us_count"]
    for (i = 1; i <= n; i++) {
        k = "m_match_tick_lateness_us_bucket_le_" bounds[i]
        if ((k in r) && r[k] >= want) return sprintf("<%g", bounds[i] / 1000)
    }
    return ">33"
}
BEGIN {
    printf "realtime: rooms of 8 at 30 Hz, 16-byte input per player per tick, one 80-byte snapshot per player per tick\n"
    printf "(loopback, %d cores; server and load generator pinned to different cores); %s s window after %s s warm-up; times in ms\n", cores, window, warmup
    fmt = "%-18s %5s %11s %5s %5s %6s %6s %6s %6s %6s %6s %6s %6s %6s %7s %6s %10s %8s %6s %6s %5s %5s %7s %5s %-5s\n"
    printf fmt, "server", "CCU", "cpu_s/ccu_s", "cpu%", "core%", "int50", "int99", "intmax", "s_loss", "lat50", "lat99", \
        "in_B/s", "out_B/s", "wire_B", "RSS_MB", "kdrop", "late/ticks", "srv_lt99", "in_drp", "lg_cpu", "lg_co", \
        "other", "lg_lag", "", "flags"
}
{
    kv($0, r)
    s = r["server"]; c = r["ccu"]
    if (r["status"] == "skipped") { printf "%-18s %5s  skipped: the step at %s CCU broke\n", s, c, r["after"]; next }
    if (r["status"] == "toobig") { printf "%-18s %5s  not run: the bare server has one ENet host, at most 4095 peers\n", s, c; next }
    if (r["status"] != "ok") { printf "%-18s %5s  FAILED (see the log above)\n", s, c; next }
    cpu[s, c] = r["srv_cpu_per_ccu_s"]
    if (!(c in seen)) { seen[c] = 1; order[++nc] = c }
    w = r["window_s"]
    # ENet packet payload per client per second, in = client to server. KaosNet:
    # the envelope the SDK frames plus the 20-byte seal on every packet.
    seal = r["mode"] == "kaos" ? 20 : 0
    inb = r["app_sent_B_per_client_s"] + seal * r["sends"] / c / w
    outb = r["app_recv_B_per_client_s"] + seal * r["snapshots"] / c / w
    flags = ""
    if (r["int_p99_us"] > hold) flags = flags "T"
    if (r["srv_core_busy"] >= 0.9) flags = flags "S"
    if (r["behind"] == 1 || r["lg_core_busy"] >= 0.9) flags = flags "G"
    if (r["other_cpu_cores"] > 0.15) flags = flags "N"
    if (r["misrouted"] + r["disconnects"] + r["server_errors"] + r["send_errors"] > 0) flags = flags "!"
    late = r["mode"] == "kaos" && ("m_match_ticks_total" in r) ? r["m_match_late_ticks_total"] "/" r["m_match_ticks_total"] : "-"
    drp = r["mode"] == "kaos" && ("m_match_inputs_dropped_total" in r) ? r["m_match_inputs_dropped_total"] : "-"
    printf fmt, s, c, sprintf("%.6f", r["srv_cpu_per_ccu_s"]), sprintf("%.1f", r["srv_cpu_per_ccu_s"] * c * 100), \
        pct(r["srv_core_busy"]), ms(r["int_p50_us"]), ms(r["int_p99_us"]), ms(r["int_max_us"]), \
        sprintf("%.2f%%", r["snap_loss"] * 100), ms(r["lat_p50_us"]), ms(r["lat_p99_us"]), sprintf("%.0f", inb), \
        sprintf("%.0f", outb), sprintf("%.0f", r["lo_B_per_client_s"]), sprintf("%.1f", r["srv_rss_kb"] / 1024), \
        r["udp_buffer_drops"] < 0 ? "?" : r["udp_buffer_drops"], late, late_p99(r), drp, \
        pct(r["lg_cpu_cores"]), pct(r["lg_core_busy"]), pct(r["other_cpu_cores"]), \
        sprintf("%.1f", r["lag_p99_us"] / 1000), r["behind"] == 1 ? "!" : "", flags
    if (r["misrouted"] + r["disconnects"] + r["server_errors"] + r["send_errors"] > 0)
        notes = notes sprintf("  %s CCU %s: misrouted %s, disconnects %s, server errors %s, send errors %s\n", \
            s, c, r["misrouted"], r["disconnects"], r["server_errors"], r["send_errors"])
    if (r["setup_retries"] > 0)
        notes = notes sprintf("  %s CCU %s: setup took %s s with %s retries (connect timeouts, busy answers)\n", \
            s, c, r["setup_s"], r["setup_retries"])
    if (r["mode"] == "kaos" && r["sends"] > 0 && ("m_match_inputs_total" in r) && r["m_match_inputs_total"] < 0.99 * r["sends"])
        notes = notes sprintf("  %s CCU %s: the match engine got %.1f%% of the inputs sent (the rest: kernel socket buffer drops)\n", \
            s, c, 100 * r["m_match_inputs_total"] / r["sends"])
    if (r["mode"] == "kaos" && (r["m_rate_limited_total"] + r["m_unreliable_dropped_total"] > 0))
        notes = notes sprintf("  %s CCU %s: server dropped %s packets by rate limit, %s unreliable sends on full queues\n", \
            s, c, r["m_rate_limited_total"], r["m_unreliable_dropped_total"])
}
function ratios(title, base, who,   i, c, line, any) {
    if (who == "") who = "kaosnet"
    line = title ":"
    for (i = 1; i <= nc; i++) {
        c = order[i]
        if (!((who, c) in cpu && (base, c) in cpu && cpu[base, c] > 0)) continue
        line = line sprintf("  %s: %.2fx", c, cpu[who, c] / cpu[base, c])
        any = 1
    }
    if (any) print line
}
# Server CPU added per added client between the first and the last step both
# servers ran: the fixed cost of the loops cancels out.
function marginal(base,   i, c, lo, hi, k, b) {
    lo = ""; hi = ""
    for (i = 1; i <= nc; i++) {
        c = order[i]
        if (!(("kaosnet", c) in cpu) || !((base, c) in cpu)) continue
        if (lo == "") lo = c
        hi = c
    }
    if (lo == "" || hi + 0 < 4 * lo) return
    k = (cpu["kaosnet", hi] * hi - cpu["kaosnet", lo] * lo) / (hi - lo)
    b = (cpu[base, hi] * hi - cpu[base, lo] * lo) / (hi - lo)
    if (b > 0) printf "ratio kaosnet/%s marginal cpu per added CCU (%s->%s): %.2fx (%.6f vs %.6f cpu_s/ccu_s)\n", base, lo, hi, k / b, k, b
}
END {
    ratios("ratio kaosnet/bare-paced cpu per CCU (target <= 1.3x)", "bare-enet-paced")
    ratios("ratio kaosnet/bare-tutorial cpu per CCU", "bare-enet-tutorial")
    ratios("ratio kaosnet-plain/bare-paced cpu per CCU", "bare-enet-paced", "kaosnet-plain")
    ratios("ratio kaosnet/kaosnet-plain cpu per CCU (batched socket calls vs plain ENet sends)", "kaosnet-plain")
    marginal("bare-enet-paced")
    marginal("bare-enet-tutorial")
    print "targets: <= 0.000200 cpu_s/ccu_s (0.2 ms of server CPU per CCU-second); tick held (int99 <= 36 ms) at 2000, then 6000 CCU."
    print "cpu_s/ccu_s, cpu%: server process CPU (utime + stime, all threads) per CCU-second, and as % of one core."
    print "core%, lg_co: how busy the server'"'"'s core and the load generator'"'"'s core were, softirqs included (loopback delivery"
    print "  runs in the sender'"'"'s softirq and is charged to no process). lg_cpu: load generator processes, % of a core."
    print "int50/99/max: interval between a client'"'"'s successive snapshots; s_loss: snapshots missing (tick gaps) / expected."
    print "lat50/99: input to the first snapshot that echoes it (includes waiting for the next tick: 16.7 ms on average at 30 Hz)."
    print "in_B/s, out_B/s: ENet packet payload per client per second, client to server / server to client (KaosNet: envelope + 20-byte seal)."
    print "wire_B: UDP payload on the loopback interface per client per second, both ways, ENet headers and acks included (machine-wide)."
    print "kdrop: datagrams the kernel dropped on full UDP socket buffers during the window (machine-wide)."
    print "late/ticks, srv_lt99, in_drp (KaosNet /metrics over the window): ticks started over an interval late / all ticks; bound under which"
    print "  99 % of ticks started (ms after their due time); inputs dropped by the match engine."
    print "other: CPU the rest of the machine used during the window (all cores busy, less server and load generator), % of a core;"
    print "  approximate (/proc/stat ticks against per-process times: about +-20 %), shown as 0 when negative."
    print "lg_lag: p99 of how late the load generator sent against its 30 Hz grid, ms (! = behind schedule)."
    print "flags: T tick not held (int99 > 36 ms); S server core saturated (>= 90 % busy); G generator-limited (its core >= 90 % busy,"
    print "  or behind its send schedule); N noisy (other programs used over 15 % of a core meanwhile); ! anomalies (see notes)."
    if (notes != "") printf "notes:\n%s", notes
}' "$results"
