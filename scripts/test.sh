#!/usr/bin/env bash
# What `make test` (and CI) does: install deps, check includes, build release + asan + sdk-only, then run
# the ctest suites of release and asan, each against a throwaway PostgreSQL (pg_virtualenv),
# and the release e2e tests once more with two network threads per server.
# KAOS_TEST_SKIP_ASAN=1 skips the sanitizer build and suite (quick local loops only; CI never sets it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Per-test default time limit (tests may set their own TIMEOUT property).
CTEST_TIMEOUT="${KAOS_CTEST_TIMEOUT:-600}"

declare -a SUMMARY=()
FAILED=0
TESTS_PASSED=0
TESTS_FAILED=0

record() { # STATUS NAME SECONDS
    SUMMARY+=("$(printf '%-5s %-36s %5ss' "$1" "$2" "$3")")
    [ "$1" != FAIL ] || FAILED=1
}

# step NAME CMD...: run CMD, record PASS/FAIL, never abort the script.
step() {
    local name="$1" start rc=0
    shift
    echo
    echo "==> $name"
    start=$SECONDS
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        record PASS "$name" $((SECONDS - start))
    else
        record FAIL "$name" $((SECONDS - start))
    fi
    return "$rc"
}

# ctest_suite KIND [ENV=VALUE...] [-- CTEST_ARGS...]: ctest of build/KIND inside a
# throwaway cluster (log: build/KIND/ctest$CTEST_LOG_SUFFIX.log).
# pg_virtualenv exports PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE for the e2e tests.
# shellcheck disable=SC2317 # called indirectly through step
ctest_suite() {
    local kind="$1" log="build/$1/ctest${CTEST_LOG_SUFFIX:-}.log" rc=0
    shift
    local envs=() args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    [ $# -gt 0 ] && shift && args=("$@")
    # Never let a developer's own database settings leak into the tests.
    (
        unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE PGCLUSTER \
            KAOS_DATABASE_URL
        for kv in "${envs[@]}"; do export "${kv?}"; done
        pg_virtualenv -t -- ctest --test-dir "build/$kind" --output-on-failure -j2 \
            --no-tests=error --timeout "$CTEST_TIMEOUT" "${args[@]}"
    ) 2>&1 | tee "$log" || rc=$?
    count_ctest "$log"
    return "$rc"
}

# count_ctest LOG: add ctest's "100% tests passed, 0 tests failed out of 12" to the totals.
count_ctest() {
    local line total failed
    line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n 1 || true)"
    if [ -n "$line" ]; then
        total="${line##* out of }"
        failed="$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")"
        TESTS_PASSED=$((TESTS_PASSED + total - failed))
        TESTS_FAILED=$((TESTS_FAILED + failed))
    fi
}

echo "==> checking packages (scripts/deps.sh)"
bash scripts/deps.sh
if [ "${KAOS_TEST_SKIP_ASAN:-}" = 1 ]; then
    echo "WARNING: KAOS_TEST_SKIP_ASAN=1: the sanitizer build and suite are skipped (local loops only)"
fi

# Who may include what: third-party headers only from their owner, internal
# headers only from their module (docs/architecture.md, Modules).
step "check includes" bash scripts/check-includes.sh || true

release_ok=0
asan_ok=0
step "build release" bash scripts/build.sh release && release_ok=1
if [ "${KAOS_TEST_SKIP_ASAN:-}" = 1 ]; then
    record SKIP "build asan (KAOS_TEST_SKIP_ASAN)" 0
else
    step "build asan" bash scripts/build.sh asan && asan_ok=1
fi
step "build sdk (standalone)" bash scripts/build.sh sdk || true

if [ "$release_ok" = 1 ]; then
    step "tests release" ctest_suite release || true
    # The end-to-end tests again with two network threads in every server the
    # harness starts (kaosnet reads KAOS_NET_THREADS): each client path through
    # the sharded gateway (docs/architecture.md). Impairment runs once, above.
    CTEST_LOG_SUFFIX=-net2 step "tests release e2e, 2 network threads" \
        ctest_suite release KAOS_NET_THREADS=2 -- -L e2e -E impairment || true
else
    record FAIL "tests release (not built)" 0
fi

if [ "${KAOS_TEST_SKIP_ASAN:-}" = 1 ]; then
    record SKIP "tests asan (KAOS_TEST_SKIP_ASAN)" 0
elif [ "$asan_ok" = 1 ]; then
    step "tests asan" ctest_suite asan \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 || true
else
    record FAIL "tests asan (not built)" 0
fi

# Fuzz smoke: every libFuzzer target runs a bounded number of executions over
# its seed corpus (a crash fails the suite). `make fuzz` runs them for longer.
# shellcheck disable=SC2317 # called indirectly through step
fuzz_smoke() {
    local rc=0
    ctest --test-dir build/fuzz --output-on-failure -L fuzz-smoke --no-tests=error 2>&1 \
        | tee build/fuzz/ctest.log || rc=$?
    count_ctest build/fuzz/ctest.log
    return "$rc"
}
if step "build fuzz" bash scripts/build.sh fuzz; then
    step "fuzz smoke" fuzz_smoke || true
fi

echo
echo "==> summary"
for line in "${SUMMARY[@]}"; do
    echo "  $line"
done
if [ "$FAILED" -ne 0 ]; then
    echo "RESULT: FAILED"
else
    echo "RESULT: OK"
fi
echo "tests: $TESTS_PASSED passed, $TESTS_FAILED failed"
exit "$FAILED"
