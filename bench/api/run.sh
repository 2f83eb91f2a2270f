#!/usr/bin/env bash
# bench/api/run.sh: API round trips per second over ENet: pings, a built-in C
# RPC (the ceiling), Lua RPCs and device logins against Postgres on the same
# machine. Prints one table; asserts nothing.
#
#   bench/api/run.sh [--quick] [--warmup S] [--window S] [--clients N] [--inflight K]
#                    [--login-clients N] [--configs 1core,shared] [--workloads LIST]
#                    [--api-workers N] [--seed-users N] [--raw FILE]
#
# Builds build/release if a binary is missing or older than the sources,
# starts the project-local PostgreSQL unless KAOS_DATABASE_URL is set (and
# stops it again if it was not running), makes a fresh database for the run
# (dropped at the end), and for each server configuration starts `kaosnet
# serve` with its own runtime directory (a copy of bench/api/bench_rpc.lua)
# and runs every workload with bench_api_loadgen:
#   1core   server on CPU 0 (taskset -c 0); the load generator and the server's
#           Postgres backends on CPU 1. The headline: Nakama's figures are 1 CPU.
#   shared  nothing pinned: server, load generator and Postgres share both CPUs.
# Load: 64 clients x 4 requests in flight for pings and RPCs, 8 x 4 for logins
# (two API workers serve them; a longer queue would only add waiting).
# Every process it starts is bounded by `timeout` and stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release

# Nakama's published single-CPU figures (not measured here; see bench/README.md).
NAKAMA_LUA_RPC=633
NAKAMA_LOGIN=500

warmup=2
window=10
clients=64
inflight=4
login_clients=8
configs="1core,shared"
workloads="ping,noop,echo,json,login_new,login_existing"
api_workers="" # empty: the server's default (2)
seed_users=100000
raw=""

usage() {
    sed -n '6,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) warmup=0.5; window=1.5 ;;
        --warmup) warmup="${2:?}"; shift ;;
        --window) window="${2:?}"; shift ;;
        --clients) clients="${2:?}"; shift ;;
        --inflight) inflight="${2:?}"; shift ;;
        --login-clients) login_clients="${2:?}"; shift ;;
        --configs) configs="${2:?}"; shift ;;
        --workloads) workloads="${2:?}"; shift ;;
        --api-workers) api_workers="${2:?}"; shift ;;
        --seed-users) seed_users="${2:?}"; shift ;;
        --raw) raw="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
IFS=, read -r -a config_list <<<"$configs"
IFS=, read -r -a workload_list <<<"$workloads"
for c in "${config_list[@]}"; do
    case "$c" in 1core | shared) ;; *) echo "run.sh: unknown config $c" >&2; exit 2 ;; esac
done
for w in "${workload_list[@]}"; do
    case "$w" in ping | noop | echo | json | login_new | login_existing) ;;
        *) echo "run.sh: unknown workload $w" >&2; exit 2 ;;
    esac
done
if [ "$(nproc)" -lt 2 ] && [[ ",$configs," == *",1core,"* ]]; then
    echo "run.sh: the 1core configuration needs 2 CPUs (server on one, load on the other)" >&2
    exit 2
fi

say() { echo "run.sh: $*" >&2; }

# --- build ------------------------------------------------------------------
bench_build "$BUILD/kaosnet" "$BUILD/bench_api_loadgen"

# --- state and cleanup -------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/kaos-bench-api.XXXXXX")"
results="$tmp/results"
: >"$results"
timeout_pid=""  # the `timeout` wrapping the server
loadgen_pid="" # the `timeout` wrapping the load generator, while it runs
server_pid=""

stop_server() {
    [ -n "$timeout_pid" ] || return 0
    # timeout passes TERM on to the server, which drains and exits.
    kill -TERM "$timeout_pid" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$timeout_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$timeout_pid" 2>/dev/null || true
    if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
    wait "$timeout_pid" 2>/dev/null || true
    timeout_pid=""
    server_pid=""
}

