/* match_handler: authoritative match handlers written in Lua — the match
 * engine's kn_match_handler vtable, implemented by the runtime (the
 * kaos.match_* functions scripts call are the match module's binding,
 * match/match_lua.c).
 *
 * Each match gets its own VM (its own lua_State, memory cap and time
 * budget), built from the runtime current when the match is created; the
 * match keeps that runtime until it ends, so hot reloads never touch running
 * matches. Callbacks follow Nakama's Lua match handler contract. */
#include "kn_match.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "runtime_internal.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lua_match {
    kn_match_handler base;
    kn_runtime_host *host;
    kn_runtime_vm *vm;
    int handlers;   /* registry refs */
    int state;
    int context;
    int dispatcher;
    int presences;  /* slot -> presence table, for everyone in the match */
    const kn_match_call *cur; /* during a call */
    char name[KN_MATCH_NAME_MAX + 1];
} lua_match;

static lua_match *dispatcher_match(lua_State *L)
{
    lua_match *lm = lua_touserdata(L, lua_upvalueindex(1));
    if (!lm->cur) luaL_error(L, "the dispatcher is only usable inside a match callback");
    return lm;
}

/* Slots of a presence list (a table of presence tables) at idx. */
static size_t slots_of(lua_State *L, int idx, uint32_t *out, size_t cap)
{
    size_t n = 0;
    lua_Integer len = (lua_Integer)luaL_len(L, idx);
    for (lua_Integer i = 1; i <= len && n < cap; i++) {
        lua_geti(L, idx, i);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "slot");
            if (lua_isinteger(L, -1)) out[n++] = (uint32_t)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return n;
}

static int raise_rc(lua_State *L, const char *what, int rc)
{
    return luaL_error(L, "%s: %s", what, kn_err_text(rc));
}

/* broadcast_message(op_code, data, presences|nil, sender|nil, reliable=true) */
static int broadcast(lua_State *L, bool deferred)
{
    lua_match *lm = dispatcher_match(L);
    lua_Integer op = luaL_checkinteger(L, 1);
    size_t len = 0;
    const char *data = luaL_optlstring(L, 2, "", &len);
    uint32_t stack[256], *targets = NULL;
    size_t n = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        targets = stack;
        n = slots_of(L, 3, stack, 256);
    }
    uint32_t sender = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "slot");
        sender = (uint32_t)luaL_optinteger(L, -1, 0);
        lua_pop(L, 1);
    }
    bool reliable = lua_isnoneornil(L, 5) ? true : lua_toboolean(L, 5);
    const kn_match_dispatcher *d = lm->cur->dispatcher;
    int rc = d->broadcast(d->ud, (int64_t)op, (const uint8_t *)data, len, targets, n, sender,
                          reliable, deferred);
    if (rc) return raise_rc(L, "broadcast_message", rc);
    return 0;
}
static int d_broadcast(lua_State *L) { return broadcast(L, false); }
static int d_broadcast_deferred(lua_State *L) { return broadcast(L, true); }

static int d_kick(lua_State *L)
{
    lua_match *lm = dispatcher_match(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    uint32_t slots[256];
    size_t n = slots_of(L, 1, slots, 256);
    const kn_match_dispatcher *d = lm->cur->dispatcher;
    int rc = d->kick(d->ud, slots, n);
    if (rc) return raise_rc(L, "match_kick", rc);
    return 0;
}

static int d_label_update(lua_State *L)
{
    lua_match *lm = dispatcher_match(L);
    const char *label = luaL_checkstring(L, 1);
    const kn_match_dispatcher *d = lm->cur->dispatcher;
    int rc = d->label_update(d->ud, label);
    if (rc) return raise_rc(L, "match_label_update", rc);
    return 0;
}

/* --- presences ------------------------------------------------------------------------ */

static void push_presence(lua_State *L, lua_match *lm, const kn_match_presence *p)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, lm->presences);
    if (lua_rawgeti(L, -1, p->slot) == LUA_TTABLE) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    /* The entity's fields, plus the node the match runs on (Nakama's presence has it). */
    kn_lua_push_entity(L, &kn_match_presence_entity, p);
    kn_lua_set_string(L, "node", lm->cur ? lm->cur->node : "");
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, p->slot);
    lua_remove(L, -2);
}

