/* console_accounts: search accounts and everything of one — profile,
 * devices and links, wallet and ledger, friends, groups, storage, live
 * sessions, notifications — and the writes: edit, ban/unban (a ban ends the
 * live sessions through the root's hook), unlink, delete, export.
 * Everything an account owns is read through its service's own function. */
#include "console_internal.h"
#include "kn_account.h"
#include "kn_db.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "kn_friends.h"
#include "kn_groups.h"
#include "kn_mem.h"
#include "kn_notify.h"
#include "kn_storage.h"

#include <stdio.h>
#include <string.h>

/* The one query the services have no function for: find accounts by any of
 * their ids (exact) or a username prefix, a page after a username. */
static const kn_db_stmt search = {
    "console_accounts_search",
    "SELECT u.id::text, u.username, coalesce(u.display_name, ''), coalesce(u.email, ''),"
    " floor(extract(epoch FROM u.create_time))::bigint::text,"
    " coalesce(floor(extract(epoch FROM u.disable_time))::bigint::text, '0')"
    " FROM users u WHERE u.id <> '00000000-0000-0000-0000-000000000000' AND ($1 = ''"
    " OR u.id::text = lower($1) OR u.username ILIKE replace(replace($1, '%', '\\%'), '_', '\\_') "
    "|| '%'"
    " OR u.email = lower($1) OR u.custom_id = $1"
    " OR EXISTS (SELECT 1 FROM user_device d WHERE d.id = $1 AND d.user_id = u.id))"
    " AND u.username > $2 ORDER BY u.username LIMIT $3::int",
    3};
/* The collections a user has objects in, for the account's storage tab. */
static const kn_db_stmt collections = {
    "console_account_collections",
    "SELECT DISTINCT collection FROM storage WHERE user_id = $1::uuid ORDER BY 1 LIMIT 100", 1};

static int accounts_search(kn_console_call *c)
{
    static const char *const cols[] = {"id",    "username",    "display_name",
                                       "email", "create_time", "disable_time"};
    return kn_console__query_page(c, &search, cols, 6, 1, "accounts");
}

static kn_json *account_json(kn_console_call *c, const kn_account *a)
{
    kn_json *o = kn_console__entity(&kn_user_entity, &a->user);
    kn_console__set_text(o, "email", a->email);
    kn_console__set_text(o, "custom_id", a->custom_id);
    kn_json *dev = kn_json_array();
    for (size_t i = 0; i < a->device_count; i++)
        kn_json_array_append_new(dev, kn_json_string(a->device_ids[i]));
    kn_json_object_set_new(o, "devices", dev);
    kn_json_object_set_new(o, "disable_time", kn_json_integer(a->disable_time));
    kn_console__set_json(o, "wallet", a->wallet);
    size_t conns = c->hooks->user_conns ? c->hooks->user_conns(c->hooks->ud, a->user.id) : 0;
    kn_json_object_set_new(o, "live_sessions", kn_json_integer((int64_t)conns));
    return o;
}

static int account_get(kn_console_call *c)
{
    const char *id;
    int rc = kn_console__need(c, "id", &id);
    if (rc) return rc;
    kn_account a = {0};
    if ((rc = kn_account_get(c->db, id, &a, c->msg, sizeof c->msg))) return rc;
    c->result = account_json(c, &a);
    kn_account_deinit(&a);
    return KN_OK;
}

