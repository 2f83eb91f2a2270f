/* groups_lua: the groups functions of `kaos` (docs/lua-api.md), registered
 * with the runtime as a binding (kn_groups_lua.h) and reaching Lua only
 * through kn_lua_bind.h.
 *
 * They act for the user named by their first argument (the lists excepted:
 * group_users_list and groups_list need no user), through the same C
 * functions as the wire (kn_groups_*), so rules and messages are one. A nil
 * user for update, delete and the user verbs is the system (kn_groups.h).
 * Refusals of the service are raised as error({code = N, message = "..."});
 * a wrong type of an argument is an ordinary Lua error (a script bug).
 *
 * Memory: results are kept in a holder userdata with a __gc while the
 * tables are built, so a Lua error half-way never leaks them. */
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_groups.h"
#include "kn_groups_lua.h"
#include "kn_mem.h"

#include <limits.h>
#include <string.h>

#define MSG_CAP 256

typedef struct holder {
    kn_group group;
    kn_group *groups;
    kn_group_user *users;
    kn_user_group *user_groups;
    size_t n;
    char *cursor;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_group_deinit(&h->group);
    kn_groups_free(h->groups, h->n);
    kn_group_users_free(h->users, h->n);
    kn_user_groups_free(h->user_groups, h->n);
    kn_free(h->cursor);
    memset(h, 0, sizeof *h);
    return 0;
}

static holder *new_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(holder), "kaos.groups_holder", holder_gc);
}

static kn_out *out_of(lua_State *L)
{
    kn_out **out = kn_lua_binding_ud(L);
    return out ? *out : NULL;
}

static int clamp(lua_Integer v)
{
    return v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v; /* out of range stays so */
}

static const char *opt_field(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1); /* the string stays alive in the table */
    return s;
}

static lua_Integer int_field(lua_State *L, int t, const char *key, lua_Integer dflt)
{
    lua_getfield(L, t, key);
    lua_Integer v = luaL_optinteger(L, -1, dflt);
    lua_pop(L, 1);
    return v;
}

static int bool_field(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    int v = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* The spec's metadata, a table or JSON text, as text kept on the stack
 * (the call's stack holds it until the function returns); NULL when absent. */
static const char *metadata_field(lua_State *L, int t)
{
    lua_getfield(L, t, "metadata");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) == LUA_TTABLE) {
        const char *why;
        int rc = kn_lua_push_json(L, lua_gettop(L), NULL, &why);
        if (rc == KN_ERR_NOMEM) kn_lua_raise_coded(L, rc, "out of memory");
        if (rc) kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "metadata: %s", why);
        lua_remove(L, -2);
    }
    return luaL_checkstring(L, -1);
}

/* {name=, description=, avatar_url=, lang_tag=, metadata= (a table or JSON
 * text), open=, max_count=} */
static kn_group_spec read_spec(lua_State *L, int t)
{
    luaL_checktype(L, t, LUA_TTABLE);
    kn_group_spec s = {opt_field(L, t, "name"),
                       opt_field(L, t, "description"),
                       opt_field(L, t, "avatar_url"),
                       opt_field(L, t, "lang_tag"),
                       NULL,
                       bool_field(L, t, "open"),
                       clamp(int_field(L, t, "max_count", 0))};
    s.metadata = metadata_field(L, t);
    return s;
}

/* group_create(user_id, spec) -> group */
static int k_group_create(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "group_create");
    const char *user_id = luaL_checkstring(L, 1);
    kn_group_spec s = read_spec(L, 2);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_groups_create(db, user_id, &s, &h->group, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    kn_lua_push_entity(L, &kn_group_entity, &h->group);
    return 1;
}

/* group_update(user_id or nil, group_id, spec) */
static int k_group_update(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "group_update");
    const char *user_id = luaL_optstring(L, 1, NULL);
    const char *group_id = luaL_checkstring(L, 2);
    kn_group_spec s = read_spec(L, 3);
    char msg[MSG_CAP] = "";
    int rc = kn_groups_update(db, user_id, group_id, &s, msg, sizeof msg);
    return rc ? kn_lua_raise_coded(L, rc, msg) : 0;
}

typedef int (*group_fn)(kn_db *, const char *, const char *, char *, size_t);

/* group_delete (user_id or nil) / group_leave (user_id), group_id */
static int on_group(lua_State *L, const char *name, group_fn fn)
{
    kn_db *db = kn_lua_db(L, name);
    const char *user_id =
        fn == kn_groups_delete ? luaL_optstring(L, 1, NULL) : luaL_checkstring(L, 1);
    const char *group_id = luaL_checkstring(L, 2);
    char msg[MSG_CAP] = "";
    int rc = fn(db, user_id, group_id, msg, sizeof msg);
    return rc ? kn_lua_raise_coded(L, rc, msg) : 0;
}

static int k_group_delete(lua_State *L)
{
    return on_group(L, "group_delete", kn_groups_delete);
}

static int k_group_leave(lua_State *L)
{
    return on_group(L, "group_leave", kn_groups_leave);
}

static int k_group_join(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "group_join");
    const char *user_id = luaL_checkstring(L, 1);
    const char *group_id = luaL_checkstring(L, 2);
    char msg[MSG_CAP] = "";
    int rc = kn_groups_join(db, out_of(L), user_id, group_id, msg, sizeof msg);
    return rc ? kn_lua_raise_coded(L, rc, msg) : 0;
}

