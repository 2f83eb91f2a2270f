/* rpc_lua: kaos.rpc_call_async (kn_rpc_lua.h), reaching Lua only through
 * kn_lua_bind.h. The queueing, limits and counters are kn_rpc_call_async's;
 * this file turns Lua arguments into its call and its refusals into
 * {code, message} errors. */
#include "kn_rpc_lua.h"
#include "kn_error.h"
#include "kn_rpc.h"

#include <string.h>

/* rpc_call_async(id, payload = "" | string | table) -> nothing. A table
 * payload is sent as its JSON text (kaos.json_encode). */
static int k_rpc_call_async(lua_State *L)
{
    size_t id_len = 0, len = 0;
    const char *id = luaL_checklstring(L, 1, &id_len);
    const char *payload = "";
    if (lua_istable(L, 2)) {
        const char *why;
        int rc = kn_lua_push_json(L, 2, &len, &why);
        if (rc == KN_ERR_NOMEM) return luaL_error(L, "rpc_call_async: out of memory");
        if (rc)
            return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "rpc_call_async: payload: %s",
                                       why);
        payload = lua_tostring(L, -1);
    } else if (!lua_isnoneornil(L, 2)) {
        payload = luaL_checklstring(L, 2, &len);
    }
    /* The mode first: while modules load the root may still be setting the pointer. */
    if (!kn_lua_mode(L))
        return kn_lua_raise_coded(L, KN_ERR_UNAVAILABLE,
                                  "rpc_call_async is not available while modules load");
    kn_rpc *const *ud = kn_lua_binding_ud(L);
    kn_rpc *rpc = ud ? *ud : NULL;
    if (!rpc)
        return kn_lua_raise_coded(L, KN_ERR_UNAVAILABLE, "rpc_call_async: no API workers here");
    if (id_len != strlen(id))
        return kn_lua_raise_coded(L, KN_ERR_INVALID_ARGUMENT,
                                  "rpc_call_async: rpc id must not contain a NUL byte");
    char msg[256] = "";
    int rc = kn_rpc_call_async(rpc, id, payload, len, msg, sizeof msg);
    if (rc) return kn_lua_raise_codedf(L, rc, "rpc_call_async \"%.128s\": %s", id, msg);
    return 0;
}

const luaL_Reg kn_rpc_lua_funcs[] = {
    {"rpc_call_async", k_rpc_call_async},
    {NULL, NULL},
};
