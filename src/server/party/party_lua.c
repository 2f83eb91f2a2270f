/* party_lua: the party functions of `kaos` (kn_party_lua.h). Each acts as
 * the session (arguments 1 and 2) connected to this node; refusals are
 * raised as error({code, message}) with the service's code and text. A
 * party is a table {party_id, open, max_size, label, hidden, leader,
 * presences}, presences as kaos.stream_user_list gives them. */
#include "kn_party_lua.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_matchmaker_lua.h"
#include "kn_party.h"
#include "kn_party_wire.h"
#include "kn_session.h"

#include <stdio.h>
#include <string.h>

#define MSG_CAP 256

static kn_party_lua *deps(lua_State *L, const char *fn)
{
    kn_party_lua *d = kn_lua_binding_ud(L);
    if (!d || !d->parties || !d->sessions)
        kn_lua_raise_codedf(L, KN_ERR_UNAVAILABLE, "kaos.%s is not available yet (server starting)",
                            fn);
    return d;
}

/* The session (arguments 1 and 2) connected here, or raises NOT_FOUND. */
static kn_presence session_of(lua_State *L, kn_party_lua *d)
{
    kn_lua_session s = kn_lua_session_arg(L, d->sessions, 1);
    return kn_presence_of(s.conn, s.user_id, s.session_id, s.username);
}

typedef struct holder {
    kn_presence *list;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_free(h->list);
    h->list = NULL;
    return 0;
}

/* A holder for a listing the service hands out, freed with the stack. */
static holder *new_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(holder), "kaos.party_holder", holder_gc);
}

