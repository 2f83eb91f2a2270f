/* stream_lua: the stream functions of `kaos` (kn_stream_lua.h), reaching
 * Lua only through kn_lua_bind.h and the tracker only through kn_stream.h.
 *
 * A stream argument is a table {mode = N, subject = "", subcontext = "",
 * label = ""}; a presence is {user_id, session_id, username, persistence,
 * status, hidden}. Refusals are raised as error({code, message}). */
#include "kn_stream_lua.h"
#include "kn_codec.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_out.h"
#include "kn_session.h"
#include "kn_stream.h"

#include <stdio.h>
#include <string.h>

static kn_stream_lua *deps(lua_State *L, const char *fn)
{
    kn_stream_lua *d = kn_lua_binding_ud(L);
    if (!d || !d->tracker || !d->sessions)
        kn_lua_raise_codedf(L, KN_ERR_UNAVAILABLE, "kaos.%s is not available yet (server starting)",
                            fn);
    return d;
}

/* Copies the string field `key` of the table at idx into out (cap bytes). */
static void field(lua_State *L, int idx, const char *key, char *out, size_t cap)
{
    lua_getfield(L, idx, key);
    size_t len = 0;
    const char *v = lua_isnil(L, -1) ? "" : lua_tolstring(L, -1, &len);
    if (!v) kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "stream %s must be a string", key);
    if (len >= cap)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "stream %s must be at most %zu bytes", key,
                            cap - 1);
    memcpy(out, v, len + 1);
    lua_pop(L, 1);
}

static kn_stream check_stream(lua_State *L, int idx, bool changes)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    kn_stream s = {0};
    lua_getfield(L, idx, "mode");
    int ok = 0;
    lua_Integer mode = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok || mode < 0 || mode >= KN_STREAM_MODES)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "stream mode must be an integer 0-%d",
                            KN_STREAM_MODES - 1);
    s.mode = (uint8_t)mode;
    field(L, idx, "subject", s.subject, sizeof s.subject);
    field(L, idx, "subcontext", s.subcontext, sizeof s.subcontext);
    field(L, idx, "label", s.label, sizeof s.label);
    if (changes && s.mode == KN_STREAM_MATCH_RELAYED)
        kn_lua_raise_coded(L, KN_ERR_INVALID_ARGUMENT,
                           "streams of mode 5 are relayed matches: join them with a MatchJoin");
    return s;
}

/* The presence of (user_id, session_id) connected here, or raises NOT_FOUND. */
static kn_presence find_session(lua_State *L, kn_stream_lua *d, const char *user_id,
                                const char *session_id)
{
    kn_presence p = {0};
    if (!user_id || !session_id || strlen(user_id) > 36 || strlen(session_id) > 36 ||
        kn_sessions_find(d->sessions, user_id, session_id, &p.conn, p.username, sizeof p.username))
        kn_lua_raise_coded(L, KN_ERR_NOT_FOUND, "session not found");
    snprintf(p.user_id, sizeof p.user_id, "%s", user_id);
    snprintf(p.session_id, sizeof p.session_id, "%s", session_id);
    return p;
}

/* The same for arguments idx (user id) and idx + 1 (session id). */
static kn_presence session_presence(lua_State *L, kn_stream_lua *d, int idx)
{
    return find_session(L, d, luaL_checkstring(L, idx), luaL_checkstring(L, idx + 1));
}

static void push_presence(lua_State *L, const kn_presence *p)
{
    kn_lua_push_entity(L, &kn_presence_entity, p);
    lua_pushboolean(L, p->hidden);
    lua_setfield(L, -2, "hidden");
}

/* stream_user_join(user_id, session_id, stream, hidden, persistence, status)
 * -> true when the session joined, false when it was there already. */
