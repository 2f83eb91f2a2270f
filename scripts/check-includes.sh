#!/usr/bin/env bash
# Checks who may include what (docs/architecture.md, "Modules"): each
# third-party library has one owner, and every other file goes through the
# owner's project header. Exits non-zero and lists every offending
# file:line when a file under the scanned trees includes a header it may not.
#
# Rules are the table below, one per line: "header regex | allowed path regex"
# (the header regex must not contain '|': the first one separates the two).
# A line `#include <H>` or `#include "H"` whose H matches the header regex
# (extended regex, matched against the whole name) is allowed only in files
# whose path (relative to the repository root) matches the allowed regex.
# To add a rule, add a line. Needs bash and grep only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RULES='
# Third-party headers: only their owner (docs/architecture.md, Modules).
sodium\.h                    | ^src/common/kn_crypto\.c$
jansson\.h                   | ^src/server/json/json\.c$
lua\.h                       | ^src/server/runtime/
lauxlib\.h                   | ^src/server/runtime/
lualib\.h                    | ^src/server/runtime/
libpq-fe\.h                  | ^src/server/db/
enet/enet\.h                 | ^(src/server/net/net(_alloc|_batch)?\.c|client-sdk/src/transport\.c)$
kn_enet_rto\.h               | ^(src/server/net/net\.c|client-sdk/src/transport\.c)$
microhttpd\.h                | ^src/server/http/
nats/nats\.h                 | ^src/server/cluster/bus_nats\.c$
protobuf-c/protobuf-c\.h     | ^src/common/
# Internal headers: only their own module (the JSON half of the codec
# shares the codec allocator, docs/architecture.md).
runtime_internal\.h          | ^src/server/runtime/
vm_alloc\.h                  | ^src/server/runtime/
match_internal\.h            | ^src/server/match/(engine|query)\.c$
db_internal\.h               | ^src/server/db/
kn_codec_internal\.h         | ^(src/common/|src/server/json/codec_json\.c$)
client_internal\.h           | ^client-sdk/src/
groups_internal\.h           | ^src/server/groups/
console_internal\.h          | ^src/server/console/
# The admin console sits above every service: only the composition root and
# the command line (console-user) use it.
kn_console\.h                | ^src/server/(console/|server\.c$|main\.c$)
# The client SDK public header: the SDK itself and its examples; the
# server links no SDK.
kaos\.h                      | ^client-sdk/
'

# The trees the rules govern: the project's own code (tests, benchmarks and
# fuzz targets use the wrappers too, but are not held to the rule).
SCAN_DIRS=(src client-sdk)

status=0
while IFS= read -r rule; do
    # Skip blank lines and comments in the table.
    [[ -z "${rule//[[:space:]]/}" || "$rule" =~ ^[[:space:]]*# ]] && continue
    header="$(sed -E 's/^[[:space:]]*//; s/[[:space:]]*\|.*$//' <<<"$rule")"
    allowed="$(sed -E 's/^[^|]*\|[[:space:]]*//; s/[[:space:]]*$//' <<<"$rule")"
    pattern="^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]${header}[>\"]"
    # grep exits 1 when nothing matches: that is the good case here.
    hits="$(grep -rnE --include='*.c' --include='*.h' "$pattern" "${SCAN_DIRS[@]}" || true)"
    while IFS= read -r hit; do
        [[ -z "$hit" ]] && continue
        file="${hit%%:*}"
        if ! grep -qE "$allowed" <<<"$file"; then
            echo "check-includes: $hit (only files matching '$allowed' may include it)" >&2
            status=1
        fi
    done <<<"$hits"
done <<<"$RULES"

if [[ $status -eq 0 ]]; then
    echo "check-includes: OK"
fi
exit $status