static void forget_presences(lua_State *L, lua_match *lm, const kn_match_presence *const *ps,
                             size_t n)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, lm->presences);
    for (size_t i = 0; i < n; i++) {
        lua_pushnil(L);
        lua_rawseti(L, -2, ps[i]->slot);
    }
    lua_pop(L, 1);
}

static void push_presence_list(lua_State *L, lua_match *lm, const kn_match_presence *const *ps,
                               size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_presence(L, lm, ps[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* --- calls ---------------------------------------------------------------------------- */

typedef enum { C_INIT, C_JOIN_ATTEMPT, C_PRESENCES, C_LOOP, C_TERMINATE, C_SIGNAL } call_kind;

/* One handler call: everything the protected trampoline needs. */
typedef struct invocation {
    lua_match *lm;
    const char *fn;
    call_kind kind;
    const kn_match_presence *const *ps; /* C_JOIN_ATTEMPT (one), C_PRESENCES */
    size_t n;
    const kn_match_message *msgs; /* C_LOOP */
    const char *text;             /* C_INIT params, C_JOIN_ATTEMPT metadata (JSON), C_SIGNAL data */
    size_t text_len;
    int grace;
    int nres;
} invocation;

/* Pushes JSON text as a Lua value (an empty string = an empty table). */
static void push_json_text(lua_State *L, const char *text, size_t len)
{
    if (!len) {
        lua_newtable(L);
        return;
    }
    kn_json_error e;
    kn_json **h = rt_json_holder(L);
    *h = kn_json_parse(text, len, 0, &e);
    if (!*h) luaL_error(L, "invalid JSON: %s", e.text);
    rt_from_json(L, *h, 0);
    lua_remove(L, -2);
}

/* Runs inside lua_pcall: builds the arguments (allocation errors are
 * caught like script errors) and calls the handler function. */
static int trampoline(lua_State *L)
{
    invocation *v = lua_touserdata(L, 1);
    lua_match *lm = v->lm;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lm->handlers);
    lua_getfield(L, -1, v->fn);
    lua_remove(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lm->context);
    if (v->kind == C_INIT) {
        push_json_text(L, v->text, v->text_len);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, lm->dispatcher);
        lua_pushinteger(L, (lua_Integer)lm->cur->tick);
        lua_rawgeti(L, LUA_REGISTRYINDEX, lm->state);
        switch (v->kind) {
        case C_JOIN_ATTEMPT:
            push_presence(L, lm, v->ps[0]);
            push_json_text(L, v->text, v->text_len);
            break;
        case C_PRESENCES: push_presence_list(L, lm, v->ps, v->n); break;
        case C_LOOP:
            lua_createtable(L, (int)v->n, 0);
            for (size_t i = 0; i < v->n; i++) {
                const kn_match_message *m = &v->msgs[i];
                lua_createtable(L, 0, 5);
                push_presence(L, lm, m->sender);
                lua_setfield(L, -2, "sender");
                lua_pushinteger(L, (lua_Integer)m->op_code);
                lua_setfield(L, -2, "op_code");
                lua_pushlstring(L, (const char *)m->data, m->len);
                lua_setfield(L, -2, "data");
                lua_pushboolean(L, m->reliable);
                lua_setfield(L, -2, "reliable");
                lua_pushinteger(L, (lua_Integer)m->receive_ms);
                lua_setfield(L, -2, "receive_time_ms");
                lua_rawseti(L, -2, (lua_Integer)i + 1);
            }
            break;
        case C_TERMINATE: lua_pushinteger(L, v->grace); break;
        case C_SIGNAL: lua_pushlstring(L, v->text, v->text_len); break;
        default: break;
        }
    }
    lua_call(L, lua_gettop(L) - 1, v->nres);
    return v->nres;
}

/* Calls the handler; on KN_OK its v->nres results are on the stack above
 * the returned base (end with end_call). On failure the stack is clean. */
static int call(lua_match *lm, const kn_match_call *c, invocation *v, int *base, char *msg,
                size_t cap)
{
    lua_State *L = lm->vm->L;
    *base = lua_gettop(L);
    lm->cur = c;
    v->lm = lm;
    lua_pushcfunction(L, rt_traceback);
    lua_pushcfunction(L, trampoline);
    lua_pushlightuserdata(L, v);
    rt_call_begin(lm->vm, NULL);
    rt_call_share(lm->vm, c->budget_us);
    int status = lua_pcall(L, 1, v->nres, *base + 1);
    rt_call_end(lm->vm);
    if (status == LUA_OK) return KN_OK;
    char what[200];
    snprintf(what, sizeof what, "%s of match handler %s", v->fn, lm->name);
    int rc = rt_script_error(L, what, msg, cap);
    lua_settop(L, *base);
    lm->cur = NULL;
    return rc;
}

static void end_call(lua_match *lm, int base)
{
    lua_settop(lm->vm->L, base);
    lm->cur = NULL;
}

/* Takes the returned state at idx; nil ends the match (CANCELLED). */
static int keep_state(lua_match *lm, int idx, char *msg, size_t cap)
{
    lua_State *L = lm->vm->L;
    if (lua_isnil(L, idx)) {
        snprintf(msg, cap, "match ended by its handler");
        return KN_ERR_CANCELLED;
    }
    lua_pushvalue(L, idx);
    lua_rawseti(L, LUA_REGISTRYINDEX, lm->state);
    return KN_OK;
}

static int m_init(kn_match_handler *h, const kn_match_call *c, const char *params,
                  size_t params_len, int *tick_rate, char **label, char *msg, size_t cap)
{
    lua_match *lm = (lua_match *)h;
    lua_State *L = lm->vm->L;
    if (params_len) {
        kn_json_error e;
        kn_json *j = kn_json_parse(params, params_len, 0, &e);
        bool object = kn_json_is_object(j);
        kn_json_decref(j);
        if (!object) {
            snprintf(msg, cap, "match params must be a JSON object%s%s", j ? "" : ": ",
                     j ? "" : e.text);
            return KN_ERR_INVALID_ARGUMENT;
        }
    }
    invocation v = {.fn = "match_init", .kind = C_INIT, .text = params, .text_len = params_len,
                    .nres = 3};
    int base, rc = call(lm, c, &v, &base, msg, cap);
    if (rc) return rc;
    if (lua_isnil(L, -3)) {
        snprintf(msg, cap, "match_init returned no state");
        end_call(lm, base);
        return KN_ERR_INVALID_ARGUMENT;
    }
    lua_pushvalue(L, -3);
    lua_rawseti(L, LUA_REGISTRYINDEX, lm->state);
    *tick_rate = lua_isinteger(L, -2) ? (int)lua_tointeger(L, -2) : 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        *label = kn_strndup(s, n);
        if (!*label) rc = KN_ERR_NOMEM;
    }
    end_call(lm, base);
    return rc;
}

