/* kn_rpc_lua: the RPC service's kaos.* function — kaos.rpc_call_async(id
 * [, payload]), which queues the registered RPC `id` to the API workers and
 * returns at once (kn_rpc_call_async; docs/lua-api.md). It is how a match
 * handler, which runs on a match thread with no database connection, hands
 * database work to a worker; RPCs and hooks may call it too.
 *
 * The composition root registers it as one binding:
 *
 *     kn_rpc *rpc = NULL;  -- set once the RPC service exists
 *     kn_lua_binding b = {"rpc", kn_rpc_lua_funcs, &rpc};
 *
 * ud is a kn_rpc ** because the service is created after the runtime (it
 * needs the API pool, whose workers hold the runtime's slots). The function
 * raises {code = 14} while the pointer is NULL (run_once) and while modules
 * load (a call at a module's top level would be queued again by every VM
 * that loads the module, match VMs included). The kn_rpc must be safe to
 * use from every thread (it is: kn_rpc.h). */
#ifndef KN_RPC_LUA_H
#define KN_RPC_LUA_H

#include "kn_lua_bind.h"

typedef struct kn_rpc kn_rpc; /* kn_rpc.h */

/* ud: a kn_rpc ** (see above). */
extern const luaL_Reg kn_rpc_lua_funcs[];

#endif
