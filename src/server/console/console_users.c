/* console_users: the console's own users, for admins — list, add, set a
 * password (their sessions end), remove — through the same functions as
 * `kaosnet console-user`. An admin cannot remove their own user (the last
 * admin would lock everyone out). */
#include "console_internal.h"
#include "kn_db.h"
#include "kn_error.h"

#include <stdio.h>
#include <string.h>

static const kn_db_stmt list_users = {
    "console_users_list",
    "SELECT username, role, floor(extract(epoch FROM create_time))::bigint::text FROM console_user"
    " WHERE ($1 = '' OR username LIKE '%' || $1 || '%') AND username > $2"
    " ORDER BY username LIMIT $3::int",
    3};

static int users_list(kn_console_call *c)
{
    static const char *const cols[] = {"username", "role", "create_time"};
    return kn_console__query_page(c, &list_users, cols, 3, 0, "users");
}

static int users_add(kn_console_call *c)
{
    const char *name, *password, *role_name;
    kn_console_role role;
    int rc;
    if ((rc = kn_console__need(c, "username", &name)) ||
        (rc = kn_console__need(c, "password", &password)) ||
        (rc = kn_console__need(c, "role", &role_name)))
        return rc;
    snprintf(c->target, sizeof c->target, "console user %.64s as %.16s", name, role_name);
    if (kn_console_role_parse(role_name, &role)) {
        snprintf(c->msg, sizeof c->msg, "role: admin, developer, maintainer or read-only");
        return KN_ERR_INVALID_ARGUMENT;
    }
    return kn_console_user_add(c->db, name, password, role, c->msg, sizeof c->msg);
}

static int users_passwd(kn_console_call *c)
{
    const char *name, *password;
    int rc;
    if ((rc = kn_console__need(c, "username", &name)) ||
        (rc = kn_console__need(c, "password", &password)))
        return rc;
    snprintf(c->target, sizeof c->target, "console user %.64s", name);
    return kn_console_user_passwd(c->db, name, password, c->msg, sizeof c->msg);
}

static int users_remove(kn_console_call *c)
{
    const char *name;
    int rc = kn_console__need(c, "username", &name);
    if (rc) return rc;
    snprintf(c->target, sizeof c->target, "console user %.64s", name);
    if (!strcmp(name, c->who->username)) {
        snprintf(c->msg, sizeof c->msg, "you cannot remove your own console user");
        return KN_ERR_FAILED_PRECONDITION;
    }
    return kn_console_user_remove(c->db, name, c->msg, sizeof c->msg);
}

const kn_console_route kn_console__users_routes[] = {
    {"GET", "users", KN_CONSOLE_ADMIN, users_list},
    {"POST", "users/add", KN_CONSOLE_ADMIN, users_add},
    {"POST", "users/passwd", KN_CONSOLE_ADMIN, users_passwd},
    {"POST", "users/remove", KN_CONSOLE_ADMIN, users_remove},
    {0},
};