static int m_join_attempt(kn_match_handler *h, const kn_match_call *c, const kn_match_presence *p,
                          const char *metadata, size_t metadata_len, bool *allow, char *reason,
                          size_t reason_cap, char *msg, size_t cap)
{
    lua_match *lm = (lua_match *)h;
    lua_State *L = lm->vm->L;
    invocation v = {.fn = "match_join_attempt", .kind = C_JOIN_ATTEMPT, .ps = &p, .n = 1,
                    .text = metadata, .text_len = metadata_len, .nres = 3};
    int base, rc = call(lm, c, &v, &base, msg, cap);
    if (rc) {
        forget_presences(L, lm, &p, 1);
        return rc;
    }
    rc = keep_state(lm, -3, msg, cap);
    *allow = lua_toboolean(L, -2);
    const char *why = lua_tostring(L, -1);
    snprintf(reason, reason_cap, "%s", why ? why : "");
    if (!*allow || rc) forget_presences(L, lm, &p, 1);
    end_call(lm, base);
    return rc;
}

static int m_presences(kn_match_handler *h, const kn_match_call *c,
                       const kn_match_presence *const *ps, size_t n, const char *fn, char *msg,
                       size_t cap)
{
    lua_match *lm = (lua_match *)h;
    invocation v = {.fn = fn, .kind = C_PRESENCES, .ps = ps, .n = n, .nres = 1};
    int base, rc = call(lm, c, &v, &base, msg, cap);
    if (rc == KN_OK) {
        rc = keep_state(lm, -1, msg, cap);
        end_call(lm, base);
    }
    if (!strcmp(fn, "match_leave")) forget_presences(lm->vm->L, lm, ps, n);
    return rc;
}

