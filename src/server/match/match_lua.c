/* match_lua: the match engine's kaos.* functions — kaos.match_create,
 * match_list, match_get and match_signal (docs/matches.md) — registered with the
 * runtime as a binding (kn_match_lua.h), reaching Lua only through
 * kn_lua_bind.h. The engine (engine.c, query.c) stays free of Lua.
 *
 * Each function takes the engine from its binding's ud (a kn_match_engine
 * **, set by the root once the engine exists) and refuses while modules
 * load, where a created match would be created again by every VM that loads
 * the module. Engine refusals are raised as {code, message} tables. */
#include "kn_match_lua.h"
#include "kn_error.h"
#include "kn_match.h"
#include "kn_mem.h"

#include <stdint.h>

/* The mode is checked first: while modules load (the reloader's thread
 * included) the root may still be setting the engine pointer. */
static kn_match_engine *engine_of(lua_State *L, const char *fn)
{
    kn_match_engine *const *ud = kn_lua_binding_ud(L);
    kn_match_engine *e = kn_lua_mode(L) && ud ? *ud : NULL;
    if (!e) luaL_error(L, "%s: no match engine here", fn);
    return e;
}

/* match_create(name, params_table|nil) -> match id */
static int k_match_create(lua_State *L)
{
    kn_match_engine *e = engine_of(L, "match_create");
    const char *name = luaL_checkstring(L, 1);
    const char *params = "";
    size_t len = 0;
    if (!lua_isnoneornil(L, 2)) {
        const char *why;
        int rc = kn_lua_push_json(L, 2, &len, &why);
        if (rc == KN_ERR_NOMEM) return luaL_error(L, "match_create: out of memory");
        if (rc) return luaL_error(L, "match_create: params: %s", why);
        params = lua_tostring(L, -1);
    }
    char id[KN_MATCH_ID_MAX], msg[256] = "";
    int rc = kn_match_create(e, name, params, len, id, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_pushstring(L, id);
    return 1;
}

/* A match as scripts see it, pushed as one table. */
static void push_info(lua_State *L, const kn_match_info *m)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, m->match_id);
    lua_setfield(L, -2, "match_id");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "authoritative");
    lua_pushstring(L, m->label ? m->label : "");
    lua_setfield(L, -2, "label");
    lua_pushinteger(L, m->size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, m->tick_rate);
    lua_setfield(L, -2, "tick_rate");
    lua_pushstring(L, m->handler);
    lua_setfield(L, -2, "handler_name");
}

/* match_list(limit, authoritative, label, min_size, max_size, query) -> list */
static int k_match_list(lua_State *L)
{
    kn_match_engine *e = engine_of(L, "match_list");
    kn_match_list_query q = {
        .limit = (uint32_t)luaL_optinteger(L, 1, 10),
        .label = luaL_optstring(L, 3, NULL),
        .min_size = (int32_t)luaL_optinteger(L, 4, -1),
        .max_size = (int32_t)luaL_optinteger(L, 5, -1),
        .query = luaL_optstring(L, 6, NULL),
    };
    /* Argument 2 (authoritative) is accepted for Nakama compatibility: only
     * authoritative matches are listed (relayed ones have no labels). */
    kn_match_info *list;
    size_t n;
    char msg[256] = "";
    int rc = kn_match_list(e, &q, &list, &n, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_info(L, &list[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    kn_match_list_free(list, n);
    return 1;
}

/* match_get(match_id) -> {match_id, authoritative, label, size, tick_rate,
 * handler_name}, or nil when no authoritative match has that id. */
static int k_match_get(lua_State *L)
{
    kn_match_engine *e = engine_of(L, "match_get");
    kn_match_info info;
    int rc = kn_match_get(e, luaL_checkstring(L, 1), &info);
    if (rc == KN_ERR_NOT_FOUND) {
        lua_pushnil(L);
        return 1;
    }
    if (rc) return kn_lua_raise_coded(L, rc, "out of memory");
    push_info(L, &info);
    kn_free(info.label);
    return 1;
}

/* match_signal(match_id, data) -> response */
static int k_match_signal(lua_State *L)
{
    kn_match_engine *e = engine_of(L, "match_signal");
    const char *id = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_optlstring(L, 2, "", &len);
    char *res = NULL, msg[256] = "";
    size_t res_len = 0;
    int rc = kn_match_signal(e, id, data, len, 5000, &res, &res_len, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_pushlstring(L, res ? res : "", res_len);
    kn_free(res);
    return 1;
}

const luaL_Reg kn_match_lua_funcs[] = {
    {"match_create", k_match_create},
    {"match_list", k_match_list},
    {"match_get", k_match_get},
    {"match_signal", k_match_signal},
    {NULL, NULL},
};
