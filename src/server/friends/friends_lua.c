/* friends_lua: the friends functions of `kaos` (docs/lua-api.md),
 * registered with the runtime as a binding (kn_friends_lua.h) and reaching
 * Lua only through kn_lua_bind.h.
 *
 * They act for the user named by their first argument, through the same C
 * functions as the wire (kn_friends_*), so rules and messages are one.
 * Refusals of the service are raised as error({code = N, message = "..."})
 * with N the wire code; a wrong type of an argument is an ordinary Lua
 * error (a script bug), except list elements, which are the service's
 * INVALID_ARGUMENT as in the account functions.
 *
 * friends_add also sends the notifications of what it did (kn_friends_tell),
 * live through the binding's ud, a kn_friends_deps (kn_friends_lua.h);
 * friends_block tells its deps->blocked of each user blocked.
 *
 * Memory: a list's results are kept in a holder userdata with a __gc while
 * the tables are built, so a Lua error half-way never leaks them. */
#include "kn_friends_lua.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_friends.h"
#include "kn_mem.h"

#include <limits.h>
#include <string.h>

#define MSG_CAP 256

typedef struct holder {
    kn_friend *friends;
    size_t n;
    char *cursor;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_friends_free(h->friends, h->n);
    kn_free(h->cursor);
    memset(h, 0, sizeof *h);
    return 0;
}

typedef int (*events_fn)(kn_db *, const char *, const char *const *, size_t, const char *const *,
                         size_t, kn_friend_events *, char *, size_t);
typedef void (*tell_fn)(lua_State *L, kn_db *db, const char *user_id, const kn_friend_events *ev);

/* friends_add/delete/block(user_id, {ids} or nil, {usernames} or nil): fn
 * reports what the change did in ev, and tell (when not NULL) passes it on
 * once it committed, through the binding's ud (the kn_friends_deps, when
 * the root gave one). */
static int verb(lua_State *L, const char *name, events_fn fn, tell_fn tell)
{
    kn_db *db = kn_lua_db(L, name);
    const char *user_id = luaL_checkstring(L, 1);
    lua_settop(L, 3); /* an absent list is nil, not the first list's userdata pushed below */
    size_t n_ids, n_names;
    const char **ids = kn_lua_string_list(L, 2, true, "ids", &n_ids);
    const char **usernames = kn_lua_string_list(L, 3, true, "usernames", &n_names);
    char msg[MSG_CAP] = "";
    kn_friend_events *ev = kn_malloc(sizeof *ev);
    if (!ev) return kn_lua_raise_coded(L, KN_ERR_NOMEM, "out of memory");
    int rc = fn(db, user_id, ids, n_ids, usernames, n_names, ev, msg, sizeof msg);
    if (rc == KN_OK && tell) tell(L, db, user_id, ev);
    kn_free(ev);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

/* An add's invites and accepts become notifications, live through deps->out. */
static void tell_adds(lua_State *L, kn_db *db, const char *user_id, const kn_friend_events *ev)
{
    const kn_friends_deps *deps = kn_lua_binding_ud(L);
    kn_friends_tell(db, deps ? deps->out : NULL, user_id, ev);
}

/* A block ends the blocked users' status follows of the caller (deps->blocked). */
static void tell_blocks(lua_State *L, kn_db *db, const char *user_id, const kn_friend_events *ev)
{
    (void)db;
    kn_friends_tell_blocks(kn_lua_binding_ud(L), user_id, ev);
}

static int k_friends_add(lua_State *L)
{
    return verb(L, "friends_add", kn_friends_add_events, tell_adds);
}

/* A delete tells nobody. */
static int delete_events(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                         const char *const *usernames, size_t n_usernames, kn_friend_events *ev,
                         char *msg, size_t cap)
{
    ev->n = 0;
    return kn_friends_delete(db, user_id, ids, n_ids, usernames, n_usernames, msg, cap);
}

static int k_friends_delete(lua_State *L)
{
    return verb(L, "friends_delete", delete_events, NULL);
}

static int k_friends_block(lua_State *L)
{
    return verb(L, "friends_block", kn_friends_block_events, tell_blocks);
}

/* friends_list(user_id, limit, state, cursor) -> list, cursor or nil. A
 * friend is {user = <user table>, state = N, update_time = T}. */
static int k_friends_list(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "friends_list");
    const char *user_id = luaL_checkstring(L, 1);
    lua_Integer limit = luaL_optinteger(L, 2, 0);
    lua_Integer state = luaL_optinteger(L, 3, KN_FRIEND_ANY);
    const char *cursor = luaL_optstring(L, 4, NULL);
    /* Past the int range stays out of range for the service to refuse. */
    int lim = limit < INT_MIN ? INT_MIN : limit > INT_MAX ? INT_MAX : (int)limit;
    int st = state < INT_MIN ? INT_MIN : state > INT_MAX ? INT_MAX : (int)state;
    holder *h = kn_lua_holder(L, sizeof(holder), "kaos.friends_holder", holder_gc);
    char msg[MSG_CAP] = "";
    int rc = kn_friends_list(db, user_id, st, lim, cursor, &h->friends, &h->n, &h->cursor, msg,
                             sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n, 0);
    for (size_t i = 0; i < h->n; i++) {
        kn_lua_push_entity(L, &kn_friend_entity, &h->friends[i]);
        kn_lua_push_entity(L, &kn_user_entity, &h->friends[i].user);
        lua_setfield(L, -2, "user");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    if (h->cursor)
        lua_pushstring(L, h->cursor);
    else
        lua_pushnil(L);
    return 2;
}

const luaL_Reg kn_friends_lua_funcs[] = {
    {"friends_add", k_friends_add},
    {"friends_delete", k_friends_delete},
    {"friends_block", k_friends_block},
    {"friends_list", k_friends_list},
    {NULL, NULL},
};