static int m_join(kn_match_handler *h, const kn_match_call *c, const kn_match_presence *const *ps,
                  size_t n, char *msg, size_t cap)
{
    return m_presences(h, c, ps, n, "match_join", msg, cap);
}

static int m_leave(kn_match_handler *h, const kn_match_call *c, const kn_match_presence *const *ps,
                   size_t n, char *msg, size_t cap)
{
    return m_presences(h, c, ps, n, "match_leave", msg, cap);
}

static int m_loop(kn_match_handler *h, const kn_match_call *c, const kn_match_message *msgs,
                  size_t n, bool *end, char *msg, size_t cap)
{
    lua_match *lm = (lua_match *)h;
    *end = false;
    invocation v = {.fn = "match_loop", .kind = C_LOOP, .msgs = msgs, .n = n, .nres = 1};
    int base, rc = call(lm, c, &v, &base, msg, cap);
    if (rc) return rc;
    rc = keep_state(lm, -1, msg, cap);
    if (rc == KN_ERR_CANCELLED) {
        *end = true;
        rc = KN_OK;
    }
    end_call(lm, base);
    return rc;
}

static int m_terminate(kn_match_handler *h, const kn_match_call *c, int grace_seconds, char *msg,
                       size_t cap)
{
    lua_match *lm = (lua_match *)h;
    invocation v = {.fn = "match_terminate", .kind = C_TERMINATE, .grace = grace_seconds,
                    .nres = 1};
    int base, rc = call(lm, c, &v, &base, msg, cap);
    if (rc == KN_OK) end_call(lm, base);
    return rc;
}

static int m_signal(kn_match_handler *h, const kn_match_call *c, const char *data, size_t len,
                    char **response, size_t *response_len, char *msg, size_t cap)
{
    lua_match *lm = (lua_match *)h;
    lua_State *L = lm->vm->L;
    invocation v = {.fn = "match_signal", .kind = C_SIGNAL, .text = data, .text_len = len,
                    .nres = 2};
    int base, rc = call(lm, c, &v, &base, msg, cap);
    if (rc) return rc;
    rc = keep_state(lm, -2, msg, cap);
    if (rc == KN_OK && lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        *response = kn_strndup(s, n);
        *response_len = n;
        if (!*response) rc = KN_ERR_NOMEM;
    }
    end_call(lm, base);
    return rc;
}

static void m_destroy(kn_match_handler *h)
{
    lua_match *lm = (lua_match *)h;
    rt_watch_del(lm->host, lm->vm);
    kn_runtime_vm_destroy(lm->vm);
    kn_free(lm);
}