cleanup() {
    if [ -n "$loadgen_pid" ]; then
        kill -TERM "$loadgen_pid" 2>/dev/null || true
        wait "$loadgen_pid" 2>/dev/null || true
    fi
    stop_server
    bench_db_close
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- database ------------------------------------------------------------------
bench_db_open kaos_bench_api
"$BUILD/kaosnet" migrate up --database-url "$run_url" --log-level warn >&2

# A user base to log in against: seed_users users, each with a device, then
# ANALYZE. Without it the login rows depend on when autovacuum first analyzes
# the new tables: plans made while they hold a few dozen rows (sequential
# scans) stay cached while login_new grows them to thousands (see
# bench/README.md). Written against the schema of src/server/db/migrations.
case "$seed_users" in '' | *[!0-9]*) say "bad --seed-users '$seed_users'"; exit 2 ;; esac
if [ "$seed_users" -gt 0 ]; then
    say "seeding $seed_users users with devices"
    psql "$run_url" -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO users (id, username)
    SELECT gen_random_uuid(), 'bench-seed-' || g FROM generate_series(1, $seed_users) AS g;
INSERT INTO user_device (id, user_id)
    SELECT 'bench-seed-device-' || substr(username, 12), id FROM users;
ANALYZE;
SQL
fi

# --- server ---------------------------------------------------------------------
mkdir -p "$tmp/runtime" "$tmp/data"
cp bench/api/bench_rpc.lua "$tmp/runtime/"
port=""
key=""
db_pids=""

# Limits that would throttle a benchmark client, lifted for the run: the
# per-connection control-channel rate (30 messages/s by default), connections
# per address (all clients come from 127.0.0.1) and the failed-login lockouts.
# Everything else, the API worker count (2) included, is the default.
server_flags=(--rate-control-msgs 0 --rate-control-bytes 0 --max-connections-per-address 0
    --lockout-account-failures 0 --lockout-address-failures 0)
[ -n "$api_workers" ] && server_flags+=(--api-workers "$api_workers")

# Starts the server for a configuration, waits for its ready line; sets
# port, key, server_pid and db_pids (its Postgres backends, if local).
start_server() {
    local config="$1" pin=()
    [ "$config" = 1core ] && pin=(taskset -c 0)
    : >"$tmp/server.out"
    timeout -s TERM 3600 "${pin[@]}" "$BUILD/kaosnet" serve --database-url "$run_url" \
        --data-dir "$tmp/data" --runtime-path "$tmp/runtime" --bind 127.0.0.1 --port 0 \
        --http-port 0 --migrate --log-level warn "${server_flags[@]}" \
        >"$tmp/server.out" 2>"$tmp/server.err" &
    timeout_pid=$!
    bench_wait_ready "$timeout_pid" server || return 1
    server_pid="$(pgrep -P "$timeout_pid" || true)"
    [ -n "$server_pid" ] || { say "server did not become ready"; return 1; }
    # The API workers' connections; only sampled (and pinned) when they are
    # processes on this machine.
    db_pids=""
    local pid
    for pid in $(psql "$run_url" -X -tAc "SELECT pid FROM pg_stat_activity WHERE datname = \
        current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"); do
        [ -r "/proc/$pid/stat" ] || continue
        db_pids="${db_pids:+$db_pids,}$pid"
        if [ "$config" = 1core ]; then
            taskset -p -c 1 "$pid" >/dev/null 2>&1 || say "could not pin Postgres backend $pid to CPU 1"
        fi
    done
    [ -n "$db_pids" ] || say "Postgres backends not found locally: db CPU not measured"
}

