/* kn_economy_lua: the economy service's kaos.* functions — wallet updates,
 * the wallet ledger and multi-updates of accounts, storage and wallets, for
 * server code (economy_lua.c; the script API is in docs/lua-api.md).
 *
 * The composition root registers them with the runtime as one binding:
 *
 *     kn_lua_binding b = {"economy", kn_economy_lua_funcs, NULL};
 *
 * They need nothing but the calling worker's database connection
 * (kn_lua_db), so their ud is unused; without a connection (run_once,
 * module loading, match handlers) they raise "kaos.NAME is not available in
 * MODE". */
#ifndef KN_ECONOMY_LUA_H
#define KN_ECONOMY_LUA_H

#include "kn_lua_bind.h"

/* wallet_update, wallets_update, wallet_ledger_list, wallet_ledger_update,
 * multi_update. */
extern const luaL_Reg kn_economy_lua_funcs[];

#endif
