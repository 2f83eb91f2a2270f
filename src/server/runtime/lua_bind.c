/* lua_bind: the binding API of kn_lua_bind.h, the JSON <-> Lua conversions
 * behind it (shared with runtime.c and the match handler), and the opening
 * of registered bindings into a VM's `kaos` table.
 *
 * Invariants: nothing here keeps a jansson value or a malloc'd string in a
 * C local across a call that may raise; each one sits in a holder userdata
 * whose __gc frees it, so a Lua error (out of memory included) never leaks. */
#include "kn_lua_bind.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "runtime_internal.h"

#include <assert.h>
#include <jansson.h>
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

static int json_holder_gc(lua_State *L)
{
    json_t **h = lua_touserdata(L, 1);
    json_decref(*h);
    *h = NULL;
    return 0;
}

json_t **rt_json_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(json_t *), "kaos.json", json_holder_gc);
}

/* Text from json_dumps (jansson allocates it with malloc). */
static int text_holder_gc(lua_State *L)
{
    char **h = lua_touserdata(L, 1);
    free(*h);
    *h = NULL;
    return 0;
}

/* --- JSON <-> Lua ---------------------------------------------------------------------- */

/* Lua value -> jansson. Never raises (a raise would leak the partial tree):
 * returns NULL and sets *why instead. */
json_t *rt_to_json(lua_State *L, int idx, int depth, const char **why)
{
    idx = lua_absindex(L, idx);
    if (depth > JSON_MAX_DEPTH || !lua_checkstack(L, 4)) {
        *why = "nested too deep";
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) ? json_integer((json_int_t)lua_tointeger(L, idx))
                                     : json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *str = lua_tolstring(L, idx, &n);
        json_t *j = json_stringn(str, n);
        if (!j) *why = "strings must be UTF-8";
        return j;
    }
    case LUA_TTABLE: {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        json_t *out = n > 0 ? json_array() : json_object();
        if (!out) {
            *why = "out of memory";
            return NULL;
        }
        for (lua_Integer i = 1; n > 0 && i <= n; i++) {
            lua_rawgeti(L, idx, i);
            json_t *v = rt_to_json(L, -1, depth + 1, why);
            lua_pop(L, 1);
            if (!v || json_array_append_new(out, v)) goto fail;
        }
        if (n == 0) {
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                if (lua_type(L, -2) != LUA_TSTRING) {
                    lua_pop(L, 2);
                    *why = "object keys must be strings (or use a sequence)";
                    goto fail;
                }
                json_t *v = rt_to_json(L, -1, depth + 1, why);
                if (!v || json_object_set_new(out, lua_tostring(L, -2), v)) {
                    lua_pop(L, 2);
                    goto fail;
                }
                lua_pop(L, 1);
            }
        }
        return out;
    fail:
        if (!*why) *why = "out of memory";
        json_decref(out);
        return NULL;
    }
    default:
        *why = "cannot encode functions, userdata or threads";
        return NULL;
    }
}

void rt_from_json(lua_State *L, json_t *j, int depth)
{
    luaL_checkstack(L, 4, "json_decode");
    if (depth > JSON_MAX_DEPTH) luaL_error(L, "json_decode: nested too deep");
    switch (json_typeof(j)) {
    case JSON_NULL:
        lua_pushnil(L);
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        break;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        lua_createtable(L, (int)json_array_size(j), 0);
        json_array_foreach(j, i, v)
        {
            rt_from_json(L, v, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_foreach(j, k, v)
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
    json_t **h = rt_json_holder(L);
    *h = rt_to_json(L, idx, 0, why);
    if (!*h) {
        lua_pop(L, 1);
        if (!*why) *why = "out of memory"; /* a scalar jansson could not allocate */
        return KN_ERR_INVALID_ARGUMENT;
    }
    char **text = kn_lua_holder(L, sizeof(char *), "kaos.json_text", text_holder_gc);
    *text = json_dumps(*h, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!*text) {
        lua_pop(L, 2); /* both holders; their __gc frees the value */
        *why = "out of memory";
        return KN_ERR_NOMEM;
    }
    lua_pushstring(L, *text);
    free(*text);
    *text = NULL;
    json_decref(*h);
    *h = NULL;
    lua_replace(L, -3); /* the text where the first holder was */
    lua_pop(L, 1);
    if (len) *len = lua_rawlen(L, -1);
    return KN_OK;
}

void kn_lua_push_stored_json(lua_State *L, const char *text, size_t len)
{
    json_t **h = rt_json_holder(L);
    json_error_t e;
    *h = text ? json_loadb(text, len, 0, &e) : NULL;
    if (*h) {
        rt_from_json(L, *h, 0);
        json_decref(*h);
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
