/* console_audit: the audit log page — newest first, searchable by user,
 * action or target, paginated by id. */
#include "console_internal.h"
#include "kn_db.h"
#include "kn_error.h"

#include <stdio.h>

static const kn_db_stmt list_audit = {
    "console_audit_list",
    "SELECT id::text, floor(extract(epoch FROM time))::bigint::text, username, role, action,"
    " target, detail, result::text, address FROM console_audit"
    " WHERE ($1 = '' OR username = $1 OR action ILIKE '%' || $1 || '%' OR target = $1)"
    " AND ($2 = '' OR id < $2::bigint) ORDER BY id DESC LIMIT $3::int",
    3};

static int audit_list(kn_console_call *c)
{
    int64_t before;
    int rc = kn_console__int_arg(c, "cursor", 0, 1, INT64_MAX, &before); /* an id */
    if (rc) return rc;
    static const char *const cols[] = {"id",     "time",   "username", "role",   "action",
                                       "target", "detail", "result",   "address"};
    return kn_console__query_page(c, &list_audit, cols, 9, 0, "entries");
}

const kn_console_route kn_console__audit_routes[] = {
    {"GET", "audit", KN_CONSOLE_READ_ONLY, audit_list},
    {0},
};
