/* notify_lua: the notifications functions of `kaos` (docs/lua-api.md),
 * registered with the runtime as a binding (kn_notify_lua.h) and reaching
 * Lua only through kn_lua_bind.h.
 *
 * They go through the same C functions as the wire (kn_notify_*), so rules
 * and messages are one. Refusals of the service are raised as
 * error({code = N, message = "..."}) with N the wire code; a wrong type of
 * an argument is an ordinary Lua error (a script bug).
 *
 * Memory: every C array and the list's results live in userdata (a holder
 * with a __gc, or strings Lua owns) while Lua may raise, so an error
 * half-way never leaks. */
#include "kn_notify_lua.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_notify.h"

#include <limits.h>
#include <string.h>

#define MSG_CAP 256

static kn_out *out_of(lua_State *L)
{
    kn_out **out = kn_lua_binding_ud(L);
    return out ? *out : NULL;
}

/* Reads the notification whose fields start at argument `idx` (user_id,
 * subject, content table, code, sender_id, persistent) into m; the JSON
 * text is pushed on the stack (it must stay there until the send). */
static void read_args(lua_State *L, int idx, kn_notify_msg *m)
{
    m->user_id = luaL_checkstring(L, idx);
    m->subject = luaL_checkstring(L, idx + 1);
    lua_Integer code = luaL_optinteger(L, idx + 3, 0);
    /* Past the int range: INT_MIN is refused as reserved, INT_MAX is kept. */
    m->code = code < INT_MIN ? INT_MIN : code > INT_MAX ? INT_MAX : (int)code;
    m->sender_id = luaL_optstring(L, idx + 4, NULL);
    m->persistent = lua_toboolean(L, idx + 5);
    if (lua_isnoneornil(L, idx + 2)) {
        m->content = "{}";
        return;
    }
    luaL_checktype(L, idx + 2, LUA_TTABLE);
    size_t len;
    const char *why = "";
    int rc = kn_lua_push_json(L, idx + 2, &len, &why);
    if (rc) kn_lua_raise_codedf(L, rc, "content: %s", why);
    m->content = lua_tostring(L, -1);
}

static int send(lua_State *L, kn_db *db, const kn_notify_msg *notes, size_t n)
{
    char msg[MSG_CAP] = "";
    int rc = kn_notify_send(db, out_of(L), notes, n, false, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

/* notification_send(user_id, subject, content, code, sender_id, persistent) */
static int k_notification_send(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "notification_send");
    lua_settop(L, 6);
    kn_notify_msg m;
    read_args(L, 1, &m);
    return send(L, db, &m, 1);
}

/* notifications_send({ {user_id=, subject=, content=, code=, sender_id=,
 * persistent=}, ... }) */
static int k_notifications_send(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "notifications_send");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_Integer n = luaL_len(L, 1);
    if (n > KN_NOTIFY_BATCH_MAX)
        return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "at most %d notifications per call",
                                   KN_NOTIFY_BATCH_MAX);
    kn_notify_msg *notes = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *notes, 0);
    static const char *const keys[] = {"user_id", "subject",   "content",
                                       "code",    "sender_id", "persistent"};
    for (lua_Integer i = 0; i < n; i++) {
        if (lua_rawgeti(L, 1, i + 1) != LUA_TTABLE)
            return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT,
                                       "notification %d must be a table", (int)i + 1);
        luaL_checkstack(L, 8, "notifications_send");
        /* The six fields as consecutive arguments, then read like one call's. */
        int base = lua_gettop(L) + 1;
        for (int k = 0; k < 6; k++)
            lua_getfield(L, base - 1, keys[k]);
        read_args(L, base, &notes[i]);
        /* The strings stay reachable: keep the pushed values on the stack. */
    }
    return send(L, db, notes, (size_t)n);
}

/* notification_send_all(subject, content, code, persistent): to every
 * user (Nakama's notificationSendAll); the sender is the system (""). */
static int k_notification_send_all(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "notification_send_all");
    lua_settop(L, 4);
    /* The same reading as one notification's, user and sender left out. */
    lua_pushliteral(L, "");
    lua_insert(L, 1); /* user_id */
    lua_pushnil(L);
    lua_insert(L, 5); /* sender_id */
    kn_notify_msg m;
    read_args(L, 1, &m);
    char msg[MSG_CAP] = "";
    int rc = kn_notify_send_all(db, out_of(L), &m, false, NULL, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

typedef struct holder {
    kn_notification *notes;
    size_t n;
    char *cursor;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_notify_free(h->notes, h->n);
    kn_free(h->cursor);
    memset(h, 0, sizeof *h);
    return 0;
}

/* notifications_list(user_id, limit, cursor) -> list, cursor */
static int k_notifications_list(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "notifications_list");
    const char *user_id = luaL_checkstring(L, 1);
    lua_Integer limit = luaL_optinteger(L, 2, 0);
    const char *cursor = luaL_optstring(L, 3, NULL);
    int lim = limit < INT_MIN ? INT_MIN : limit > INT_MAX ? INT_MAX : (int)limit;
    holder *h = kn_lua_holder(L, sizeof(holder), "kaos.notify_holder", holder_gc);
    char msg[MSG_CAP] = "";
    int rc =
        kn_notify_list(db, user_id, lim, cursor, &h->notes, &h->n, &h->cursor, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n, 0);
    for (size_t i = 0; i < h->n; i++) {
        kn_lua_push_entity(L, &kn_notification_entity, &h->notes[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushstring(L, h->cursor);
    return 2;
}

/* notifications_delete(user_id, {ids}) */
static int k_notifications_delete(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "notifications_delete");
    const char *user_id = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    size_t n;
    const char **ids = kn_lua_string_list(L, 2, false, "ids", &n);
    char msg[MSG_CAP] = "";
    int rc = kn_notify_delete(db, user_id, ids, n, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

const luaL_Reg kn_notify_lua_funcs[] = {
    {"notification_send", k_notification_send},
    {"notifications_send", k_notifications_send},
    {"notification_send_all", k_notification_send_all},
    {"notifications_list", k_notifications_list},
    {"notifications_delete", k_notifications_delete},
    {NULL, NULL},
};
