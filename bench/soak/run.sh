#!/usr/bin/env bash
# bench/soak/run.sh: a soak of a real `kaosnet serve` — 500 CCU of the
# realtime workload (authoritative matches at 30 Hz), a fifth of the clients
# through the end-to-end tests' lossy proxy (25 % loss each way, 100 ± 50 ms),
# plus steady RPCs and storage writes — for 15 minutes, sampling the server
# as it goes. Not part of `make test`.
#
#   bench/soak/run.sh [--minutes N] [--clients N] [--room N] [--impaired N]
#                     [--loss F] [--delay MS] [--jitter MS] [--sample S] [--raw DIR]
#
# Defaults: 15 minutes, 500 clients in rooms of 10, 2 impaired per room,
# loss 0.25, delay 100, jitter 50, a sample every 10 s. --raw DIR keeps the
# samples, the driver's result and the server's log there.
#
# What it does: builds build/release when needed, makes a fresh database on
# the project-local PostgreSQL (bench/lib/common.sh; KAOS_DATABASE_URL to
# use another), starts `kaosnet serve` with only bench/soak/lua/soak.lua,
# runs bench_soak_driver (bench/soak/driver.c: what the clients do and check)
# for the given minutes, and every --sample seconds records the server's RSS,
# open file descriptors, threads and CPU, its PostgreSQL connections, its
# /metrics (ticks, late ticks, tick lateness, dropped inputs, API queue), the
# machine's load and the driver's running totals. After the driver has
# drained and disconnected it samples once more, then finds every
# acknowledged storage write in Postgres with the version its acknowledgement
# named. It prints a table per minute and a verdict, and exits 1 when a check
# failed: a reliable event duplicated or out of order, or not delivered
# between two clean clients ("reliable"); an RPC or storage error, or an
# acknowledged write not in Postgres ("requests"); a clean client
# disconnected, a match ended or a send refused ("clients"); an impaired
# client disconnected ("impaired-clients-disconnected") or events between
# connected clients, one of them impaired, not delivered after the drain
# ("impaired-events-missing"); file descriptors or Postgres connections not
# back to where they were before the clients came ("fd-leak",
# "pg-conn-leak"); more than 1 % of ticks late ("ticks-late"). RSS growth is
# reported, not judged. Everything it starts it stops; the driver is bounded
# by `timeout`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release

minutes=15 clients=500 room=10 impaired=2 loss=0.25 delay=100 jitter=50 sample=10 raw=""
usage() {
    sed -n '8,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="${2:?}"; shift ;;
        --clients) clients="${2:?}"; shift ;;
        --room) room="${2:?}"; shift ;;
        --impaired) impaired="${2:?}"; shift ;;
        --loss) loss="${2:?}"; shift ;;
        --delay) delay="${2:?}"; shift ;;
        --jitter) jitter="${2:?}"; shift ;;
        --sample) sample="${2:?}"; shift ;;
        --raw) raw="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) bench_say "unknown option $1"; usage ;;
    esac
    shift
done
bench_check_numbers "$minutes" "$clients" "$room" "$impaired" "$delay" "$jitter" "$sample"
[ "$minutes" -ge 1 ] && [ "$sample" -ge 1 ] || { bench_say "--minutes and --sample are at least 1"; exit 2; }

bench_build "$BUILD/kaosnet" "$BUILD/bench_soak_driver"
bench_workdir soak
bench_db_open kaos_soak
mkdir -p "$tmp/runtime"
cp bench/soak/lua/soak.lua "$tmp/runtime/"
bench_kaosnet_start "$BUILD/kaosnet" --runtime-path "$tmp/runtime" \
    --max-connections $((clients + 64)) --max-connections-per-address 0 --auth-timeout-ms 60000

