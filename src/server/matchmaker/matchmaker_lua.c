/* matchmaker_lua: the matchmaker functions of `kaos` (kn_matchmaker_lua.h).
 * Each acts as the session (arguments 1 and 2) connected to this node;
 * refusals are raised as error({code, message}) with the service's code
 * and text. */
#include "kn_matchmaker_lua.h"
#include "kn_error.h"
#include "kn_matchmaker_wire.h"
#include "kn_session.h"

#include <stdio.h>
#include <string.h>

#define MSG_CAP 256

static kn_matchmaker_lua *deps(lua_State *L, const char *fn)
{
    kn_matchmaker_lua *d = kn_lua_binding_ud(L);
    if (!d || !d->mm || !d->sessions)
        kn_lua_raise_codedf(L, KN_ERR_UNAVAILABLE, "kaos.%s is not available yet (server starting)",
                            fn);
    return d;
}

static int bad(lua_State *L, const char *what)
{
    return kn_lua_raise_coded(L, KN_ERR_INVALID_ARGUMENT, what);
}

/* An optional integer field of the table at idx (0 when nil). */
static int int_field(lua_State *L, int idx, const char *name)
{
    lua_getfield(L, idx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 1000000)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "ticket.%s must be a whole number", name);
    int v = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return v;
}

/* The properties table (on top): into props; how many. */
static size_t read_props(lua_State *L, kn_mm_prop *props)
{
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING) bad(L, "ticket.properties: names must be strings");
        if (n == KN_MM_PROPS_MAX)
            kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "more than %d properties",
                                KN_MM_PROPS_MAX);
        size_t name_len, len;
        const char *name = lua_tolstring(L, -2, &name_len);
        kn_mm_prop *p = &props[n];
        *p = (kn_mm_prop){0};
        if (lua_type(L, -1) == LUA_TNUMBER) {
            p->is_num = true;
            p->num = lua_tonumber(L, -1);
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            const char *v = lua_tolstring(L, -1, &len);
            if (len > KN_MM_PROP_VALUE_MAX)
                kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT,
                                    "property \"%.64s\": string values are up to %d bytes", name,
                                    KN_MM_PROP_VALUE_MAX);
            memcpy(p->str, v, len + 1);
        } else {
            kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT,
                                "property \"%.64s\" must be a string or a number", name);
        }
        if (name_len > KN_MM_PROP_NAME_MAX)
            kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "property names are 1-%d bytes",
                                KN_MM_PROP_NAME_MAX);
        memcpy(p->name, name, name_len + 1);
        n++;
        lua_pop(L, 1);
    }
    return n;
}

/* The widen list (on top): into widen; how many. */
static size_t read_widen(lua_State *L, kn_mm_widen *widen)
{
    size_t n = (size_t)lua_rawlen(L, -1);
    if (n > KN_MM_WIDEN_MAX)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "widen: at most %d rules", KN_MM_WIDEN_MAX);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        if (!lua_istable(L, -1)) bad(L, "widen: a list of {property, step, max}");
        lua_getfield(L, -1, "property");
        lua_getfield(L, -2, "step");
        lua_getfield(L, -3, "max");
        size_t len = 0;
        const char *prop = lua_type(L, -3) == LUA_TSTRING ? lua_tolstring(L, -3, &len) : NULL;
        if (!prop || len > KN_MM_PROP_NAME_MAX || lua_type(L, -2) != LUA_TNUMBER ||
            lua_type(L, -1) != LUA_TNUMBER)
            kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT,
                                "widen %zu: property (a name up to %d bytes), step and max "
                                "(numbers) are required",
                                i, KN_MM_PROP_NAME_MAX);
        widen[i] = (kn_mm_widen){.step = lua_tonumber(L, -2), .max = lua_tonumber(L, -1)};
        memcpy(widen[i].property, prop, len + 1);
        lua_pop(L, 4);
    }
    return n;
}

void kn_matchmaker_lua_request(lua_State *L, int idx, kn_mm_prop *props, kn_mm_widen *widen,
                               kn_mm_request *req)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) bad(L, "ticket must be a table");
    *req = (kn_mm_request){.min_count = int_field(L, idx, "min_count"),
                           .max_count = int_field(L, idx, "max_count"),
                           .count_multiple = int_field(L, idx, "count_multiple"),
                           .props = props,
                           .widen = widen};
    lua_getfield(L, idx, "query");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        bad(L, "ticket.query must be a string");
    req->query = lua_tostring(L, -1); /* the table's own string: alive with it */
    lua_pop(L, 1);
    lua_getfield(L, idx, "properties");
    if (!lua_isnil(L, -1) && !lua_istable(L, -1)) bad(L, "ticket.properties must be a table");
    if (lua_istable(L, -1)) req->n_props = read_props(L, props);
    lua_pop(L, 1);
    lua_getfield(L, idx, "widen");
    if (!lua_isnil(L, -1) && !lua_istable(L, -1)) bad(L, "ticket.widen must be a list");
    if (lua_istable(L, -1)) req->n_widen = read_widen(L, widen);
    lua_pop(L, 1);
}

/* The session (arguments 1 and 2) connected here as a player, or raises
 * NOT_FOUND. */
static kn_mm_player session_player(lua_State *L, kn_matchmaker_lua *d)
{
    kn_lua_session s = kn_lua_session_arg(L, d->sessions, 1);
    kn_mm_player p = {.conn = s.conn};
    memcpy(p.user_id, s.user_id, sizeof p.user_id);
    memcpy(p.session_id, s.session_id, sizeof p.session_id);
    memcpy(p.username, s.username, sizeof p.username);
    return p;
}

/* matchmaker_add(user_id, session_id, ticket) -> ticket id */
static int l_add(lua_State *L)
{
    kn_matchmaker_lua *d = deps(L, "matchmaker_add");
    kn_mm_player me = session_player(L, d);
    kn_mm_prop props[KN_MM_PROPS_MAX];
    kn_mm_widen widen[KN_MM_WIDEN_MAX];
    kn_mm_request req;
    kn_matchmaker_lua_request(L, 3, props, widen, &req);
    req.players = &me;
    req.n_players = 1;
    char id[37], msg[MSG_CAP] = "";
    int rc = kn_matchmaker_wire_add_session(d->mm, d->sessions, &req, id, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_pushstring(L, id);
    return 1;
}

/* matchmaker_remove(user_id, session_id, ticket) */
static int l_remove(lua_State *L)
{
    kn_matchmaker_lua *d = deps(L, "matchmaker_remove");
    const char *session_id = luaL_checkstring(L, 2), *ticket = luaL_checkstring(L, 3);
    luaL_checkstring(L, 1);
    char msg[MSG_CAP] = "";
    int rc = kn_mm_remove(d->mm, ticket, session_id, msg, sizeof msg);
    return rc ? kn_lua_raise_coded(L, rc, msg) : 0;
}

const luaL_Reg kn_matchmaker_lua_funcs[] = {
    {"matchmaker_add", l_add},
    {"matchmaker_remove", l_remove},
    {NULL, NULL},
};
