/* kn_friends_lua: the friends service's kaos.* functions — add, delete,
 * block and list relationships for a user from server code
 * (friends_lua.c; the script API is in docs/lua-api.md).
 *
 * The composition root registers them with the runtime as one binding:
 *
 *     kn_lua_binding b = {"friends", kn_friends_lua_funcs, &friends_deps};
 *
 * They need the calling worker's database connection (kn_lua_db); without
 * one (run_once, module loading, match handlers) they raise "kaos.NAME is
 * not available in MODE". Their ud is a kn_friends_deps (kn_friends.h,
 * filled before serving; ud NULL: the defaults and no effects; a field
 * NULL: that effect is skipped): its config holds max_friends, friends_add
 * and friends_delete deliver their notifications live through its out,
 * friends_block tells its blocked hook (the status service). */
#ifndef KN_FRIENDS_LUA_H
#define KN_FRIENDS_LUA_H

#include "kn_friends.h"
#include "kn_lua_bind.h"

/* friends_add, friends_delete, friends_block, friends_list,
 * friend_metadata_update, friends_of_friends_list. */
extern const luaL_Reg kn_friends_lua_funcs[];

#endif
