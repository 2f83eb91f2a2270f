/* chat_lua: the chat functions of `kaos` (kn_chat_lua.h). Refusals are
 * raised as error({code, message}) with the service's code and text; a
 * wrong argument type is an ordinary Lua error (a script bug). Results the
 * service allocates live in a holder while tables are built. */
#include "kn_chat_lua.h"
#include "kn_chat.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <string.h>

#define MSG_CAP 256

static kn_chat *chat_of(lua_State *L, const char *fn)
{
    kn_chat_lua *d = kn_lua_binding_ud(L);
    if (!d || !d->chat)
        kn_lua_raise_codedf(L, KN_ERR_UNAVAILABLE, "kaos.%s is not available yet (server starting)",
                            fn);
    return d->chat;
}

/* The content at idx (a table, encoded, or JSON text) as text; what it
 * pushes stays on the stack until the call. */
static const char *content_arg(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) return lua_tostring(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t len;
    const char *why = "";
    int rc = kn_lua_push_json(L, idx, &len, &why);
    if (rc) kn_lua_raise_codedf(L, rc, "content: %s", why);
    return lua_tostring(L, -1);
}

/* The sender (arguments idx, idx + 1: sender id and username, both
 * optional): a server sender, never a session. */
static kn_chat_sender sender_args(lua_State *L, int idx)
{
    return (kn_chat_sender){0, luaL_optstring(L, idx, ""), NULL, luaL_optstring(L, idx + 1, "")};
}

/* channel_id_build(sender_id, target, type) -> channel id */
static int l_id_build(lua_State *L)
{
    const char *sender = luaL_optstring(L, 1, "");
    const char *target = luaL_checkstring(L, 2);
    lua_Integer type = luaL_checkinteger(L, 3);
    kn_chat_channel ch;
    char msg[MSG_CAP] = "";
    int rc = kn_chat_id_build(sender, target, type < 0 || type > 3 ? 0 : (int)type, &ch, msg,
                              sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_pushstring(L, ch.id);
    return 1;
}

typedef struct holder {
    kn_chat_message one;
    kn_chat_message *list;
    size_t n;
    char *next, *prev;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_chat_message_clear(&h->one);
    kn_chat_messages_free(h->list, h->n);
    kn_free(h->next);
    kn_free(h->prev);
    memset(h, 0, sizeof *h);
    return 0;
}

static holder *new_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(holder), "kaos.chat_holder", holder_gc);
}

/* channel_message_send(channel_id, content, sender_id?, username?, persist?)
 * -> the message as delivered (persist defaults to true) */
static int l_send(lua_State *L)
{
    kn_chat *chat = chat_of(L, "channel_message_send");
    kn_db *db = kn_lua_db(L, "channel_message_send");
    const char *channel_id = luaL_checkstring(L, 1);
    lua_settop(L, 5);
    kn_chat_sender from = sender_args(L, 3);
    bool persist = lua_isnil(L, 5) ? true : lua_toboolean(L, 5);
    const char *content = content_arg(L, 2);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_chat_send(chat, db, &from, channel_id, content, persist, &h->one, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    kn_lua_push_entity(L, &kn_chat_message_entity, &h->one);
    return 1;
}

/* channel_message_update(channel_id, message_id, content) -> the message as
 * updated. The server may update any stored message. */
static int l_update(lua_State *L)
{
    kn_chat *chat = chat_of(L, "channel_message_update");
    kn_db *db = kn_lua_db(L, "channel_message_update");
    const char *channel_id = luaL_checkstring(L, 1);
    const char *message_id = luaL_checkstring(L, 2);
    lua_settop(L, 3);
    kn_chat_sender from = {0};
    const char *content = content_arg(L, 3);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc =
        kn_chat_update(chat, db, &from, channel_id, message_id, content, &h->one, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    kn_lua_push_entity(L, &kn_chat_message_entity, &h->one);
    return 1;
}

/* channel_message_remove(channel_id, message_id) -> the removal as
 * delivered. The server may remove any stored message. */
static int l_remove(lua_State *L)
{
    kn_chat *chat = chat_of(L, "channel_message_remove");
    kn_db *db = kn_lua_db(L, "channel_message_remove");
    const char *channel_id = luaL_checkstring(L, 1);
    const char *message_id = luaL_checkstring(L, 2);
    kn_chat_sender from = {0};
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_chat_remove(chat, db, &from, channel_id, message_id, &h->one, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    kn_lua_push_entity(L, &kn_chat_message_entity, &h->one);
    return 1;
}

/* channel_messages_list(channel_id, limit?, forward?, cursor?)
 * -> {messages = {...}, next_cursor = "", prev_cursor = ""} (forward defaults to true) */
static int l_list(lua_State *L)
{
    kn_chat *chat = chat_of(L, "channel_messages_list");
    kn_db *db = kn_lua_db(L, "channel_messages_list");
    const char *channel_id = luaL_checkstring(L, 1);
    lua_Integer limit = luaL_optinteger(L, 2, 0);
    lua_settop(L, 4);
    bool forward = lua_isnil(L, 3) ? true : lua_toboolean(L, 3);
    const char *cursor = luaL_optstring(L, 4, NULL);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int lim = limit < 0 || limit > KN_CHAT_LIST_MAX ? -1 : (int)limit;
    int rc = kn_chat_list(chat, db, NULL, channel_id, lim, forward, cursor, &h->list, &h->n,
                          &h->next, &h->prev, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, 0, 3);
    lua_createtable(L, (int)h->n, 0);
    for (size_t i = 0; i < h->n; i++) {
        kn_lua_push_entity(L, &kn_chat_message_entity, &h->list[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "messages");
    kn_lua_set_string(L, "next_cursor", h->next);
    kn_lua_set_string(L, "prev_cursor", h->prev);
    return 1;
}

const luaL_Reg kn_chat_lua_funcs[] = {
    {"channel_id_build", l_id_build},     {"channel_message_send", l_send},
    {"channel_message_update", l_update}, {"channel_message_remove", l_remove},
    {"channel_messages_list", l_list},    {NULL, NULL},
};
