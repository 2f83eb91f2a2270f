/* kn_status_lua: the status functions of `kaos` — follow, unfollow and
 * publish status for a session connected to this node (status_lua.c; the
 * script API is in docs/lua-api.md), through the same C functions as the
 * wire (kn_status).
 *
 * The composition root registers them as one binding whose ud is a
 * kn_status_lua it fills before serving:
 *
 *     kn_lua_binding b = {"status", kn_status_lua_funcs, &status_lua};
 *
 * status_follow reads Postgres (kn_lua_db: not in run_once, module loading
 * or match handlers); the others run anywhere. */
#ifndef KN_STATUS_LUA_H
#define KN_STATUS_LUA_H

#include "kn_lua_bind.h"

typedef struct kn_status kn_status;
typedef struct kn_sessions kn_sessions;

typedef struct kn_status_lua {
    kn_status *status; /* NULL until set: the functions refuse */
    kn_sessions *sessions;
} kn_status_lua;

/* status_follow, status_unfollow, status_update (also as presence_update). */
extern const luaL_Reg kn_status_lua_funcs[];

#endif