# --- sampling ----------------------------------------------------------------------
metrics() { curl -s --max-time 5 "http://127.0.0.1:$http_port/metrics" || true; }
pg_conns() {
    psql "$admin_url" -X -tAc "SELECT count(*) FROM pg_stat_activity
        WHERE datname = '$dbname' AND pid <> pg_backend_pid()" 2>/dev/null || echo -1
}
# One `sample k=v ...` line: $1 = seconds since the clients started (label).
take_sample() {
    local m st
    m="$(metrics)"
    st="$(cat "$tmp/driver.stats" 2>/dev/null || true)"
    {
        printf 'sample wall=%s label=%s rss_kb=%s fds=%s threads=%s cpu_ticks=%s pg_conns=%s load1=%s' \
            "$(date +%s)" "$1" \
            "$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo -1)" \
            "$(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l)" \
            "$(awk '/^Threads:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo -1)" \
            "$(awk '{print $14 + $15}' "/proc/$server_pid/stat" 2>/dev/null || echo -1)" \
            "$(pg_conns)" "$(cut -d' ' -f1 /proc/loadavg)"
        awk '/^kaos_(match_ticks_total|match_late_ticks_total|match_tick_us_max|match_tick_lateness_us_max|match_inputs_dropped_total|api_pending|api_busy_total|matches|connections_current|sessions|rate_limited_total|violations_total|unreliable_dropped_total|request_errors_total|match_errors_total) / {
                 sub(/^kaos_/, ""); printf " %s=%s", $1, $2 }
             /^kaos_match_tick_lateness_us_bucket/ {
                 le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le); b = b sep le ":" $2; sep = "," }
             END { if (b != "") printf " late_hist=%s", b }' <<<"$m"
        [ -n "$st" ] && printf ' %s' "${st#t=* }" | sed 's/ phase=[a-z]*//'
        printf '\n'
    } >>"$tmp/samples"
}

# Before any client: the server's idle baseline.
sleep 2
take_sample before

bench_say "soak: $clients clients (rooms of $room, $impaired per room through the proxy:" \
    "loss $loss, ${delay} ± ${jitter} ms), RPC and storage every 5 s each, $minutes min;" \
    "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
seconds=$((minutes * 60))
timeout -k 10 $((seconds + 300)) "$BUILD/bench_soak_driver" --port "$port" --server-key "$key" \
    --seconds "$seconds" --clients "$clients" --room "$room" --impaired "$impaired" \
    --loss "$loss" --delay "$delay" --jitter "$jitter" \
    --stats "$tmp/driver.stats" --acks "$tmp/acks.tsv" >"$tmp/driver.out" 2>"$tmp/driver.err" &
driver_pid=$!
trap 'bench_stop_pid "$driver_pid"; bench_stop_server; bench_db_close; rm -rf "$tmp"' EXIT

# The clients' clock starts when the driver's stats file first appears.
t_run=""
while kill -0 "$driver_pid" 2>/dev/null; do
    if [ -z "$t_run" ] && [ -s "$tmp/driver.stats" ]; then t_run=$(date +%s); take_sample 0; fi
    sleep "$sample" &
    wait $! || true
    [ -n "$t_run" ] && kill -0 "$driver_pid" 2>/dev/null && take_sample $(($(date +%s) - t_run))
done
wait "$driver_pid" || { cat "$tmp/driver.err" >&2; bench_say "the driver failed"; exit 1; }
take_sample drained
# Clients gone: give the server its idle timeouts' worth of quiet, then the leak check.
sleep 5
take_sample after
sed 's/^/  /' "$tmp/driver.err" | tail -n 20 >&2

# --- acknowledged writes, from Postgres -------------------------------------------
found="$(psql "$run_url" -X -q -tA -v ON_ERROR_STOP=1 <<EOF
CREATE TEMP TABLE acked (user_id uuid, key text, version text);
\\copy acked FROM '$tmp/acks.tsv'
SELECT count(*), count(s.key) FROM acked a LEFT JOIN storage s
    ON s.collection = 'soak' AND s.key = a.key AND s.user_id = a.user_id AND s.version = a.version;
EOF
)"
echo "acks acked=${found%|*} found=${found#*|}" >>"$tmp/samples"
[ -n "$raw" ] && { mkdir -p "$raw"; cp "$tmp/samples" "$tmp/driver.out" "$tmp/driver.err" "$tmp/server.err" "$raw/"; }

# --- table and verdict -------------------------------------------------------------
cat "$tmp/samples" "$tmp/driver.out" | awk -v minutes="$minutes" -v clients="$clients" \
    -v room="$room" -v impaired="$impaired" -v loss="$loss" -v delay="$delay" -v jitter="$jitter" \
    -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" "$BENCH_AWK_LIB"'