static int l_join(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_user_join");
    kn_presence p = session_presence(L, d, 1);
    kn_stream s = check_stream(L, 3, true);
    p.hidden = lua_toboolean(L, 4);
    p.persistence = lua_toboolean(L, 5);
    p.status = (char *)luaL_optstring(L, 6, NULL);
    char msg[256] = "";
    int rc = kn_tracker_track(d->tracker, &s, &p, NULL, NULL, msg, sizeof msg);
    if (rc == KN_ERR_ALREADY_EXISTS) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    /* Ended meanwhile? Its unbind has run: do not outlive it. */
    kn_conn_id now;
    if (kn_sessions_find(d->sessions, p.user_id, p.session_id, &now, NULL, 0) || now != p.conn) {
        kn_tracker_untrack(d->tracker, &s, p.conn);
        return kn_lua_raise_coded(L, KN_ERR_NOT_FOUND, "session not found");
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* stream_user_update(user_id, session_id, stream, hidden, status) */
static int l_update(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_user_update");
    kn_presence p = session_presence(L, d, 1);
    kn_stream s = check_stream(L, 3, true);
    const char *status = luaL_optstring(L, 5, NULL);
    if (status && strlen(status) > KN_STREAM_STATUS_MAX)
        return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "status must be at most %d bytes",
                                   KN_STREAM_STATUS_MAX);
    int rc = kn_tracker_update(d->tracker, &s, p.conn, status, lua_toboolean(L, 4));
    if (rc == KN_ERR_NOT_FOUND) return kn_lua_raise_coded(L, rc, "session is not on this stream");
    if (rc) return kn_lua_raise_coded(L, rc, NULL);
    return 0;
}

/* stream_user_leave(user_id, session_id, stream): no error when not on it. */
static int l_leave(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_user_leave");
    kn_presence p = session_presence(L, d, 1);
    kn_stream s = check_stream(L, 3, true);
    kn_tracker_untrack(d->tracker, &s, p.conn);
    return 0;
}

/* stream_user_kick(presence, stream): the presence table's session leaves. */
static int l_kick(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_user_kick");
    luaL_checktype(L, 1, LUA_TTABLE);
    kn_stream s = check_stream(L, 2, true);
    lua_getfield(L, 1, "user_id");
    lua_getfield(L, 1, "session_id");
    kn_presence p = find_session(L, d, lua_tostring(L, -2), lua_tostring(L, -1));
    kn_tracker_untrack(d->tracker, &s, p.conn);
    return 0;
}

typedef struct list_holder {
    kn_presence *list;
} list_holder;

static int list_gc(lua_State *L)
{
    list_holder *h = lua_touserdata(L, 1);
    kn_free(h->list);
    h->list = NULL;
    return 0;
}

/* stream_user_list(stream, include_hidden = true, include_not_hidden = true) */
static int l_list(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_user_list");
    kn_stream s = check_stream(L, 1, false);
    bool hidden = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
    bool visible = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
    list_holder *h = kn_lua_holder(L, sizeof *h, "kaos.stream_list_holder", list_gc);
    size_t n = 0;
    int rc = kn_tracker_list(d->tracker, &s, hidden, visible, &h->list, &n);
    if (rc) return kn_lua_raise_coded(L, rc, NULL);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_presence(L, &h->list[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* stream_user_get(user_id, session_id, stream) -> presence or nil */
static int l_get(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_user_get");
    const char *user_id = luaL_checkstring(L, 1);
    const char *session_id = luaL_checkstring(L, 2);
    kn_stream s = check_stream(L, 3, false);
    char *status = lua_newuserdatauv(L, KN_STREAM_STATUS_MAX + 1, 0);
    kn_presence p;
    if (kn_tracker_get(d->tracker, &s, user_id, session_id, &p, status, KN_STREAM_STATUS_MAX + 1)) {
        lua_pushnil(L);
        return 1;
    }
    push_presence(L, &p);
    return 1;
}

/* stream_count(stream) -> presences on it */
static int l_count(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_count");
    kn_stream s = check_stream(L, 1, false);
    lua_pushinteger(L, (lua_Integer)kn_tracker_count(d->tracker, &s));
    return 1;
}

/* stream_send(stream, data, presences = nil, reliable = true): a StreamData
 * to everyone on the stream, or only to the listed presences' sessions. */
static int l_send(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_send");
    /* Pin the arguments: the buffer pushed below must not stand in for an
     * absent presences argument at index 3. */
    lua_settop(L, 4);
    kn_stream s = check_stream(L, 1, false);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    bool reliable = lua_isnoneornil(L, 4) ? true : lua_toboolean(L, 4);
    Kaos__V1__Stream sm = KAOS__V1__STREAM__INIT;
    sm.mode = s.mode;
    sm.subject = s.subject;
    sm.subcontext = s.subcontext;
    sm.label = s.label;
    Kaos__V1__StreamData sd = KAOS__V1__STREAM_DATA__INIT;
    sd.stream = &sm;
    sd.data.data = (uint8_t *)data;
    sd.data.len = len;
    sd.reliable = reliable;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STREAM_DATA;
    env.stream_data = &sd;
    size_t n = kn_envelope_packed_size(&env);
    uint8_t *buf = lua_newuserdatauv(L, n ? n : 1, 0);
    kn_envelope_pack(&env, buf);
    uint8_t channel = reliable ? KN_CHANNEL_CONTROL : KN_CHANNEL_MATCH_UNRELIABLE;
    if (lua_isnoneornil(L, 3)) {
        kn_tracker_send(d->tracker, &s, 0, channel, buf, n, reliable);
        return 0;
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    for (lua_Integer i = 1;; i++) {
        if (lua_rawgeti(L, 3, i) == LUA_TNIL) break;
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_getfield(L, -1, "user_id");
        lua_getfield(L, -2, "session_id");
        const char *user_id = lua_tostring(L, -2), *session_id = lua_tostring(L, -1);
        if (!user_id || !session_id || strlen(user_id) > 36 || strlen(session_id) > 36)
            return kn_lua_raise_coded(L, KN_ERR_INVALID_ARGUMENT,
                                      "presences must have user_id and session_id strings");
        if (d->out) kn_out_send_user(d->out, user_id, session_id, channel, buf, n, reliable);
        lua_pop(L, 3);
    }
    return 0;
}

/* stream_close(stream) -> how many presences it had */
static int l_close(lua_State *L)
{
    kn_stream_lua *d = deps(L, "stream_close");
    kn_stream s = check_stream(L, 1, true);
    lua_pushinteger(L, (lua_Integer)kn_tracker_close(d->tracker, &s));
    return 1;
}

const luaL_Reg kn_stream_lua_funcs[] = {
    {"stream_user_join", l_join},   {"stream_user_update", l_update},
    {"stream_user_leave", l_leave}, {"stream_user_kick", l_kick},
    {"stream_user_list", l_list},   {"stream_user_get", l_get},
    {"stream_count", l_count},      {"stream_send", l_send},
    {"stream_close", l_close},      {NULL, NULL},
};
