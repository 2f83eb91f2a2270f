#!/usr/bin/env bash
# bench/cluster/run.sh: a send to a user on another node (over the cluster
# bus, a real nats-server) against the same send to a user on the sending
# node, measured in the same run (bench_cluster_bus; bench/README.md).
# Prints the result lines; asserts nothing.
#
#   bench/cluster/run.sh [--quick] [--messages T] [--latency L] [--bytes B]
#
# Builds build/release when needed, starts nats-server on a free loopback
# port (stopped on exit whatever happens), runs the benchmark against it.
# Needs no PostgreSQL.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh
BUILD=${KAOS_BENCH_BUILD:-build/release}
messages=200000
lat=5000
bytes=64

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) messages=20000; lat=1000 ;;
        --messages) messages="${2:?}"; shift ;;
        --latency) lat="${2:?}"; shift ;;
        --bytes) bytes="${2:?}"; shift ;;
        -h | --help) sed -n '7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
bench_check_numbers "$messages" "$lat" "$bytes"

nats="$(command -v nats-server || true)"
[ -n "$nats" ] || for d in /usr/sbin /usr/local/sbin; do [ -x "$d/nats-server" ] && nats="$d/nats-server"; done
[ -n "$nats" ] || { bench_say "nats-server not found (scripts/deps.sh installs it)"; exit 1; }
bench_build "$BUILD/bench_cluster_bus"

nats_pid=""
log="$(mktemp "${TMPDIR:-/tmp}/kaos-bench-nats.XXXXXX")"
trap 'bench_stop_pid "$nats_pid"; rm -f "$log"' EXIT
trap 'exit 130' INT TERM
"$nats" -a 127.0.0.1 -p -1 >"$log" 2>&1 & # -1: a free port, named in its log
nats_pid=$!
port=""
for _ in $(seq 100); do
    port="$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$log")"
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { cat "$log" >&2; bench_say "nats-server did not start"; exit 1; }
timeout 300 "$BUILD/bench_cluster_bus" "nats://127.0.0.1:$port" "$nats_pid" "$messages" "$lat" "$bytes"
