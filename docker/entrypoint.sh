#!/bin/sh
# Container entry point: apply migrations, make sure the server key exists, then serve.
# Configuration comes from KAOS_* environment variables (KAOS_DATABASE_URL, KAOS_DATA_DIR,
# KAOS_RUNTIME_PATH, KAOS_BIND); arguments are passed to `kaosnet serve`.
set -eu
kaosnet migrate up
kaosnet keygen
exec kaosnet serve "$@"
