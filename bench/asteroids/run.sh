#!/usr/bin/env bash
# bench/asteroids/run.sh: server CPU of the asteroids match (lua-examples/asteroids.lua) with bots.
#   usage: bench/asteroids/run.sh [--bots N] [--warmup S] [--window S] [--idle S]
#   defaults: 8 bots (one full match; more fill matches of 8), 3 s warm-up, 20 s window, 10 s idle
#
# Starts `kaosnet serve` (build/release, built when missing or older than the sources) on a fresh
# database, samples its CPU (/proc/PID/stat utime+stime, all threads) while idle, then runs
# kaos-asteroids-bots and samples again over a window inside their play time. Prints the server's
# share of one core, idle and loaded, its RSS, the bots' process CPU and the bots' own summary.
# Uses the project-local PostgreSQL (scripts/pg-local.sh) unless KAOS_DATABASE_URL is set. Every
# process it starts stops by itself or at exit. Reports numbers; asserts nothing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=build/release

bots=8
warmup=3
window=20
idle=10
usage() {
    sed -n '3,4p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
        --bots) bots="${2:?}"; shift ;;
        --warmup) warmup="${2:?}"; shift ;;
        --window) window="${2:?}"; shift ;;
        --idle) idle="${2:?}"; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
for v in "$bots" "$warmup" "$window" "$idle"; do
    case "$v" in '' | *[!0-9]*) echo "run.sh: numbers only" >&2; exit 2 ;; esac
done
[ "$bots" -ge 1 ] && [ "$bots" -le 32 ] || { echo "run.sh: 1-32 bots per process" >&2; exit 2; }

say() { echo "run.sh: $*" >&2; }

bench_build "$BUILD/kaosnet" "$BUILD/kaos-asteroids-bots"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kaos-bench-asteroids.XXXXXX")"
server_pid=""
bots_pid=""
cleanup() {
    bench_stop_pid "$bots_pid"
    bench_stop_pid "$server_pid"
    bench_db_close
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_db_open kaos_bench_asteroids

mkdir -p "$tmp/data"
"$BUILD/kaosnet" serve --database-url "$run_url" --data-dir "$tmp/data" \
    --bind 127.0.0.1 --port 0 --http-port 0 --migrate --log-level warn \
    --runtime-path lua-examples >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
bench_wait_ready "$server_pid" kaosnet || exit 1

tck="$(getconf CLK_TCK)"
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now_ns() { date +%s%N; }
# share of one core: ticks over elapsed ns
pct() { awk -v t="$1" -v ns="$2" -v hz="$tck" 'BEGIN { printf "%.2f", t / hz * 100 / (ns / 1e9) }'; }

say "idle for $idle s"
c0="$(cpu_of "$server_pid")"; t0="$(now_ns)"
sleep "$idle"
c1="$(cpu_of "$server_pid")"; t1="$(now_ns)"

play=$((warmup + window + 2))
say "$bots bots for $play s (window $window s after $warmup s)"
"$BUILD/kaos-asteroids-bots" -k "$key" -p "$port" -n "$bots" -d "$play" -q >"$tmp/bots.out" 2>&1 &
bots_pid=$!
sleep "$warmup"
c2="$(cpu_of "$server_pid")"; b2="$(cpu_of "$bots_pid")"; t2="$(now_ns)"
sleep "$window"
c3="$(cpu_of "$server_pid")"; b3="$(cpu_of "$bots_pid")"; t3="$(now_ns)"
rss="$(awk '/^VmRSS/ {print $2, $3}' "/proc/$server_pid/status")"
status=0
wait "$bots_pid" || status=$?
bots_pid=""

echo "server idle:        $(pct $((c1 - c0)) $((t1 - t0)))% of one core"
echo "server, $bots bots:    $(pct $((c3 - c2)) $((t3 - t2)))% of one core over ${window} s; RSS $rss"
echo "bots process:       $(pct $((b3 - b2)) $((t3 - t2)))% of one core"
cat "$tmp/bots.out"
[ "$status" -eq 0 ] || say "the bots exited $status"
exit "$status"
