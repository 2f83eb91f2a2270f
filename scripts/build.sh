#!/usr/bin/env bash
# Configures and builds one flavour of KaosNet into build/KIND.
#   KIND: release (optimised server + tests), asan (Debug + ASan/UBSan),
#         sdk (client SDK alone, proves it builds without libpq/Lua),
#         fuzz (clang + libFuzzer targets of tests/fuzz).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

kind="${1:-}"
case "$kind" in
    release) cmake_args=(-DCMAKE_BUILD_TYPE=Release) ;;
    asan)    cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DKAOS_SANITIZE=ON) ;;
    sdk)     cmake_args=(-DKAOS_SDK_ONLY=ON) ;;
    fuzz)    cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DKAOS_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
    *)
        echo "usage: $0 release|asan|sdk|fuzz" >&2
        exit 2
        ;;
esac
shift

builddir="build/$kind"
jobs="$(nproc 2>/dev/null || echo 2)"

echo "build: configuring $builddir"
# Configure output is long and rarely interesting: keep it in a log, show it on failure.
mkdir -p "$builddir"
if ! cmake -S . -B "$builddir" "${cmake_args[@]}" "$@" >"$builddir/configure.log" 2>&1; then
    cat "$builddir/configure.log" >&2
    echo "build: configure of $builddir FAILED" >&2
    exit 1
fi

echo "build: compiling $builddir (-j$jobs)"
# Compiler warnings and errors go to stderr and stay visible; progress lines are dropped.
cmake --build "$builddir" -j"$jobs" >/dev/null \
    || { echo "build: compile of $builddir FAILED" >&2; exit 1; }
echo "build: $builddir OK"
