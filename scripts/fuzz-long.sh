#!/usr/bin/env bash
# Long fuzzing: runs every libFuzzer target of build/fuzz (clang, ASan and
# UBSan, tests/fuzz) one after another until it has done RUNS executions or
# SECONDS have passed, whichever comes first, and prints one line per target:
# executions, executions per second, coverage (edges, features), corpus size
# and findings. Not part of `make test`.
#
#   scripts/fuzz-long.sh [--runs N] [--seconds S] [--only NAME[,NAME...]]
#     --runs N      executions per target (default 10000000)
#     --seconds S   time cap per target (default 3600)
#     --only LIST   these targets only (names without fuzz_)
#
# Invariants: each target reads its seed corpus (tests/fuzz/corpus/NAME) and
# writes what it grows to build/fuzz/long/NAME, never into the source tree;
# a finding (crash, leak, timeout, UBSan report: UBSan halts here) is saved
# as build/fuzz/long/findings/NAME-<kind>-<hash>, the run goes on with the
# next target, and the script exits 1 when any target found something.
# Every target is bounded by its time cap (plus a minute of grace, enforced
# with `timeout`), so the whole run ends by itself.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=10000000 seconds=3600 only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --only) only=",$2,"; shift 2 ;;
        -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fuzz-long: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$runs$seconds" in *[!0-9]* | "") echo "fuzz-long: --runs and --seconds take whole numbers" >&2; exit 2 ;; esac

out=build/fuzz/long
mkdir -p "$out/findings" "$out/logs"
# UBSan reports are findings, not warnings, in a long run.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

found=0 total=0
printf '%-10s %12s %9s %8s %9s %7s %9s %s\n' target execs exec/s cov ft corpus seconds findings
for bin in build/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name="${bin##*/fuzz_}"
    if [ -n "$only" ] && [[ "$only" != *",$name,"* ]]; then continue; fi
    total=$((total + 1))
    mkdir -p "$out/$name"
    log="$out/logs/$name.log"
    t0=$(date +%s)
    rc=0
    timeout -k 10 $((seconds + 60)) "$bin" -runs="$runs" -max_total_time="$seconds" -max_len=4096 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/findings/$name-" "$out/$name" "tests/fuzz/corpus/$name" \
        >"$log" 2>&1 || rc=$?
    t1=$(date +%s)
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    # The last status line ("#N  DONE  cov: C ft: F corp: K/...") has the coverage.
    status="$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -n 1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")"
    corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status")"
    if [ "$rc" -eq 0 ]; then
        what=0
    else
        found=1
        what="rc=$rc: $(ls "$out/findings" | grep "^$name-" | tr '\n' ' ')(log $log)"
    fi
    printf '%-10s %12s %9s %8s %9s %7s %9s %s\n' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$((t1 - t0))" "$what"
done
[ "$total" -gt 0 ] || { echo "fuzz-long: no targets in build/fuzz (bash scripts/build.sh fuzz)" >&2; exit 1; }
exit "$found"
