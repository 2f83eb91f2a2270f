/* status_lua: the status functions of `kaos` (kn_status_lua.h). Refusals
 * are raised as error({code, message}) with the service's code and text. */
#include "kn_status_lua.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_session.h"
#include "kn_status.h"

#include <stdio.h>
#include <string.h>

#define MSG_CAP 256

static kn_status_lua *deps(lua_State *L, const char *fn)
{
    kn_status_lua *d = kn_lua_binding_ud(L);
    if (!d || !d->status || !d->sessions)
        kn_lua_raise_codedf(L, KN_ERR_UNAVAILABLE, "kaos.%s is not available yet (server starting)",
                            fn);
    return d;
}

/* The session (arguments 1 and 2) connected here, or raises NOT_FOUND. */
static kn_presence session_of(lua_State *L, kn_status_lua *d)
{
    kn_lua_session s = kn_lua_session_arg(L, d->sessions, 1);
    return kn_presence_of(s.conn, s.user_id, s.session_id, s.username);
}

typedef struct holder {
    kn_status_user *users;
    kn_presence *online;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_free(h->users);
    kn_free(h->online);
    memset(h, 0, sizeof *h);
    return 0;
}

/* status_follow(user_id, session_id, {ids} or nil, {usernames} or nil)
 * -> the followed users' presences online now */
static int l_follow(lua_State *L)
{
    kn_status_lua *d = deps(L, "status_follow");
    kn_db *db = kn_lua_db(L, "status_follow");
    kn_presence me = session_of(L, d);
    lua_settop(L, 4);
    size_t n_ids, n_names;
    const char **ids = kn_lua_string_list(L, 3, true, "ids", &n_ids);
    const char **names = kn_lua_string_list(L, 4, true, "usernames", &n_names);
    holder *h = kn_lua_holder(L, sizeof *h, "kaos.status_holder", holder_gc);
    size_t n = 0, n_online = 0;
    char msg[MSG_CAP] = "";
    int rc = kn_status_resolve(db, me.user_id, ids, n_ids, names, n_names, &h->users, &n, msg,
                               sizeof msg);
    if (rc == KN_OK)
        rc = kn_status_follow(d->status, &me, h->users, n, &h->online, &n_online, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)n_online, 0);
    for (size_t i = 0; i < n_online; i++) {
        kn_lua_push_entity(L, &kn_presence_entity, &h->online[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* status_unfollow(user_id, session_id, {ids}) */
static int l_unfollow(lua_State *L)
{
    kn_status_lua *d = deps(L, "status_unfollow");
    kn_presence me = session_of(L, d);
    lua_settop(L, 3);
    size_t n;
    const char **ids = kn_lua_string_list(L, 3, false, "ids", &n);
    char msg[MSG_CAP] = "";
    int rc = kn_status_unfollow(d->status, &me, ids, n, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

/* status_update(user_id, session_id, status or nil): nil stops appearing online. */
static int l_update(lua_State *L)
{
    kn_status_lua *d = deps(L, "status_update");
    kn_presence me = session_of(L, d);
    const char *status = luaL_optstring(L, 3, NULL);
    char msg[MSG_CAP] = "";
    int rc = kn_status_update(d->status, &me, status, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

const luaL_Reg kn_status_lua_funcs[] = {
    {"status_follow", l_follow},
    {"status_unfollow", l_unfollow},
    {"status_update", l_update},
    {"presence_update", l_update},
    {NULL, NULL},
};
