/* kn_chat_lua: the chat functions of `kaos` — build channel ids, send,
 * update and remove messages as the server or as a user, list a channel's
 * history (chat_lua.c; the script API is in docs/lua-api.md), through the
 * same C functions as the wire (kn_chat).
 *
 * The composition root registers them as one binding whose ud is a
 * kn_chat_lua it fills before serving:
 *
 *     kn_lua_binding b = {"chat", kn_chat_lua_funcs, &chat_lua};
 *
 * Messages scripts send need not come from a session on the channel and
 * have no rate limit. Every function but channel_id_build reads Postgres
 * (kn_lua_db: not in run_once, module loading or match handlers). */
#ifndef KN_CHAT_LUA_H
#define KN_CHAT_LUA_H

#include "kn_lua_bind.h"

typedef struct kn_chat kn_chat;

typedef struct kn_chat_lua {
    kn_chat *chat; /* NULL until set: the functions refuse */
} kn_chat_lua;

/* channel_id_build, channel_message_send, channel_message_update,
 * channel_message_remove, channel_messages_list. */
extern const luaL_Reg kn_chat_lua_funcs[];

#endif
