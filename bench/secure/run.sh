#!/usr/bin/env bash
# bench/secure/run.sh: what transport security costs the server.
#  1. bench_crypto: handshake, seal/open per packet size, cookie check (one core).
#  2. the server's CPU over a fixed window while idle (baseline), under a flood
#     of cookie-less CONNECTs, and while holding N half-open connections
#     (valid cookie, ENet connected, no hello).
# Loopback only; bounded; numbers are reported, never asserted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. bench/lib/common.sh

SECONDS_PER=${SECONDS_PER:-5}
RATE=${RATE:-20000}
HALFOPEN=${HALFOPEN:-256}
BUILD=build/release
bench_build "$BUILD/bench_secure_flood"

echo "== primitives =="
"$BUILD/bench_crypto" 0.5

if [ -z "${KAOS_DATABASE_URL:-}" ]; then
    bash scripts/pg-local.sh start >&2
    url="$(bash scripts/pg-local.sh url)"
else
    url="$KAOS_DATABASE_URL"
fi
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

"$BUILD/kaosnet" serve --database-url "$url" --data-dir "$tmp/data" --bind 127.0.0.1 --port 0 --http-port 0 --console false \
    --migrate --log-level error --max-connections 1024 --max-handshakes 4096 \
    --handshake-timeout-ms 600000 --auth-timeout-ms 600000 --max-connections-per-address 0 \
    >"$tmp/out" 2>"$tmp/err" &
server_pid=$!
port=""
for _ in $(seq 100); do
    port="$(sed -n 's/^kaosnet ready udp [0-9.]*:\([0-9]*\) .*/\1/p' "$tmp/out")"
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/err" >&2; echo "server did not start" >&2; exit 1; }

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
window() { # label, then a command that runs for the window
    local label="$1" a b
    shift
    a=$(cpu)
    "$@" >"$tmp/flood.out"
    b=$(cpu)
    awk -v l="$label" -v d=$((b - a)) -v t="$ticks" -v s="$SECONDS_PER" \
        -v r="$(grep '^result' "$tmp/flood.out" | cut -d' ' -f2-)" \
        'BEGIN { printf "%-36s %10.3f %8.2f%%   %s\n", l, d / t, 100 * d / t / s, r }'
}

echo
echo "== server CPU over ${SECONDS_PER} s windows (same server, same run) =="
printf "%-36s %10s %9s   %s\n" "workload" "cpu_s" "cpu%" "detail"
window "idle (baseline)" sleep "$SECONDS_PER"
window "spoofed CONNECTs, ${RATE}/s, no cookie" "$BUILD/bench_secure_flood" spoof "$port" "$RATE" "$SECONDS_PER"
"$BUILD/bench_secure_flood" halfopen "$port" "$HALFOPEN" $((SECONDS_PER * 2 + 30)) >"$tmp/half.out" &
half_pid=$!
for _ in $(seq 300); do grep -q '^ready' "$tmp/half.out" && break; sleep 0.1; done
sleep 1
window "holding $(sed -n 's/^ready halfopen=//p' "$tmp/half.out") half-open connections" sleep "$SECONDS_PER"
kill "$half_pid" 2>/dev/null || true
wait "$half_pid" 2>/dev/null || true
window "idle again (after they left)" sleep "$SECONDS_PER"