step_timeout=$(awk -v w="$warmup" -v n="$window" 'BEGIN { printf "%d", 60 + w + n + 2 + 60 }')
for config in "${config_list[@]}"; do
    start_server "$config"
    lg_pin=()
    [ "$config" = 1core ] && lg_pin=(taskset -c 1)
    say "$config: server pid $server_pid, udp port $port, Postgres backends ${db_pids:-?}"
    for w in "${workload_list[@]}"; do
        n=$clients
        case "$w" in login_*) n=$login_clients ;; esac
        say "$config $w: $n clients x $inflight in flight, ${warmup} s warm-up, ${window} s window"
        # In the background with `wait`, so that INT or TERM reach the trap at
        # once (bash runs traps only between foreground commands); `timeout`
        # puts the load generator and its workers in a process group of their
        # own and passes the signal that stops it to all of them.
        timeout "$step_timeout" "${lg_pin[@]}" "$BUILD/bench_api_loadgen" --workload "$w" \
            --port "$port" --server-key "$key" --clients "$n" --inflight "$inflight" \
            --warmup "$warmup" --window "$window" --server-pid "$server_pid" \
            ${db_pids:+--db-pids "$db_pids"} >"$tmp/loadgen.out" 2>"$tmp/loadgen.err" &
        loadgen_pid=$!
        wait "$loadgen_pid" || true
        loadgen_pid=""
        line="$(grep '^result ' "$tmp/loadgen.out" || true)"
        sed 's/^/  /' "$tmp/loadgen.err" >&2
        [ -n "$line" ] || line="result status=failed workload=$w"
        echo "config=$config $line" >>"$results"
        if ! kill -0 "$server_pid" 2>/dev/null; then
            say "server exited"
            cat "$tmp/server.err" >&2
            stop_server
            start_server "$config"
        fi
    done
    stop_server
done
[ -n "$raw" ] && cp "$results" "$raw"

# --- table ----------------------------------------------------------------------
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
awk -v cores="$(nproc)" -v window="$window" -v warmup="$warmup" -v cpu="$cpu_model" \
    -v nk_rpc="$NAKAMA_LUA_RPC" -v nk_login="$NAKAMA_LOGIN" '