# p99 of the lateness added between two cumulative histograms "le:count,..."
function late_p99(a, b,   na, nb, x, y, i, tot, le, c, pa) {
    na = split(a, x, ","); nb = split(b, y, ",")
    if (na != nb || nb == 0) return "?"
    split(y[nb], pa, ":"); tot = pa[2]; split(x[na], pa, ":"); tot -= pa[2]
    if (tot <= 0) return "-"
    for (i = 1; i <= nb; i++) {
        split(y[i], pa, ":"); le = pa[1]; c = pa[2]; split(x[i], pa, ":"); c -= pa[2]
        if (c >= 0.99 * tot) return le == "+Inf" ? ">max" : sprintf("<%g", le / 1000)
    }
    return "?"
}
/^sample / {
    kv($0, s); n++
    for (k in s) S[n, k] = s[k]
    if (s["label"] == "before") nb = n
    if (s["label"] == "0") n0 = n
    if (s["label"] == "drained") nd = n
    if (s["label"] == "after") na = n
    next
}
/^acks / { kv($0, a); acked = a["acked"]; found = a["found"]; next }
/^result / { kv($0, R); next }
END {
    printf "soak: %d CCU, rooms of %d in authoritative matches at 30 Hz (%d per room through lossy_proxy: loss %s each way, %s ± %s ms), RPC + storage write per client every 5 s; %d min, %d cores\n", \
        clients, room, impaired, loss, delay, jitter, minutes, cores
    fmt = "%5s %7s %5s %4s %5s %7s %6s %7s %8s %8s %7s %7s %5s %5s %6s %5s\n"
    printf fmt, "min", "RSS_MB", "fds", "pg", "srv%", "ticks/s", "late", "lat99ms", "snapmiss", "events", "ev_bad", "rpc_ok", "st_ok", "errs", "disc", "load1"
    # one row per minute from the clients start (the sample nearest each minute mark)
    last = n0; row = 0
    for (i = n0 + 1; i <= (nd ? nd : n); i++) {
        t = S[i, "label"]; if (t == "drained") t = minutes * 60
        if (t + 0 < (row + 1) * 60 && i != nd) continue
        row++
        dt = S[i, "wall"] - S[last, "wall"]; if (dt <= 0) dt = 1
        ticks = S[i, "match_ticks_total"] - S[last, "match_ticks_total"]
        printf fmt, (i == nd ? "drain" : row), sprintf("%.1f", S[i, "rss_kb"] / 1024), S[i, "fds"], S[i, "pg_conns"], \
            sprintf("%.0f", 100 * (S[i, "cpu_ticks"] - S[last, "cpu_ticks"]) / hz / dt), sprintf("%.0f", ticks / dt), \
            S[i, "match_late_ticks_total"] - S[last, "match_late_ticks_total"], \
            late_p99(S[last, "late_hist"], S[i, "late_hist"]), \
            S[i, "snap_missing_clean"] - S[last, "snap_missing_clean"], \
            S[i, "echoes"] - S[last, "echoes"], (S[i, "ev_dup"] + S[i, "ev_gap"]) - (S[last, "ev_dup"] + S[last, "ev_gap"]), \
            S[i, "rpc_ok"] - S[last, "rpc_ok"], S[i, "st_ok"] - S[last, "st_ok"], \
            (S[i, "rpc_err"] + S[i, "rpc_bad"] + S[i, "st_err"] + S[i, "send_errors"]) - (S[last, "rpc_err"] + S[last, "rpc_bad"] + S[last, "st_err"] + S[last, "send_errors"]), \
            S[i, "disconnects"], S[i, "load1"]
        last = i
    }
    # RSS slope after warm-up (the first fifth of the run, at least 20 s): least squares, KB per minute
    warm = minutes * 12; if (warm < 20) warm = 20
    sx = sy = sxx = sxy = m = 0; rmin = rmax = ""; nw = 0
    for (i = n0; i <= (nd ? nd : n); i++) {
        t = S[i, "label"]; if (t == "drained" || t + 0 < warm) continue
        if (!nw) nw = i
        x = t / 60; y = S[i, "rss_kb"]; m++; sx += x; sy += y; sxx += x * x; sxy += x * y
        if (rmin == "" || y < rmin) rmin = y; if (rmax == "" || y > rmax) rmax = y
    }
    slope = (m > 1 && m * sxx - sx * sx > 0) ? (m * sxy - sx * sy) / (m * sxx - sx * sx) : 0
    bad = ""
    printf "\nRSS: %.1f MB idle before, %.1f MB at warm-up end, %.1f MB at the end, %.1f MB after the clients left; after warm-up (%d s) %+.0f KB/min (least squares over %d samples; min %.1f, max %.1f MB)\n", \
        S[nb, "rss_kb"] / 1024, S[nw, "rss_kb"] / 1024, S[nd, "rss_kb"] / 1024, S[na, "rss_kb"] / 1024, warm, slope, m, rmin / 1024, rmax / 1024
    maxfd = maxpg = 0
    for (i = nb; i <= n; i++) { if (S[i, "fds"] > maxfd) maxfd = S[i, "fds"]; if (S[i, "pg_conns"] > maxpg) maxpg = S[i, "pg_conns"] }
    printf "file descriptors: %d before the clients, %d at most, %d after; Postgres connections: %d before, %d at most, %d after; threads %d\n", \
        S[nb, "fds"], maxfd, S[na, "fds"], S[nb, "pg_conns"], maxpg, S[na, "pg_conns"], S[na, "threads"]
    if (S[na, "fds"] != S[nb, "fds"]) bad = bad " fd-leak"
    if (S[na, "pg_conns"] != S[nb, "pg_conns"]) bad = bad " pg-conn-leak"
    ticks = S[nd, "match_ticks_total"] - S[n0, "match_ticks_total"]; late = S[nd, "match_late_ticks_total"] - S[n0, "match_late_ticks_total"]
    printf "ticks: %d run, %d started over one interval late (%.3f %%), lateness p99 %s ms, longest match_loop %s us, inputs dropped %d; clean clients: %d snapshots, %d missing (%.3f %%), longest gap %s ms; impaired: %d missing of %d (%.1f %%)\n", \
        ticks, late, ticks ? 100 * late / ticks : 0, late_p99(S[n0, "late_hist"], S[nd, "late_hist"]), S[nd, "match_tick_us_max"], \
        S[nd, "match_inputs_dropped_total"], R["snaps_clean"], R["snap_missing_clean"], \
        R["snaps_clean"] ? 100 * R["snap_missing_clean"] / (R["snaps_clean"] + R["snap_missing_clean"]) : 0, R["snap_gap_max_ms"], \
        R["snap_missing_impaired"], R["snaps_impaired"] + R["snap_missing_impaired"], \
        R["snaps_impaired"] ? 100 * R["snap_missing_impaired"] / (R["snaps_impaired"] + R["snap_missing_impaired"]) : 0
    if (ticks == 0 || late > ticks / 100) bad = bad " ticks-late"
    printf "reliable events: %d sent, %d deliveries of %d expected; duplicated %d, out of order %d; not arrived: between clean clients %d, between connected clients one of them impaired %d, with a disconnected client or an ended match %d (drained %s s)\n", \
        R["events"], R["echoes"], R["echoes_expected"], R["ev_dup"], R["ev_gap"], R["ev_missing"], R["ev_missing_impaired"], R["ev_lost_disc"], R["drain_s"]
    if (R["events"] == 0 || R["ev_missing"] + R["ev_dup"] + R["ev_gap"] + R["foreign"] > 0) bad = bad " reliable"
    printf "RPC: %d sent, %d echoed right, %d errors, %d wrong answers, %d cut by a disconnect, p99 %s ms; storage: %d writes, %d acknowledged, %d errors, %d cut by a disconnect, p99 %s ms; acknowledged writes in Postgres with their version: %d of %d\n", \
        R["rpc_sent"], R["rpc_ok"], R["rpc_err"], R["rpc_bad"], R["rpc_closed"], R["rpc_p99_ms"], R["st_sent"], R["st_ok"], R["st_err"], R["st_closed"], R["st_p99_ms"], found, acked
    if (R["rpc_ok"] == 0 || R["rpc_err"] + R["rpc_bad"] > 0 || R["st_ok"] == 0 || R["st_err"] > 0 || found != acked || acked != R["st_ok"]) bad = bad " requests"
    printf "clients: %d disconnected (%d clean, %d impaired), %d matches ended, %d sends refused; proxy: %d datagrams forwarded, %d dropped; server: %s rate-limited, %s violations, %s error answers, %s API-busy refusals\n", \
        R["disconnects"], R["disc_clean"], R["disc_impaired"], R["match_ends"], R["send_errors"], R["proxy_fwd"], R["proxy_drop"], \
        S[nd, "rate_limited_total"], S[nd, "violations_total"], S[nd, "request_errors_total"], S[nd, "api_busy_total"]
    if (R["disc_clean"] + R["match_ends"] + R["send_errors"] > 0) bad = bad " clients"
    if (R["disc_impaired"] > 0) bad = bad " impaired-clients-disconnected"
    if (R["ev_missing_impaired"] > 0) bad = bad " impaired-events-missing"
    print (bad == "" ? "verdict: ok" : "verdict: FAILED:" bad)
    print "columns: per minute since the clients started. srv%: server CPU (one core = 100). late: ticks started over one interval late. lat99ms: tick lateness p99 bound (server histogram). snapmiss: snapshots clean clients missed. events: reliable event deliveries; ev_bad: duplicated or out of order. errs: RPC/storage errors and refused sends. disc: clients disconnected so far. load1: machine load average."
    exit bad != ""
}'
