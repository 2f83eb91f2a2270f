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
    int64_t limit, before;
    int rc;
    if ((rc = kn_console__int_arg(c, "limit", 50, 1, 200, &limit)) ||
        (rc = kn_console__int_arg(c, "cursor", 0, 0, INT64_MAX, &before)))
        return rc;
    const char *q = kn_console__arg(c, "q");
    char lim[24], cur[24] = "";
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    if (before) snprintf(cur, sizeof cur, "%lld", (long long)before);
    const char *params[] = {q ? q : "", cur, lim};
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(c->db, &list_audit, params, &rows)))
        return kn_db_fail(rc, c->msg, sizeof c->msg);
    static const char *const cols[] = {"id",     "time",   "username", "role",   "action",
                                       "target", "detail", "result",   "address"};
    kn_json *arr = kn_json_array();
    size_t n = kn_db_rows_count(rows);
    for (size_t i = 0; i < n; i++) {
        kn_json *o = kn_json_object();
        for (size_t k = 0; k < 9; k++)
            kn_console__set_text(o, cols[k], kn_db_rows_get(rows, i, k));
        kn_json_array_append_new(arr, o);
    }
    const char *next = n == (size_t)limit ? kn_db_rows_get(rows, n - 1, 0) : NULL;
    c->result = kn_console__list("entries", arr, next);
    kn_db_rows_free(rows);
    return KN_OK;
}

const kn_console_route kn_console__audit_routes[] = {
    {"GET", "audit", KN_CONSOLE_READ_ONLY, audit_list},
    {0},
};
