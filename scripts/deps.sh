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
libnats-dev
libncurses-dev
postgresql
postgresql-contrib
postgresql-common
nats-server
clang
libclang-rt-14-dev
procps
iproute2
acl
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
# Where chromium cannot be installed, that test skips and says why; nothing
# else needs it, so its failure here does not stop the rest.
browser_deps() {
    local status
    status="$(dpkg-query -W -f='${Status}' chromium 2>/dev/null || true)"
    if [ "$status" != "install ok installed" ]; then
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        echo "deps: installing chromium (the console's browser test)"
        if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends chromium; }; then
            echo "deps: chromium could not be installed: the console browser test will be skipped"
        fi
    fi
    npm_deps
}

npm_deps() {
    local dir=tests/browser
    if ! command -v npm >/dev/null; then
        echo "deps: npm not found: the console browser test will be skipped"
        return 0
    fi
    if [ ! -d "$dir/node_modules/playwright-core" ] ||
        [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "deps: npm ci in $dir"
        npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error ||
            echo "deps: npm ci failed in $dir: the console browser test will be skipped"
    fi
}

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#wanted[@]} packages present"
    browser_deps
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
browser_deps
echo "deps: done"
