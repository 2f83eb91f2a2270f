/* lua_bind: the binding API of kn_lua_bind.h, the JSON <-> Lua conversions
 * behind it (shared with runtime.c and the match handler), and the opening
 * of registered bindings into a VM's `kaos` table.
 *
 * Invariants: nothing here keeps a kn_json value or a malloc'd string in a
 * C local across a call that may raise; each one sits in a holder userdata
 * whose __gc frees it, so a Lua error (out of memory included) never leaks. */
#include "kn_lua_bind.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_session.h"
#include "runtime_internal.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

/* --- bindings ------------------------------------------------------------------------ */

void rt_open_bindings(lua_State *L, const kn_lua_binding *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (const luaL_Reg *f = b[i].funcs; f->name; f++) {
            /* Two functions of one name would silently replace each other. */
            int taken = lua_getfield(L, -1, f->name) != LUA_TNIL;
            lua_pop(L, 1);
            assert(!taken && "a binding repeats the name of a kaos function");
            (void)taken;
        }
        lua_pushlightuserdata(L, b[i].ud);
        luaL_setfuncs(L, b[i].funcs, 1);
    }
}

void *kn_lua_binding_ud(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

kn_db *kn_lua_db(lua_State *L, const char *fn_name)
{
    kn_runtime_vm *vm = rt_vm_of(L);
    if (vm->services && vm->services->db) return vm->services->db;
    luaL_error(L, "kaos.%s is not available in %s (no database connection)", fn_name,
               vm->mode ? vm->mode : "module loading");
    return NULL; /* not reached */
}

const char *kn_lua_mode(lua_State *L)
{
    return rt_vm_of(L)->mode;
}

/* --- errors ------------------------------------------------------------------------------ */

int kn_lua_raise_coded(lua_State *L, int rc, const char *msg)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, kn_err_to_wire(rc));
    lua_setfield(L, -2, "code");
    lua_pushstring(L, msg && *msg ? msg : kn_err_text(rc));
    lua_setfield(L, -2, "message");
    return lua_error(L);
}

int kn_lua_raise_codedf(lua_State *L, int rc, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kn_lua_raise_coded(L, rc, msg);
}

/* --- holders ------------------------------------------------------------------------------ */

void *kn_lua_holder(lua_State *L, size_t size, const char *type, lua_CFunction gc)
{
    void *h = lua_newuserdatauv(L, size, 0);
    memset(h, 0, size);
    if (luaL_newmetatable(L, type)) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return h;
}

const char **kn_lua_string_list(lua_State *L, int idx, bool nil_ok, const char *what, size_t *n)
{
    idx = lua_absindex(L, idx); /* the userdata pushed below must not shift it */
    *n = 0;
    if (!(nil_ok && lua_isnoneornil(L, idx))) {
        luaL_checktype(L, idx, LUA_TTABLE);
        *n = lua_rawlen(L, idx);
    }
    const char **list = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *list, 0);
    for (size_t i = 0; i < *n; i++) {
        if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TSTRING)
            kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "%s must be a list of strings", what);
        list[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    return list;
}

static int json_holder_gc(lua_State *L)
{
    kn_json **h = lua_touserdata(L, 1);
    kn_json_decref(*h);
    *h = NULL;
    return 0;
}

kn_json **rt_json_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(kn_json *), "kaos.json", json_holder_gc);
}

/* Text from kn_json_dump (not kn_malloc'd: kn_json_free_text releases it). */
static int text_holder_gc(lua_State *L)
{
    char **h = lua_touserdata(L, 1);
    kn_json_free_text(*h);
    *h = NULL;
    return 0;
}

/* --- JSON <-> Lua ---------------------------------------------------------------------- */

/* Lua value -> kn_json. Never raises (a raise would leak the partial tree):
 * returns NULL and sets *why instead. */
kn_json *rt_to_json(lua_State *L, int idx, int depth, const char **why)
{
    idx = lua_absindex(L, idx);
    if (depth > JSON_MAX_DEPTH || !lua_checkstack(L, 4)) {
        *why = "nested too deep";
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return kn_json_null();
    case LUA_TBOOLEAN:
        return kn_json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) ? kn_json_integer((int64_t)lua_tointeger(L, idx))
                                     : kn_json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *str = lua_tolstring(L, idx, &n);
        kn_json *j = kn_json_stringn(str, n);
        if (!j) *why = "strings must be UTF-8";
        return j;
    }
    case LUA_TTABLE: {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        kn_json *out = n > 0 ? kn_json_array() : kn_json_object();
        if (!out) {
            *why = "out of memory";
            return NULL;
        }
        for (lua_Integer i = 1; n > 0 && i <= n; i++) {
            lua_rawgeti(L, idx, i);
            kn_json *v = rt_to_json(L, -1, depth + 1, why);
            lua_pop(L, 1);
            if (!v || kn_json_array_append_new(out, v)) goto fail;
        }
        if (n == 0) {
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                if (lua_type(L, -2) != LUA_TSTRING) {
                    lua_pop(L, 2);
                    *why = "object keys must be strings (or use a sequence)";
                    goto fail;
                }
                kn_json *v = rt_to_json(L, -1, depth + 1, why);
                if (!v || kn_json_object_set_new(out, lua_tostring(L, -2), v)) {
                    lua_pop(L, 2);
                    goto fail;
                }
                lua_pop(L, 1);
            }
        }
        return out;
    fail:
        if (!*why) *why = "out of memory";
        kn_json_decref(out);
        return NULL;
    }
    default:
        *why = "cannot encode functions, userdata or threads";
        return NULL;
    }
}

