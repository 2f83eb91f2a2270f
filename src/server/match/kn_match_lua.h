/* kn_match_lua: the match engine's kaos.* functions — kaos.match_create,
 * match_list, match_get and match_signal (match_lua.c; docs/matches.md). The engine
 * itself (engine.c, query.c) knows no Lua; the Lua match *handler*, the
 * vtable that runs match_init/match_loop in a VM, is the runtime's
 * (kn_runtime_match_factory).
 *
 * The composition root registers them with the runtime as one binding:
 *
 *     kn_match_engine *engine = NULL;  -- set once the engine exists
 *     kn_lua_binding b = {"match", kn_match_lua_funcs, &engine};
 *
 * ud is a kn_match_engine ** because the engine is created after the
 * runtime (it needs the runtime's handler factory). They raise "NAME: no
 * match engine here" while the pointer is NULL and while modules load (a
 * match created at a module's top level would be created again by every VM
 * that loads the module, match VMs included). They run in RPCs, hooks and
 * match handlers alike. */
#ifndef KN_MATCH_LUA_H
#define KN_MATCH_LUA_H

#include "kn_lua_bind.h"

typedef struct kn_match_engine kn_match_engine; /* kn_match.h */

/* ud: a kn_match_engine ** (see above). */
extern const luaL_Reg kn_match_lua_funcs[];

#endif
