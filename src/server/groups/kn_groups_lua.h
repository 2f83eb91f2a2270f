/* kn_groups_lua: the groups service's kaos.* functions — create, change and
 * list groups and their users from server code (groups_lua.c; the script
 * API is in docs/lua-api.md).
 *
 * The composition root registers them with the runtime as one binding:
 *
 *     kn_lua_binding b = {"groups", kn_groups_lua_funcs, &out};
 *
 * They need the calling worker's database connection (kn_lua_db); their ud
 * is a kn_out ** naming the server's kn_out (set before serving; ud NULL
 * or *ud NULL: notifications are stored, not delivered live); without a
 * connection (run_once, module loading, match handlers) they raise
 * "kaos.NAME is not available in MODE". */
#ifndef KN_GROUPS_LUA_H
#define KN_GROUPS_LUA_H

#include "kn_lua_bind.h"

/* group_create, group_update, group_delete, group_join, group_leave,
 * group_users_add, group_users_kick, group_users_ban, group_users_promote,
 * group_users_demote, group_users_list, user_groups_list, groups_list. */
extern const luaL_Reg kn_groups_lua_funcs[];

#endif
