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
 * friends_add and friends_delete also send the notifications of what they
 * did (kn_friends_tell), live through the binding's ud, a kn_friends_deps
 * (kn_friends_lua.h), which also gives add its max friends; friends_block
 * tells its deps->blocked of each user blocked (the status service).
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

/* A list's results while Lua builds the tables: friends or friends of
 * friends, freed by the matching function. */
typedef struct holder {
    kn_friend *friends;
    kn_friend_of_friend *fof;
    size_t n;
    char *cursor;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_friends_free(h->friends, h->n);
    kn_friends_of_friends_free(h->fof, h->n);
    kn_free(h->cursor);
    memset(h, 0, sizeof *h);
    return 0;
}

static const kn_friends_deps *ud_of(lua_State *L)
{
    return kn_lua_binding_ud(L);
}

/* The optional metadata table at idx as JSON text pushed on the stack (it
 * stays there while the text is used); NULL for nil. */
static const char *metadata_arg(lua_State *L, int idx, bool nil_ok)
{
    if (nil_ok && lua_isnoneornil(L, idx)) return NULL;
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t len;
    const char *why = "";
    int rc = kn_lua_push_json(L, idx, &len, &why);
    if (rc) kn_lua_raise_codedf(L, rc, "metadata: %s", why);
    return lua_tostring(L, -1);
}

typedef enum { VERB_ADD, VERB_DELETE, VERB_BLOCK } verb_kind;

/* friends_add/delete/block(user_id, {ids} or nil, {usernames} or nil
 * [, metadata for add]). Once the change committed, add and delete tell
 * the users what they did (kn_friends_tell, live through the ud's kn_out
 * when there is one) and a block tells the ud's blocked hook of each user
 * blocked (kn_friends_tell_blocks). */
static int verb(lua_State *L, const char *name, verb_kind kind)
{
    kn_db *db = kn_lua_db(L, name);
    const char *user_id = luaL_checkstring(L, 1);
    lua_settop(L, 4); /* an absent list is nil, not the first list's userdata pushed below */
    const char *metadata = kind == VERB_ADD ? metadata_arg(L, 4, true) : NULL;
    size_t n_ids, n_names;
    const char **ids = kn_lua_string_list(L, 2, true, "ids", &n_ids);
    const char **usernames = kn_lua_string_list(L, 3, true, "usernames", &n_names);
    const kn_friends_deps *ud = ud_of(L);
    char msg[MSG_CAP] = "";
    kn_friend_events *ev = kn_malloc(sizeof *ev);
    if (!ev) return kn_lua_raise_coded(L, KN_ERR_NOMEM, "out of memory");
    int rc;
    if (kind == VERB_ADD) {
        kn_friends_add_opts o = {ud ? ud->config.max_friends : 0, metadata, ev};
        rc = kn_friends_add_ex(db, &o, user_id, ids, n_ids, usernames, n_names, msg, sizeof msg);
    } else if (kind == VERB_DELETE) {
        rc = kn_friends_delete_events(db, user_id, ids, n_ids, usernames, n_names, ev, msg,
                                      sizeof msg);
    } else {
        rc = kn_friends_block_events(db, user_id, ids, n_ids, usernames, n_names, ev, msg,
                                     sizeof msg);
    }
    if (rc == KN_OK) {
        if (kind == VERB_BLOCK)
            kn_friends_tell_blocks(ud, user_id, ev);
        else
            kn_friends_tell(db, ud ? ud->out : NULL, user_id, ev);
    }
    kn_free(ev);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

static int k_friends_add(lua_State *L)
{
    return verb(L, "friends_add", VERB_ADD);
}

static int k_friends_delete(lua_State *L)
{
    return verb(L, "friends_delete", VERB_DELETE);
}

static int k_friends_block(lua_State *L)
{
    return verb(L, "friends_block", VERB_BLOCK);
}

/* friend_metadata_update(user_id, friend_id, metadata) */
static int k_friend_metadata_update(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "friend_metadata_update");
    const char *user_id = luaL_checkstring(L, 1);
    const char *friend_id = luaL_checkstring(L, 2);
    lua_settop(L, 3);
    const char *metadata = metadata_arg(L, 3, false);
    char msg[MSG_CAP] = "";
    int rc = kn_friends_metadata_update(db, user_id, friend_id, metadata, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

static int clamp_int(lua_Integer v)
{
    /* Past the int range stays out of range for the service to refuse. */
    return v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
}

static void push_cursor(lua_State *L, const char *cursor)
{
    if (cursor)
        lua_pushstring(L, cursor);
    else
        lua_pushnil(L);
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
    int lim = clamp_int(limit), st = clamp_int(state);
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
    push_cursor(L, h->cursor);
    return 2;
}

/* friends_of_friends_list(user_id, limit, cursor) -> list, cursor or nil.
 * An entry is {referrer = friend's id, user = <user table>}. */
static int k_friends_of_friends_list(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "friends_of_friends_list");
    const char *user_id = luaL_checkstring(L, 1);
    int lim = clamp_int(luaL_optinteger(L, 2, 0));
    const char *cursor = luaL_optstring(L, 3, NULL);
    holder *h = kn_lua_holder(L, sizeof(holder), "kaos.friends_holder", holder_gc);
    char msg[MSG_CAP] = "";
    int rc = kn_friends_of_friends_list(db, user_id, lim, cursor, &h->fof, &h->n, &h->cursor, msg,
                                        sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n, 0);
    for (size_t i = 0; i < h->n; i++) {
        lua_createtable(L, 0, 2);
        kn_lua_set_string(L, "referrer", h->fof[i].referrer);
        kn_lua_push_entity(L, &kn_user_entity, &h->fof[i].user);
        lua_setfield(L, -2, "user");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    push_cursor(L, h->cursor);
    return 2;
}

const luaL_Reg kn_friends_lua_funcs[] = {
    {"friends_add", k_friends_add},
    {"friends_delete", k_friends_delete},
    {"friends_remove", k_friends_delete}, /* the product spec's name for the same function */
    {"friends_block", k_friends_block},
    {"friends_list", k_friends_list},
    {"friend_metadata_update", k_friend_metadata_update},
    {"friends_of_friends_list", k_friends_of_friends_list},
    {NULL, NULL},
};