function kv(line, a,   n, i, f, p) {
    delete a
    n = split(line, f, " ")
    for (i = 1; i <= n; i++) { p = index(f[i], "="); if (p) a[substr(f[i], 1, p - 1)] = substr(f[i], p + 1) }
}
function ms(us) { return sprintf("%.2f", us / 1000) }
function per1k(v) { return v < 0 ? "-" : sprintf("%.4f", v) }
BEGIN {
    label["ping"] = "ping (net thread)"
    label["noop"] = "rpc kaos.noop (C)"
    label["echo"] = "rpc bench_echo (Lua)"
    label["json"] = "rpc bench_json (Lua)"
    label["login_new"] = "device login, new"
    label["login_existing"] = "device login, existing"
    nakama["echo"] = nk_rpc; nakama["json"] = nk_rpc
    nakama["login_new"] = nk_login; nakama["login_existing"] = nk_login
    cfgname["1core"] = "1 core"; cfgname["shared"] = "shared 2"
    printf "api round trips over ENet, loopback, %d CPUs (%s); %s s window after %s s warm-up\n", cores, cpu, window, warmup
    fmt = "%-9s %-23s %9s %9s %7s %7s %7s %6s %10s %10s %6s %8s %6s %8s %7s\n"
    printf fmt, "server", "workload", "in_flight", "req/s", "p50_ms", "p99_ms", "max_ms", "srv%", \
        "srv_s/1k", "db_s/1k", "lg%", "idle%", "errors", "nakama", "ratio"
}
{
    kv($0, r)
    c = r["config"]; w = r["workload"]
    if (r["status"] != "ok") { printf "%-9s %-23s  FAILED (see the log above)\n", cfgname[c], label[w]; next }
    rate[c, w] = r["req_per_s"]; cpu1k[c, w] = r["srv_cpu_s_per_1k"]; db1k[c, w] = r["db_cpu_s_per_1k"]
    errs = r["errors"] + r["local_errors"] + r["disconnects"] + r["unexpected"]
    nk = "-"; ratio = "-"
    if (c == "1core" && (w in nakama)) { nk = nakama[w]; ratio = sprintf("%.1fx", r["req_per_s"] / nakama[w]) }
    n = split(r["cpu_idle_pct"], idle, "/"); idles = ""
    for (j = 1; j <= n && j <= 4; j++) idles = idles (j > 1 ? "/" : "") (idle[j] == "-" ? "-" : sprintf("%.0f", idle[j]))
    printf fmt, cfgname[c], label[w], r["clients"] "x" r["inflight"], sprintf("%.0f", r["req_per_s"]), \
        ms(r["lat_p50_us"]), ms(r["lat_p99_us"]), ms(r["lat_max_us"]), \
        r["srv_cpu_s"] < 0 ? "-" : sprintf("%.0f", r["srv_cpu_s"] / r["window_s"] * 100), \
        per1k(r["srv_cpu_s_per_1k"]), per1k(r["db_cpu_s_per_1k"]), \
        sprintf("%.0f", r["lg_cpu_cores"] * 100), idles, errs, nk, ratio
    if (errs > 0 || r["not_created"] > 0)
        notes = notes sprintf("  %s %s: error answers %s, refused locally %s, disconnects %s, unexpected %s, login_new not created %s\n", \
            cfgname[c], w, r["errors"], r["local_errors"], r["disconnects"], r["unexpected"], r["not_created"])
    if (!(c in seen)) { seen[c] = 1; order[++nc] = c }
}
END {
    for (i = 1; i <= nc; i++) {
        c = order[i]
        if ((c, "noop") in cpu1k && cpu1k[c, "noop"] > 0) {
            line = sprintf("%s: server CPU per request relative to kaos.noop:", cfgname[c])
            split("ping echo json login_new login_existing", ws, " ")
            for (j = 1; j <= 5; j++)
                if ((c, ws[j]) in cpu1k && cpu1k[c, ws[j]] >= 0) line = line sprintf("  %s %.2fx", ws[j], cpu1k[c, ws[j]] / cpu1k[c, "noop"])
            print line
        }
    }
    # Requests per CPU-second of the server: what one fully busy core would
    # answer if the CPU were the only limit. Less sensitive than req/s to
    # other load on a shared machine, and comparable to a 1-CPU figure that
    # was CPU-bound (with the database elsewhere, as in Nakama'"'"'s runs).
    for (i = 1; i <= nc; i++) {
        c = order[i]
        line = sprintf("%s: answers per server CPU-second:", cfgname[c])
        split("ping noop echo json login_new login_existing", ws, " ")
        for (j = 1; j <= 6; j++) {
            w = ws[j]
            if (!((c, w) in cpu1k) || cpu1k[c, w] <= 0) continue
            per = 1000 / cpu1k[c, w]
            line = line sprintf("  %s %.0f", w, per)
            if (w in nakama) line = line sprintf(" (%.0fx)", per / nakama[w])
            if (w ~ /^login/ && db1k[c, w] > 0) line = line sprintf(" [%.0f with db]", 1000 / (cpu1k[c, w] + db1k[c, w]))
        }
        print line
    }
    print "  (Nx): over Nakama'"'"'s 1-CPU figure; [with db]: per CPU-second of the server and its Postgres backends together."
    print "in_flight: clients x requests outstanding per client. Latency: from the SDK call to the answer callback, in the load generator."
    print "srv%: server CPU (all threads) as a share of one CPU. srv_s/1k, db_s/1k: CPU seconds per 1000 answers of the server and of its"
    print "  Postgres backends. lg%: load generator CPU. idle%: idle share of CPU 0/CPU 1 over the window, whole machine (CPU 0 is"
    print "  the server'"'"'s in the 1-core rows: srv% well under 100 with idle% near 0 means something else ran there)."
    print "errors: error answers + refused sends + disconnects + unexpected answers."
    print "nakama: Nakama'"'"'s published 1-CPU figure (other hardware, other load tool, database on another machine; NOT measured here)."
    print "ratio: req/s / nakama, on the 1-core rows only. kaos.noop is measured here, in the same run: it is the ceiling of the RPC path."
    if (notes != "") printf "anomalies:\n%s", notes
}' "$results"