static const kn_match_handler_vt lua_match_vt = {
    m_init, m_join_attempt, m_join, m_leave, m_loop, m_terminate, m_signal, m_destroy,
};

/* Builds the per-match tables inside the VM (protected: may raise OOM). */
static int setup_match(lua_State *L)
{
    lua_match *lm = lua_touserdata(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rt_key_matches);
    if (lua_getfield(L, -1, lm->name) != LUA_TTABLE) return luaL_error(L, "no such handler");
    lm->handlers = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushnil(L);
    lm->state = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    lm->presences = luaL_ref(L, LUA_REGISTRYINDEX);
    static const luaL_Reg dfuncs[] = {
        {"broadcast_message", d_broadcast},
        {"broadcast_message_deferred", d_broadcast_deferred},
        {"match_kick", d_kick},
        {"match_label_update", d_label_update},
        {NULL, NULL},
    };
    luaL_newlibtable(L, dfuncs);
    lua_pushlightuserdata(L, lm);
    luaL_setfuncs(L, dfuncs, 1);
    lm->dispatcher = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, lm->cur->match_id);
    lua_setfield(L, -2, "match_id");
    lua_pushstring(L, lm->cur->node);
    lua_setfield(L, -2, "match_node");
    lua_pushstring(L, "match");
    lua_setfield(L, -2, "execution_mode");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rt_key_env);
    lua_setfield(L, -2, "env");
    lm->context = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int kn_runtime_match_factory(void *ud, const char *name, const char *match_id, const char *node,
                             kn_match_handler **out, char *msg, size_t cap)
{
    *out = NULL;
    kn_runtime_host *host = ud;
    kn_runtime *rt = rt_host_current(host);
    bool known = false;
    for (size_t i = 0; i < rt->n_match_names && !known; i++) known = !strcmp(rt->match_names[i], name);
    if (!known) {
        kn_runtime_destroy(rt);
        snprintf(msg, cap, "no match handler \"%s\" (kaos.register_match)", name);
        return KN_ERR_NOT_FOUND;
    }
    lua_match *lm = kn_calloc(1, sizeof *lm);
    if (!lm) {
        kn_runtime_destroy(rt);
        return KN_ERR_NOMEM;
    }
    lm->base.vt = &lua_match_vt;
    lm->host = host;
    snprintf(lm->name, sizeof lm->name, "%s", name);
    char err[256] = "";
    int rc = rt_vm_create(rt, true, &lm->vm, err, sizeof err);
    kn_runtime_destroy(rt); /* the VM holds its own reference */
    if (rc) {
        snprintf(msg, cap, "match handler %s: %s", name, err);
        kn_free(lm);
        return rc == KN_ERR_NOMEM ? rc : KN_ERR_INTERNAL;
    }
    rt_heap *heap = &lm->vm->heap;
    heap->limit = lm->vm->rt->match_memory_limit > heap->used ? lm->vm->rt->match_memory_limit
                                                              : heap->used + ((size_t)1 << 20);
    lm->vm->budget_ms = lm->vm->rt->match_budget_ms;
    lua_State *L = lm->vm->L;
    lua_gc(L, LUA_GCGEN, 0, 0); /* per-tick garbage dies young */
    kn_match_call c = {.match_id = match_id, .node = node};
    lm->cur = &c;
    lua_pushcfunction(L, setup_match);
    lua_pushlightuserdata(L, lm);
    rc = lua_pcall(L, 1, 0, 0);
    lm->cur = NULL;
    if (rc != LUA_OK) {
        snprintf(msg, cap, "match handler %s: %s", name, lua_tostring(L, -1));
        kn_runtime_vm_destroy(lm->vm);
        kn_free(lm);
        return KN_ERR_INTERNAL;
    }
    lm->vm->host = host;
    lm->vm->match = true;
    rt_watch_add(host, lm->vm);
    *out = &lm->base;
    return KN_OK;
}