void rt_from_json(lua_State *L, kn_json *j, int depth)
{
    luaL_checkstack(L, 4, "json_decode");
    if (depth > JSON_MAX_DEPTH) luaL_error(L, "json_decode: nested too deep");
    switch (kn_json_typeof(j)) {
    case KN_JSON_NULL:
        lua_pushnil(L);
        break;
    case KN_JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case KN_JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    case KN_JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)kn_json_integer_value(j));
        break;
    case KN_JSON_REAL:
        lua_pushnumber(L, kn_json_real_value(j));
        break;
    case KN_JSON_STRING:
        lua_pushlstring(L, kn_json_string_value(j), kn_json_string_length(j));
        break;
    case KN_JSON_ARRAY: {
        size_t i;
        kn_json *v;
        lua_createtable(L, (int)kn_json_array_size(j), 0);
        for (i = 0; i < kn_json_array_size(j) && (v = kn_json_array_get(j, i)); i++) {
            rt_from_json(L, v, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case KN_JSON_OBJECT: {
        const char *k;
        kn_json *v;
        lua_createtable(L, 0, (int)kn_json_object_size(j));
        kn_json_object_foreach(j, k, v)
        {
            rt_from_json(L, v, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    }
}

int kn_lua_push_json(lua_State *L, int idx, size_t *len, const char **why)
{
    idx = lua_absindex(L, idx);
    *why = NULL;
    kn_json **h = rt_json_holder(L);
    *h = rt_to_json(L, idx, 0, why);
    if (!*h) {
        lua_pop(L, 1);
        if (!*why) *why = "out of memory"; /* a scalar the JSON library could not allocate */
        return KN_ERR_INVALID_ARGUMENT;
    }
    char **text = kn_lua_holder(L, sizeof(char *), "kaos.json_text", text_holder_gc);
    *text = kn_json_dump(*h, KN_JSON_COMPACT | KN_JSON_ENCODE_ANY);
    if (!*text) {
        lua_pop(L, 2); /* both holders; their __gc frees the value */
        *why = "out of memory";
        return KN_ERR_NOMEM;
    }
    lua_pushstring(L, *text);
    kn_json_free_text(*text);
    *text = NULL;
    kn_json_decref(*h);
    *h = NULL;
    lua_replace(L, -3); /* the text where the first holder was */
    lua_pop(L, 1);
    if (len) *len = lua_rawlen(L, -1);
    return KN_OK;
}

void kn_lua_push_stored_json(lua_State *L, const char *text, size_t len)
{
    kn_json **h = rt_json_holder(L);
    kn_json_error e;
    *h = text ? kn_json_parse(text, len, 0, &e) : NULL;
    if (*h) {
        rt_from_json(L, *h, 0);
        kn_json_decref(*h);
        *h = NULL;
    } else {
        lua_newtable(L);
    }
    lua_remove(L, -2); /* the holder */
}

/* --- building tables ---------------------------------------------------------------------- */

void kn_lua_set_string(lua_State *L, const char *key, const char *value)
{
    lua_pushstring(L, value ? value : "");
    lua_setfield(L, -2, key);
}

void kn_lua_set_integer(lua_State *L, const char *key, int64_t value)
{
    lua_pushinteger(L, (lua_Integer)value);
    lua_setfield(L, -2, key);
}

void kn_lua_push_entity(lua_State *L, const kn_entity *e, const void *obj)
{
    lua_createtable(L, 0, (int)e->n_fields);
    for (size_t i = 0; i < e->n_fields; i++) {
        const kn_entity_field *f = &e->fields[i];
        switch (f->kind) {
        case KN_FIELD_STRING: kn_lua_set_string(L, f->name, kn_entity_text(f, obj)); break;
        case KN_FIELD_JSON: {
            const char *text = kn_entity_text(f, obj);
            kn_lua_push_stored_json(L, text, text ? strlen(text) : 0);
            lua_setfield(L, -2, f->name);
            break;
        }
        case KN_FIELD_BOOL:
            lua_pushboolean(L, kn_entity_integer(f, obj) != 0);
            lua_setfield(L, -2, f->name);
            break;
        default: kn_lua_set_integer(L, f->name, kn_entity_integer(f, obj)); break;
        }
    }
}

kn_lua_session kn_lua_session_arg(lua_State *L, kn_sessions *ss, int idx)
{
    const char *user_id = luaL_checkstring(L, idx), *session_id = luaL_checkstring(L, idx + 1);
    kn_lua_session s = {0};
    kn_conn_id conn = 0;
    if (strlen(user_id) > 36 || strlen(session_id) > 36 ||
        kn_sessions_find(ss, user_id, session_id, &conn, s.username, sizeof s.username))
        kn_lua_raise_coded(L, KN_ERR_NOT_FOUND, "session not found");
    s.conn = conn;
    snprintf(s.user_id, sizeof s.user_id, "%s", user_id);
    snprintf(s.session_id, sizeof s.session_id, "%s", session_id);
    return s;
}
