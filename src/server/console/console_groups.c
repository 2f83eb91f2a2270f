/* console_groups: groups by name prefix and a group's members, through the
 * groups service's listings. */
#include "console_internal.h"
#include "kn_account.h"
#include "kn_error.h"
#include "kn_groups.h"
#include "kn_mem.h"

static int groups_list(kn_console_call *c)
{
    const char *unused, *cur, *q = kn_console__arg(c, "q");
    int64_t limit;
    int rc = kn_console__page_args(c, NULL, &unused, &limit, &cur);
    if (rc) return rc;
    kn_groups_filter f = {.name_prefix = q && *q ? q : NULL, .open = -1};
    kn_group *g = NULL;
    size_t n = 0;
    char *next = NULL;
    if ((rc = kn_groups_list(c->db, &f, (int)limit, cur, &g, &n, &next, c->msg, sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++)
        kn_json_array_append_new(arr, kn_console__entity(&kn_group_entity, &g[i]));
    c->result = kn_console__list("groups", arr, next);
    kn_groups_free(g, n);
    kn_free(next);
    return KN_OK;
}

static int group_members(kn_console_call *c)
{
    const char *id, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, "id", &id, &limit, &cur);
    if (rc) return rc;
    kn_group_user *u = NULL;
    size_t n = 0;
    char *next = NULL;
    if ((rc = kn_groups_users_list(c->db, id, KN_GROUP_ANY, (int)limit, cur, &u, &n, &next, c->msg,
                                   sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++) {
        kn_json *o = kn_console__entity(&kn_user_entity, &u[i].user);
        kn_json_object_set_new(o, "state", kn_json_integer(u[i].state));
        kn_json_array_append_new(arr, o);
    }
    c->result = kn_console__list("members", arr, next);
    kn_group_users_free(u, n);
    kn_free(next);
    return KN_OK;
}

const kn_console_route kn_console__groups_routes[] = {
    {"GET", "groups", KN_CONSOLE_READ_ONLY, groups_list},
    {"GET", "group/members", KN_CONSOLE_READ_ONLY, group_members},
    {0},
};
