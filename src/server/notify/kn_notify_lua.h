/* kn_notify_lua: the notifications service's kaos.* functions — send,
 * list and delete a user's notifications from server code (notify_lua.c;
 * the script API is in docs/lua-api.md).
 *
 * The composition root registers them with the runtime as one binding:
 *
 *     kn_lua_binding b = {"notifications", kn_notify_lua_funcs, &out};
 *
 * Their ud is a kn_out ** naming the server's kn_out (set before serving;
 * ud NULL or *ud NULL: sends are stored but never delivered live). They
 * need the calling worker's database connection (kn_lua_db); without one
 * (run_once, module loading, match handlers) they raise "kaos.NAME is not
 * available in MODE". Scripts are server code but not the system: negative
 * codes are refused, as from clients. notification_send_all reaches every
 * user: stored for each in one statement, pushed to every connection
 * through kn_out_send_all. */
#ifndef KN_NOTIFY_LUA_H
#define KN_NOTIFY_LUA_H

#include "kn_lua_bind.h"

/* notification_send, notifications_send, notification_send_all,
 * notifications_list, notifications_delete. */
extern const luaL_Reg kn_notify_lua_funcs[];

#endif