/* The batch verbs (user_id or nil, group_id, {user ids}); those that notify take out. */
typedef int (*batch_out_fn)(kn_db *, kn_out *, const char *, const char *, const char *const *,
                            size_t, char *, size_t);
typedef int (*batch_fn)(kn_db *, const char *, const char *, const char *const *, size_t, char *,
                        size_t);

static int batch(lua_State *L, const char *name, batch_out_fn with_out, batch_fn plain)
{
    kn_db *db = kn_lua_db(L, name);
    const char *user_id = luaL_optstring(L, 1, NULL);
    const char *group_id = luaL_checkstring(L, 2);
    lua_settop(L, 3);
    size_t n;
    const char **ids = kn_lua_string_list(L, 3, false, "user ids", &n);
    char msg[MSG_CAP] = "";
    int rc = with_out ? with_out(db, out_of(L), user_id, group_id, ids, n, msg, sizeof msg)
                      : plain(db, user_id, group_id, ids, n, msg, sizeof msg);
    return rc ? kn_lua_raise_coded(L, rc, msg) : 0;
}

static int k_group_users_add(lua_State *L)
{
    return batch(L, "group_users_add", kn_groups_users_add, NULL);
}

static int k_group_users_kick(lua_State *L)
{
    return batch(L, "group_users_kick", NULL, kn_groups_users_kick);
}

static int k_group_users_ban(lua_State *L)
{
    return batch(L, "group_users_ban", kn_groups_users_ban, NULL);
}

static int k_group_users_promote(lua_State *L)
{
    return batch(L, "group_users_promote", kn_groups_users_promote, NULL);
}

static int k_group_users_demote(lua_State *L)
{
    return batch(L, "group_users_demote", NULL, kn_groups_users_demote);
}

static int push_cursor(lua_State *L, const char *cursor)
{
    if (cursor)
        lua_pushstring(L, cursor);
    else
        lua_pushnil(L);
    return 2;
}

/* group_users_list(group_id, state, limit, cursor) -> list of {user=, state=}, cursor or nil */
static int k_group_users_list(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "group_users_list");
    const char *group_id = luaL_checkstring(L, 1);
    int state = clamp(luaL_optinteger(L, 2, KN_GROUP_ANY));
    int limit = clamp(luaL_optinteger(L, 3, 0));
    const char *cursor = luaL_optstring(L, 4, NULL);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_groups_users_list(db, group_id, state, limit, cursor, &h->users, &h->n, &h->cursor,
                                  msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n, 0);
    for (size_t i = 0; i < h->n; i++) {
        kn_lua_push_entity(L, &kn_group_user_entity, &h->users[i]);
        kn_lua_push_entity(L, &kn_user_entity, &h->users[i].user);
        lua_setfield(L, -2, "user");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return push_cursor(L, h->cursor);
}

/* user_groups_list(user_id, state, limit, cursor) -> list of {group=, state=}, cursor or nil */
static int k_user_groups_list(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "user_groups_list");
    const char *user_id = luaL_checkstring(L, 1);
    int state = clamp(luaL_optinteger(L, 2, KN_GROUP_ANY));
    int limit = clamp(luaL_optinteger(L, 3, 0));
    const char *cursor = luaL_optstring(L, 4, NULL);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_groups_user_list(db, user_id, state, limit, cursor, &h->user_groups, &h->n,
                                 &h->cursor, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n, 0);
    for (size_t i = 0; i < h->n; i++) {
        kn_lua_push_entity(L, &kn_user_group_entity, &h->user_groups[i]);
        kn_lua_push_entity(L, &kn_group_entity, &h->user_groups[i].group);
        lua_setfield(L, -2, "group");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return push_cursor(L, h->cursor);
}

/* groups_list({name=, lang_tag=, open=, members_min=, members_max=} or nil, limit, cursor) */
static int k_groups_list(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "groups_list");
    kn_groups_filter f = {NULL, NULL, -1, 0, 0};
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        f = (kn_groups_filter){opt_field(L, 1, "name"), opt_field(L, 1, "lang_tag"),
                               bool_field(L, 1, "open"), clamp(int_field(L, 1, "members_min", 0)),
                               clamp(int_field(L, 1, "members_max", 0))};
    }
    int limit = clamp(luaL_optinteger(L, 2, 0));
    const char *cursor = luaL_optstring(L, 3, NULL);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_groups_list(db, &f, limit, cursor, &h->groups, &h->n, &h->cursor, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n, 0);
    for (size_t i = 0; i < h->n; i++) {
        kn_lua_push_entity(L, &kn_group_entity, &h->groups[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return push_cursor(L, h->cursor);
}

const luaL_Reg kn_groups_lua_funcs[] = {
    {"group_create", k_group_create},
    {"group_update", k_group_update},
    {"group_delete", k_group_delete},
    {"group_join", k_group_join},
    {"group_leave", k_group_leave},
    {"group_users_add", k_group_users_add},
    {"group_users_kick", k_group_users_kick},
    {"group_users_ban", k_group_users_ban},
    {"group_users_promote", k_group_users_promote},
    {"group_users_demote", k_group_users_demote},
    {"group_users_list", k_group_users_list},
    {"user_groups_list", k_user_groups_list},
    {"groups_list", k_groups_list},
    {NULL, NULL},
};
