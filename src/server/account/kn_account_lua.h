/* kn_account_lua: the account service's kaos.* functions — logins, the
 * account, users, bans, link/unlink and logout for server code
 * (account_lua.c; the script API is in docs/lua-api.md).
 *
 * The composition root registers them with the runtime as one binding:
 *
 *     kn_lua_binding b = {"account", kn_account_lua_funcs, &deps};
 *
 * where deps (a kn_account_lua) outlives the runtime. Each call uses the
 * calling worker's database connection (kn_lua_db); without one (run_once,
 * module loading, match handlers) the functions raise "kaos.NAME is not
 * available in MODE". */
#ifndef KN_ACCOUNT_LUA_H
#define KN_ACCOUNT_LUA_H

#include "kn_lua_bind.h"
#include "kn_session.h" /* kn_session_end */

typedef struct kn_auth kn_auth;

/* The binding's ud: what the functions need beyond the call's connection.
 * Read from any API worker thread; the root may fill it after loading the
 * runtime, before serving (no function runs with a database before then). */
typedef struct kn_account_lua {
    const kn_auth *auth; /* logins */
    /* Ends the live sessions of user_id (only session_id's when not NULL)
     * on the connections bound to them: revoked, and closed or
     * unauthenticated as `why` says. Any thread; the work may happen later. */
    void (*end_sessions)(void *ud, const char *user_id, const char *session_id, kn_session_end why);
    void *end_sessions_ud;
} kn_account_lua;

/* authenticate_device/email/custom, account_get_id, account_update_id,
 * account_delete_id, users_get_id, users_get_username, users_ban_id,
 * users_unban_id, link_*, unlink_*, session_logout. ud: a kn_account_lua. */
extern const luaL_Reg kn_account_lua_funcs[];

#endif
