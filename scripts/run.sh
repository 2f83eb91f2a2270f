#!/usr/bin/env bash
# What `make run` does: install deps, build release, make sure a database exists
# (the local dev cluster unless KAOS_DATABASE_URL is set), migrate, keygen, serve.
# Extra arguments are passed to `kaosnet serve`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=build/release/kaosnet
DATA_DIR="${KAOS_DATA_DIR:-.kaos/data}"

step() { echo "==> $*"; }

step "checking packages (scripts/deps.sh)"
bash scripts/deps.sh

step "building release (scripts/build.sh release)"
bash scripts/build.sh release

if [ -n "${KAOS_DATABASE_URL:-}" ]; then
    URL="$KAOS_DATABASE_URL"
    step "using database from KAOS_DATABASE_URL"
else
    step "starting the local PostgreSQL cluster (scripts/pg-local.sh start)"
    bash scripts/pg-local.sh start
    URL="$(bash scripts/pg-local.sh url)"
fi

step "applying migrations"
"$BIN" migrate up --database-url "$URL"

step "ensuring the server key exists in $DATA_DIR"
if [ ! -d "$DATA_DIR" ]; then
    mkdir -p "$DATA_DIR"
    chmod 700 "$DATA_DIR"
fi
"$BIN" keygen --data-dir "$DATA_DIR"

step "serving (Ctrl-C to stop; the local PostgreSQL keeps running: make pg-stop)"
# Editing a module in lua-examples/ reloads it in the running server.
exec "$BIN" serve --database-url "$URL" --data-dir "$DATA_DIR" --runtime-path lua-examples \
    --runtime-watch true "$@"
