#!/usr/bin/env bash
# Checks who may include what (docs/architecture.md, "Modules"): each
# third-party library has one owner, and every other file goes through the
# owner's project header. Exits non-zero and lists every offending
# file:line when a file under the scanned trees includes a header it may not.
#
# Rules are the table below, one per line: "header regex | allowed path regex".
# A line `#include <H>` or `#include "H"` whose H matches the header regex
# (extended regex, matched against the whole name) is allowed only in files
# whose path (relative to the repository root) matches the allowed regex.
# To add a rule, add a line. Needs bash and grep only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RULES='
sodium\.h  | ^src/common/kn_crypto\.c$
jansson\.h | ^src/server/json/json\.c$
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
