/* kn_storage_lua: the storage service's kaos.* functions — read, write,
 * delete and list storage objects from server code, with full rights
 * (storage_lua.c; the script API is in docs/lua-api.md).
 *
 * The composition root registers them with the runtime as one binding:
 *
 *     kn_lua_binding b = {"storage", kn_storage_lua_funcs, NULL};
 *
 * They need nothing but the calling worker's database connection
 * (kn_lua_db), so their ud is unused; without a connection (run_once,
 * module loading, match handlers) they raise "kaos.NAME is not available in
 * MODE". */
#ifndef KN_STORAGE_LUA_H
#define KN_STORAGE_LUA_H

#include "kn_lua_bind.h"

/* storage_read, storage_write, storage_delete, storage_list,
 * storage_read_batch, storage_write_batch, storage_delete_batch,
 * storage_write_retry. */
extern const luaL_Reg kn_storage_lua_funcs[];

#endif