static int account_ledger(kn_console_call *c)
{
    const char *id, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, "id", &id, &limit, &cur);
    if (rc) return rc;
    kn_wallet_ledger_entry *e = NULL;
    size_t n = 0;
    char *next = NULL;
    if ((rc = kn_wallet_ledger_list(c->db, id, (int)limit, cur, &e, &n, &next, c->msg,
                                    sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++) {
        kn_json *o = kn_json_object();
        kn_console__set_text(o, "id", e[i].id);
        kn_console__set_json(o, "changeset", e[i].changeset);
        kn_console__set_json(o, "metadata", e[i].metadata);
        kn_json_object_set_new(o, "create_time", kn_json_integer(e[i].create_time));
        kn_json_array_append_new(arr, o);
    }
    c->result = kn_console__list("entries", arr, next);
    kn_wallet_ledger_free(e, n);
    kn_free(next);
    return KN_OK;
}

static int account_friends(kn_console_call *c)
{
    const char *id, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, "id", &id, &limit, &cur);
    if (rc) return rc;
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL;
    if ((rc = kn_friends_list(c->db, id, KN_FRIEND_ANY, (int)limit, cur, &f, &n, &next, c->msg,
                              sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++) {
        kn_json *o = kn_console__entity(&kn_friend_entity, &f[i]);
        kn_json_object_set_new(o, "user", kn_console__entity(&kn_user_entity, &f[i].user));
        kn_json_array_append_new(arr, o);
    }
    c->result = kn_console__list("friends", arr, next);
    kn_friends_free(f, n);
    kn_free(next);
    return KN_OK;
}

static int account_groups(kn_console_call *c)
{
    const char *id, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, "id", &id, &limit, &cur);
    if (rc) return rc;
    kn_user_group *g = NULL;
    size_t n = 0;
    char *next = NULL;
    if ((rc = kn_groups_user_list(c->db, id, KN_GROUP_ANY, (int)limit, cur, &g, &n, &next, c->msg,
                                  sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++) {
        kn_json *o = kn_console__entity(&kn_group_entity, &g[i].group);
        kn_json_object_set_new(o, "state", kn_json_integer(g[i].state));
        kn_json_array_append_new(arr, o);
    }
    c->result = kn_console__list("groups", arr, next);
    kn_user_groups_free(g, n);
    kn_free(next);
    return KN_OK;
}

static int account_notifications(kn_console_call *c)
{
    const char *id, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, "id", &id, &limit, &cur);
    if (rc) return rc;
    kn_notification *notes = NULL;
    size_t n = 0;
    char *next = NULL;
    if ((rc = kn_notify_list(c->db, id, (int)limit, cur, &notes, &n, &next, c->msg, sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++)
        kn_json_array_append_new(arr, kn_console__entity(&kn_notification_entity, &notes[i]));
    c->result = kn_console__list("notifications", arr, n == (size_t)limit ? next : NULL);
    kn_notify_free(notes, n);
    kn_free(next);
    return KN_OK;
}

/* The user's objects: every collection they have, a page of each. */
static kn_json *storage_of(kn_console_call *c, const char *id, int *rc)
{
    const char *params[] = {id};
    kn_db_rows *rows = NULL;
    if ((*rc = kn_db_query(c->db, &collections, params, &rows))) {
        kn_db_fail(*rc, c->msg, sizeof c->msg);
        return NULL;
    }
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < kn_db_rows_count(rows) && !*rc; i++) {
        kn_storage_object *objs = NULL;
        size_t n = 0;
        char *next = NULL;
        *rc = kn_storage_list(c->db, NULL, id, kn_db_rows_get(rows, i, 0), KN_STORAGE_LIST_MAX,
                              NULL, &objs, &n, &next, c->msg, sizeof c->msg);
        for (size_t k = 0; k < n; k++)
            kn_json_array_append_new(arr, kn_console__entity(&kn_storage_object_entity, &objs[k]));
        kn_free(objs);
        kn_free(next);
    }
    kn_db_rows_free(rows);
    if (*rc) {
        kn_json_decref(arr);
        return NULL;
    }
    return arr;
}

static int account_storage(kn_console_call *c)
{
    const char *id;
    int rc = kn_console__need(c, "id", &id);
    if (rc) return rc;
    kn_json *arr = storage_of(c, id, &rc);
    if (rc) return rc;
    c->result = kn_console__list("objects", arr, NULL);
    return KN_OK;
}

/* Everything of the player, one JSON document (a data request). */
static int account_export(kn_console_call *c)
{
    int rc = account_get(c);
    if (rc) return rc;
    kn_json *doc = c->result;
    static const struct {
        const char *key, *list;
        kn_console_fn fn;
    } parts[] = {{"ledger", "entries", account_ledger},
                 {"friends", "friends", account_friends},
                 {"groups", "groups", account_groups},
                 {"notifications", "notifications", account_notifications},
                 {"storage", "objects", account_storage}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        c->result = NULL;
        if ((rc = parts[i].fn(c))) {
            kn_json_decref(doc);
            return rc;
        }
        kn_json_object_set_new(doc, parts[i].key,
                               kn_json_incref(kn_json_object_get(c->result, parts[i].list)));
        kn_json_decref(c->result);
    }
    c->result = doc;
    return KN_OK;
}

static int account_update(kn_console_call *c)
{
    const char *id;
    int rc = kn_console__need(c, "id", &id);
    if (rc) return rc;
    snprintf(c->target, sizeof c->target, "user %s", id);
    kn_account_changes u = {
        .username = kn_console__arg(c, "username"),
        .display_name = kn_console__arg(c, "display_name"),
        .avatar_url = kn_console__arg(c, "avatar_url"),
        .lang_tag = kn_console__arg(c, "lang_tag"),
        .location = kn_console__arg(c, "location"),
        .timezone = kn_console__arg(c, "timezone"),
        .metadata = kn_console__arg(c, "metadata"),
    };
    return kn_account_update(c->db, id, &u, c->msg, sizeof c->msg);
}

static int end_sessions(kn_console_call *c, const char *id, bool ban)
{
    if (!c->hooks->end_sessions) return KN_OK;
    int rc = c->hooks->end_sessions(c->hooks->ud, id, ban);
    if (rc) snprintf(c->msg, sizeof c->msg, "the account changed but its sessions did not end");
    return rc;
}

static int account_ban(kn_console_call *c)
{
    const char *id;
    int rc = kn_console__need(c, "id", &id);
    if (rc) return rc;
    snprintf(c->target, sizeof c->target, "user %s", id);
    if ((rc = kn_account_ban(c->db, id, c->msg, sizeof c->msg))) return rc;
    return end_sessions(c, id, true);
}

static int account_unban(kn_console_call *c)
{
    const char *id;
    int rc = kn_console__need(c, "id", &id);
    if (rc) return rc;
    snprintf(c->target, sizeof c->target, "user %s", id);
    return kn_account_unban(c->db, id, c->msg, sizeof c->msg);
}

static int account_unlink(kn_console_call *c)
{
    const char *id, *device = kn_console__arg(c, "device_id"), *what = kn_console__arg(c, "what");
    int rc = kn_console__need(c, "id", &id);
    if (rc) return rc;
    snprintf(c->target, sizeof c->target, "user %s %s %.60s", id, what ? what : "device",
             device ? device : "");
    if (device && *device)
        return kn_account_unlink_device(c->db, id, device, c->msg, sizeof c->msg);
    if (what && !strcmp(what, "email"))
        return kn_account_unlink_email(c->db, id, c->msg, sizeof c->msg);
    if (what && !strcmp(what, "custom"))
        return kn_account_unlink_custom(c->db, id, c->msg, sizeof c->msg);
    snprintf(c->msg, sizeof c->msg, "name device_id, or what = email | custom");
    return KN_ERR_INVALID_ARGUMENT;
}

static int account_delete(kn_console_call *c)
{
    const char *id;
    int rc = kn_console__need(c, "id", &id);
    if (rc) return rc;
    snprintf(c->target, sizeof c->target, "user %s", id);
    if ((rc = kn_account_delete(c->db, id, c->msg, sizeof c->msg))) return rc;
    return end_sessions(c, id, true);
}

const kn_console_route kn_console__accounts_routes[] = {
    {"GET", "accounts", KN_CONSOLE_READ_ONLY, accounts_search},
    {"GET", "account", KN_CONSOLE_READ_ONLY, account_get},
    {"GET", "account/ledger", KN_CONSOLE_READ_ONLY, account_ledger},
    {"GET", "account/friends", KN_CONSOLE_READ_ONLY, account_friends},
    {"GET", "account/groups", KN_CONSOLE_READ_ONLY, account_groups},
    {"GET", "account/notifications", KN_CONSOLE_READ_ONLY, account_notifications},
    {"GET", "account/storage", KN_CONSOLE_READ_ONLY, account_storage},
    {"GET", "account/export", KN_CONSOLE_READ_ONLY, account_export},
    {"POST", "account/update", KN_CONSOLE_DEVELOPER, account_update},
    {"POST", "account/ban", KN_CONSOLE_MAINTAINER, account_ban},
    {"POST", "account/unban", KN_CONSOLE_MAINTAINER, account_unban},
    {"POST", "account/unlink", KN_CONSOLE_DEVELOPER, account_unlink},
    {"POST", "account/delete", KN_CONSOLE_DEVELOPER, account_delete},
    {0},
};