static void push_presences(lua_State *L, const kn_presence *list, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        kn_lua_push_entity(L, &kn_presence_entity, &list[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void push_party(lua_State *L, const kn_party_view *v)
{
    lua_createtable(L, 0, 7);
    kn_lua_set_string(L, "party_id", v->party_id);
    lua_pushboolean(L, v->open);
    lua_setfield(L, -2, "open");
    kn_lua_set_integer(L, "max_size", v->max_size);
    kn_lua_set_string(L, "label", v->label);
    lua_pushboolean(L, v->hidden);
    lua_setfield(L, -2, "hidden");
    kn_lua_push_entity(L, &kn_presence_entity, &v->leader);
    lua_setfield(L, -2, "leader");
    push_presences(L, v->members, v->n_members);
    lua_setfield(L, -2, "presences");
}

static int raise_or(lua_State *L, int rc, const char *msg, int results)
{
    return rc ? kn_lua_raise_coded(L, rc, msg) : results;
}

/* party_create(user_id, session_id, {open, max_size, label, hidden}) -> party */
static int l_create(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_create");
    kn_presence me = session_of(L, d);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "open");
    lua_getfield(L, 3, "max_size");
    lua_getfield(L, 3, "label");
    lua_getfield(L, 3, "hidden");
    if (!lua_isnil(L, -2) && lua_type(L, -2) != LUA_TSTRING)
        return kn_lua_raise_coded(L, KN_ERR_INVALID_ARGUMENT, "label must be a string");
    lua_Integer max = lua_isinteger(L, -3) ? lua_tointeger(L, -3) : 0;
    kn_party_config cfg = {.open = lua_toboolean(L, -4),
                           .max_size = max > 0 && max <= KN_PARTY_SIZE_MAX ? (uint32_t)max : 0,
                           .label = lua_isstring(L, -2) ? lua_tostring(L, -2) : NULL,
                           .hidden = lua_toboolean(L, -1)};
    holder *h = new_holder(L);
    kn_party_view v;
    char msg[MSG_CAP] = "";
    int rc = kn_party_create(d->parties, &me, &cfg, &v, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    h->list = v.members;
    push_party(L, &v);
    return 1;
}

/* party_join(user_id, session_id, party_id) -> party, or nil for a join
 * request (a closed party) */
static int l_join(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_join");
    kn_presence me = session_of(L, d);
    const char *id = luaL_checkstring(L, 3);
    holder *h = new_holder(L);
    kn_party_view v;
    memset(&v, 0, sizeof v);
    bool pending = false;
    char msg[MSG_CAP] = "";
    int rc = kn_party_join(d->parties, &me, id, &pending, &v, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    if (pending) {
        lua_pushnil(L);
        return 1;
    }
    h->list = v.members;
    push_party(L, &v);
    return 1;
}

/* party_leave(user_id, session_id, party_id) */
static int l_leave(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_leave");
    kn_presence me = session_of(L, d);
    char msg[MSG_CAP] = "";
    int rc = kn_party_leave(d->parties, &me, luaL_checkstring(L, 3), msg, sizeof msg);
    return raise_or(L, rc, msg, 0);
}

/* party_close(user_id, session_id, party_id) */
static int l_close(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_close");
    kn_presence me = session_of(L, d);
    char msg[MSG_CAP] = "";
    int rc = kn_party_close(d->parties, &me, luaL_checkstring(L, 3), msg, sizeof msg);
    return raise_or(L, rc, msg, 0);
}

typedef int (*target_fn)(kn_parties *ps, const kn_presence *who, const char *party_id,
                         const char *user_id, const char *session_id, char *msg, size_t cap);

/* f(user_id, session_id, party_id, target_user_id, target_session_id) */
static int on_target(lua_State *L, const char *name, target_fn f)
{
    kn_party_lua *d = deps(L, name);
    kn_presence me = session_of(L, d);
    const char *id = luaL_checkstring(L, 3);
    const char *user = luaL_checkstring(L, 4), *session = luaL_checkstring(L, 5);
    char msg[MSG_CAP] = "";
    int rc = f(d->parties, &me, id, user, session, msg, sizeof msg);
    return raise_or(L, rc, msg, 0);
}

static int l_promote(lua_State *L)
{
    return on_target(L, "party_promote", kn_party_promote);
}

static int l_accept(lua_State *L)
{
    return on_target(L, "party_accept", kn_party_accept);
}

static int l_remove(lua_State *L)
{
    return on_target(L, "party_remove", kn_party_remove);
}

/* party_join_requests(user_id, session_id, party_id) -> {presence, ...} */
static int l_requests(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_join_requests");
    kn_presence me = session_of(L, d);
    const char *id = luaL_checkstring(L, 3);
    holder *h = new_holder(L);
    size_t n = 0;
    char msg[MSG_CAP] = "";
    int rc = kn_party_requests(d->parties, &me, id, &h->list, &n, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    push_presences(L, h->list, n);
    return 1;
}

/* party_get(party_id) -> party, or nil when there is none */
static int l_get(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_get");
    const char *id = luaL_checkstring(L, 1);
    holder *h = new_holder(L);
    kn_party_view v;
    char msg[MSG_CAP] = "";
    int rc = kn_party_get(d->parties, id, &v, msg, sizeof msg);
    if (rc == KN_ERR_NOT_FOUND) {
        lua_pushnil(L);
        return 1;
    }
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    h->list = v.members;
    push_party(L, &v);
    return 1;
}

/* party_send(user_id, session_id, party_id, op_code, data, reliable) */
static int l_send(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_send");
    kn_presence me = session_of(L, d);
    const char *id = luaL_checkstring(L, 3);
    lua_Integer op = luaL_checkinteger(L, 4);
    size_t len = 0;
    const char *data = luaL_optlstring(L, 5, "", &len);
    bool reliable = lua_isnoneornil(L, 6) || lua_toboolean(L, 6);
    char msg[MSG_CAP] = "";
    int rc = kn_party_wire_send_data(d->parties, &me, id, (int64_t)op, (const uint8_t *)data, len,
                                     reliable, msg, sizeof msg);
    return raise_or(L, rc, msg, 0);
}

static kn_party_wire *wire_of(lua_State *L, kn_party_lua *d, const char *fn)
{
    if (!d->wire || !d->wire->mm)
        kn_lua_raise_codedf(L, KN_ERR_UNAVAILABLE, "kaos.%s: matchmaker unavailable", fn);
    return d->wire;
}

/* party_matchmaker_add(user_id, session_id, party_id, ticket) -> ticket id */
static int l_mm_add(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_matchmaker_add");
    kn_presence me = session_of(L, d);
    const char *id = luaL_checkstring(L, 3);
    kn_party_wire *pw = wire_of(L, d, "party_matchmaker_add");
    kn_mm_prop props[KN_MM_PROPS_MAX];
    kn_mm_widen widen[KN_MM_WIDEN_MAX];
    kn_mm_request req;
    kn_matchmaker_lua_request(L, 4, props, widen, &req);
    char ticket[37], msg[MSG_CAP] = "";
    int rc = kn_party_wire_ticket_add(pw, &me, id, &req, true, ticket, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_pushstring(L, ticket);
    return 1;
}

/* party_matchmaker_remove(user_id, session_id, party_id, ticket) */
static int l_mm_remove(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_matchmaker_remove");
    kn_presence me = session_of(L, d);
    const char *id = luaL_checkstring(L, 3), *ticket = luaL_checkstring(L, 4);
    kn_party_wire *pw = wire_of(L, d, "party_matchmaker_remove");
    char msg[MSG_CAP] = "";
    int rc = kn_party_wire_ticket_remove(pw, &me, id, ticket, msg, sizeof msg);
    return raise_or(L, rc, msg, 0);
}

typedef struct list_holder {
    kn_party_view *views;
    size_t n;
} list_holder;

static int list_gc(lua_State *L)
{
    list_holder *h = lua_touserdata(L, 1);
    kn_party_views_free(h->views, h->n);
    h->views = NULL;
    h->n = 0;
    return 0;
}

/* party_list(query, limit) -> {party, ...}: open, visible parties whose
 * label passes query, best first */
static int l_list(lua_State *L)
{
    kn_party_lua *d = deps(L, "party_list");
    const char *query = luaL_optstring(L, 1, "");
    lua_Integer limit = luaL_optinteger(L, 2, 0);
    if (limit < 0 || limit > KN_PARTY_LIST_MAX)
        return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "limit must be 1-%d (0 = 10)",
                                   KN_PARTY_LIST_MAX);
    list_holder *h = kn_lua_holder(L, sizeof *h, "kaos.party_list_holder", list_gc);
    char msg[MSG_CAP] = "";
    int rc = kn_party_list(d->parties, query, (uint32_t)limit, &h->views, &h->n, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n, 0);
    for (size_t i = 0; i < h->n; i++) {
        push_party(L, &h->views[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

const luaL_Reg kn_party_lua_funcs[] = {
    {"party_create", l_create},
    {"party_join", l_join},
    {"party_leave", l_leave},
    {"party_promote", l_promote},
    {"party_accept", l_accept},
    {"party_remove", l_remove},
    {"party_close", l_close},
    {"party_join_requests", l_requests},
    {"party_get", l_get},
    {"party_send", l_send},
    {"party_matchmaker_add", l_mm_add},
    {"party_matchmaker_remove", l_mm_remove},
    {"party_list", l_list},
    {NULL, NULL},
};
