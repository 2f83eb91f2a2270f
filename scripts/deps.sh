#!/usr/bin/env bash
# Installs the Debian packages KaosNet needs to build, test and run locally.
# Idempotent: when everything is already installed it only checks and exits.
# Usage: scripts/deps.sh [EXTRA_PACKAGE...]
set -euo pipefail

PACKAGES="
build-essential
cmake
pkg-config
git
libenet-dev
liblua5.4-dev
lua5.4
libpq-dev
libprotobuf-c-dev
protobuf-c-compiler
libsodium-dev
libcmocka-dev
libjansson-dev
libmicrohttpd-dev
libncurses-dev
postgresql
postgresql-contrib
postgresql-common
clang
libclang-rt-14-dev
procps
iproute2
acl
chromium
nodejs
"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck disable=SC2206 # word splitting of the list is intended
wanted=($PACKAGES "$@")

missing=()
for pkg in "${wanted[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done

# The console's browser test drives Debian's chromium with the npm driver
# pinned in tests/browser/package-lock.json, installed there (never globally).
npm_deps() {
    local dir=tests/browser
    if ! command -v npm >/dev/null; then
        echo "deps: npm not found: the console browser test will be skipped"
        return 0
    fi
    if [ ! -d "$dir/node_modules/playwright-core" ] ||
        [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "deps: npm ci in $dir"
        npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    fi
}

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#wanted[@]} packages present"
    npm_deps
    exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
npm_deps
echo "deps: done"
