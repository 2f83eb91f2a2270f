/* runtime: module loading, the sandbox, the `kaos` table and RPC calls.
 *
 * `kaos` holds the runtime's own functions (registration, logging, JSON,
 * hashing, time) and the functions of every binding the runtime was loaded
 * with (kn_runtime_config.bindings: the services' kaos.* functions, which
 * live in each service's folder). Every VM opens the same set, so a module
 * sees the same `kaos` in the check VM, an API worker's VM and a match's VM.
 * This file names no service. */
#include "kn_runtime.h"
#include "runtime_internal.h"
#include "kn_codec_json.h"
#include "kn_crypto.h"
#include "kn_cron.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"
#include "kn_uuid.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MODULE_BYTES     (1 << 20)
#define DEFAULT_MEMORY_LIMIT ((size_t)64 << 20)

/* Registry keys (addresses are unique). */
static const char key_rpcs = 0, key_loaded = 0, key_vm = 0, key_run_once = 0;
const char rt_key_env = 0, rt_key_matches = 0;
static const char key_hooks[2] = {0, 0}; /* tables message case -> function */

__attribute__((format(printf, 3, 4))) static void set_msg(char *msg, size_t cap, const char *fmt,
                                                          ...)
{
    if (!msg || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
}

/* --- loading files --------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const module *)a)->name, ((const module *)b)->name);
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return KN_ERR_IO;
    char *buf = kn_malloc(MAX_MODULE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_MODULE_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf) return KN_ERR_NOMEM;
    if (n > MAX_MODULE_BYTES) {
        kn_free(buf);
        return KN_ERR_TOO_LARGE;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return KN_OK;
}

static void runtime_acquire(const kn_runtime *rt)
{
    atomic_fetch_add(&((kn_runtime *)rt)->refs, 1);
}

void kn_runtime_destroy(kn_runtime *rt)
{
    if (!rt || atomic_fetch_sub(&rt->refs, 1) > 1) return;
    for (size_t i = 0; i < rt->env_count; i++) {
        kn_free(rt->env_keys[i]);
        kn_free(rt->env_values[i]);
    }
    for (size_t i = 0; i < rt->n_match_names; i++)
        kn_free(rt->match_names[i]);
    for (size_t i = 0; i < rt->n_rpc_names; i++)
        kn_free(rt->rpc_names[i]);
    for (size_t i = 0; i < rt->count; i++) {
        kn_free(rt->mods[i].name);
        kn_free(rt->mods[i].chunk);
        kn_free(rt->mods[i].source);
    }
    kn_free(rt);
}

size_t kn_runtime_module_count(const kn_runtime *rt)
{
    return rt->count;
}

static int scan(kn_runtime *rt, const char *path, char *err, size_t cap)
{
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT) return KN_OK; /* no modules */
        set_msg(err, cap, "cannot read runtime path %s: %s", path, strerror(errno));
        return KN_ERR_CONFIG;
    }
    int rc = KN_OK;
    struct dirent *e;
    while (rc == KN_OK && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".lua") || e->d_name[0] == '.') continue;
        if (rt->count == MAX_MODULES) {
            set_msg(err, cap, "more than %d modules in %s", MAX_MODULES, path);
            rc = KN_ERR_CONFIG;
            break;
        }
        module *m = &rt->mods[rt->count];
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        m->name = kn_strndup(e->d_name, n - 4);
        m->chunk = kn_malloc(n + 2);
        if (!m->name || !m->chunk) {
            rc = KN_ERR_NOMEM;
        } else {
            snprintf(m->chunk, n + 2, "@%s", e->d_name);
            rc = read_file(file, &m->source, &m->len);
            if (rc) set_msg(err, cap, "%s: %s", e->d_name, kn_err_text(rc));
        }
        rt->count++; /* counted even when partial, so destroy frees it */
    }
    closedir(d);
    if (rc == KN_OK) qsort(rt->mods, rt->count, sizeof rt->mods[0], by_name);
    return rc;
}

/* --- the VM -------------------------------------------------------------------- */

kn_runtime_vm *rt_vm_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_vm);
    kn_runtime_vm *vm = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return vm;
}

/* load(chunk [, name [, mode [, env]]]) with mode forced to text. */
static int safe_load(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    int has_env = !lua_isnone(L, 4);
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
}

static int run_module(lua_State *L, const module *m);

/* require(name): "kaos" or a module of the runtime path, each run once. */
static int safe_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_loaded);
    if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    kn_runtime_vm *vm = rt_vm_of(L);
    for (size_t i = 0; i < vm->rt->count; i++) {
        if (strcmp(vm->rt->mods[i].name, name)) continue;
        lua_pushboolean(L, 1); /* mark first: a cycle sees `true`, not a loop */
        lua_setfield(L, -2, name);
        if (run_module(L, &vm->rt->mods[i]) != LUA_OK) return lua_error(L);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, name);
        return 1;
    }
    return luaL_error(L, "module '%s' not found in the runtime path", name);
}

static int run_module(lua_State *L, const module *m)
{
    int rc = luaL_loadbufferx(L, m->source, m->len, m->chunk, "t");
    if (rc == LUA_OK) rc = lua_pcall(L, 0, 1, 0);
    return rc;
}

/* --- the kaos table ------------------------------------------------------------------ */

static int k_run_once(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_run_once);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int k_register_rpc(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    const char *id = luaL_checkstring(L, 2);
    if (!*id || strlen(id) > 128) return luaL_error(L, "rpc id must be 1-128 bytes");
    if (!strncmp(id, "kaos.", 5))
        return luaL_error(L, "rpc ids starting with \"kaos.\" are reserved");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_rpcs);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, id);
    return 0;
}

static int k_json_decode(lua_State *L);

/* The RPCs stored by register_matchmaker_*: (context, payload) ->
 * fn(context, decoded payload). The matched hook's result must be a match
 * id or nil; the processor's and the override's a table of groups (sent
 * back as JSON) or nil (the built-in matcher's groups stand). The upvalues:
 * fn, and whether the result goes back as JSON. */
static int mm_trampoline(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushcfunction(L, k_json_decode);
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);
    lua_call(L, 2, 1);
    if (lua_isnil(L, -1)) return 1;
    if (!lua_toboolean(L, lua_upvalueindex(2))) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "matchmaker_matched returns a match id (string) or nil, not a %s",
                              luaL_typename(L, -1));
        return 1;
    }
    if (lua_type(L, -1) != LUA_TTABLE)
        return luaL_error(L, "a matchmaker hook returns groups (a table of tables of ticket ids)");
    const char *why;
    if (kn_lua_push_json(L, lua_gettop(L), NULL, &why)) return luaL_error(L, "groups: %s", why);
    return 1;
}

/* One per runtime each; the last registration wins. */
static int register_mm_hook(lua_State *L, const char *id, bool json_result)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_rpcs);
    lua_pushvalue(L, 1);
    lua_pushboolean(L, json_result);
    lua_pushcclosure(L, mm_trampoline, 2);
    lua_setfield(L, -2, id);
    return 0;
}

/* register_matchmaker_matched(fn): fn(context, matched_users) -> match id or nil. */
static int k_register_matchmaker_matched(lua_State *L)
{
    return register_mm_hook(L, KN_RUNTIME_MATCHED_ID, false);
}

/* register_matchmaker_processor(fn): fn(context, tickets) -> groups. */
static int k_register_matchmaker_processor(lua_State *L)
{
    return register_mm_hook(L, KN_RUNTIME_PROCESSOR_ID, true);
}

/* register_matchmaker_override(fn): fn(context, candidate_groups) -> groups. */
static int k_register_matchmaker_override(lua_State *L)
{
    return register_mm_hook(L, KN_RUNTIME_OVERRIDE_ID, true);
}

/* register_match(name, handlers): the table of match_* functions. */
static int k_register_match(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!*name || strlen(name) > 128)
        return luaL_error(L, "match handler name must be 1-128 bytes");
    static const char *const need[] = {"match_init",  "match_join_attempt", "match_join",
                                       "match_leave", "match_loop",         "match_terminate",
                                       "match_signal"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (lua_getfield(L, 2, need[i]) != LUA_TFUNCTION)
            return luaL_error(L, "match handler \"%s\": %s is not a function", name, need[i]);
        lua_pop(L, 1);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rt_key_matches);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, name);
    return 0;
}

/* register_req_before(fn, op) / register_req_after(fn, op) */
static int register_hook(lua_State *L, kn_hook_kind kind)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    const char *op = luaL_checkstring(L, 2);
    int c = kn_envelope_case_by_name(op);
    if (!c) return luaL_error(L, "unknown operation \"%s\" (see docs/lua-api.md)", op);
    if (c >= KN_RUNTIME_HOOK_CASES)
        return luaL_error(L, "operation \"%s\" is past the hook table (%d cases)", op,
                          KN_RUNTIME_HOOK_CASES);
    if (c == KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA_SEND)
        return luaL_error(L, "match_data_send takes no hooks (it is the realtime path); "
                             "use an authoritative match handler");
    kn_runtime_vm *vm = rt_vm_of(L);
    if (vm->rt->is_client_op && !vm->rt->is_client_op(c))
        return luaL_error(L, "\"%s\" is not a client operation", op);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_hooks[kind]);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, c);
    return 0;
}
static int k_register_req_before(lua_State *L)
{
    return register_hook(L, KN_HOOK_BEFORE);
}
static int k_register_req_after(lua_State *L)
{
    return register_hook(L, KN_HOOK_AFTER);
}

/* logger_*(message, ...): string.format when there are arguments. */
static int log_at(lua_State *L, kn_log_level level)
{
    if (level < kn_log_threshold) return 0;
    const char *msg;
    if (lua_gettop(L) > 1) {
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "format");
        lua_insert(L, 1);
        lua_pop(L, 1);
        lua_call(L, lua_gettop(L) - 1, 1);
        msg = lua_tostring(L, -1);
    } else {
        msg = luaL_tolstring(L, 1, NULL);
    }
    lua_Debug ar;
    const char *where = "?";
    int line = 0;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
        where = ar.short_src;
        line = ar.currentline;
    }
    kn_log_write(level, where, line, "%s", msg ? msg : "");
    return 0;
}
static int k_debug(lua_State *L)
{
    return log_at(L, KN_LOG_DEBUG);
}
static int k_info(lua_State *L)
{
    return log_at(L, KN_LOG_INFO);
}
static int k_warn(lua_State *L)
{
    return log_at(L, KN_LOG_WARN);
}
static int k_error(lua_State *L)
{
    return log_at(L, KN_LOG_ERROR);
}

static int k_uuid_v4(lua_State *L)
{
    char u[KN_UUID_STR_LEN + 1];
    kn_uuid_v4(u);
    lua_pushstring(L, u);
    return 1;
}

static int k_time(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)kn_time_wall_ms());
    return 1;
}

static int k_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    const char *why;
    if (kn_lua_push_json(L, 1, NULL, &why)) return luaL_error(L, "json_encode: %s", why);
    return 1;
}

static int k_json_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    kn_json_error e;
    kn_json **h = rt_json_holder(L);
    *h = kn_json_parse(s, n, KN_JSON_DECODE_ANY | KN_JSON_REJECT_DUPLICATES, &e);
    if (!*h) return luaL_error(L, "json_decode: %s at line %d column %d", e.text, e.line, e.column);
    rt_from_json(L, *h, 0);
    return 1;
}

static int k_base64_encode(lua_State *L)
{
    size_t n;
    const char *in = luaL_checklstring(L, 1, &n);
    size_t cap = KN_CRYPTO_BASE64_LEN(n, KN_CRYPTO_BASE64);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, cap);
    kn_crypto_base64_encode(out, cap, in, n, KN_CRYPTO_BASE64);
    luaL_pushresultsize(&b, strlen(out));
    return 1;
}

static int k_base64_decode(lua_State *L)
{
    size_t n, got = 0;
    const char *in = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n / 4 * 3 + 3);
    if (kn_crypto_base64_decode(out, n / 4 * 3 + 3, in, n, "\n\r ", &got, NULL, KN_CRYPTO_BASE64))
        return luaL_error(L, "base64_decode: invalid base64");
    luaL_pushresultsize(&b, got);
    return 1;
}

static void push_hex(lua_State *L, const unsigned char *bin, size_t n)
{
    char hex[2 * 64 + 1];
    kn_crypto_hex_encode(hex, sizeof hex, bin, n);
    lua_pushstring(L, hex);
}

static int k_sha256_hash(lua_State *L)
{
    size_t n;
    const char *in = luaL_checklstring(L, 1, &n);
    uint8_t h[KN_CRYPTO_SHA256_SIZE];
    kn_crypto_sha256(h, in, n);
    push_hex(L, h, sizeof h);
    return 1;
}

static int k_hmac_sha256_hash(lua_State *L)
{
    size_t n, kn;
    const char *in = luaL_checklstring(L, 1, &n);
    const char *key = luaL_checklstring(L, 2, &kn);
    uint8_t h[KN_CRYPTO_HMAC_SHA256_SIZE];
    kn_crypto_hmac_sha256(h, key, kn, in, n);
    push_hex(L, h, sizeof h);
    return 1;
}

/* cron_next(expression, unix_seconds) -> the next matching Unix second (UTC)
 * strictly after, or nil when the expression can never fire. */
static int k_cron_next(lua_State *L)
{
    const char *expr = luaL_checkstring(L, 1);
    lua_Integer after = luaL_checkinteger(L, 2);
    kn_cron c;
    char why[160];
    if (kn_cron_parse(expr, &c, why, sizeof why)) return luaL_error(L, "cron_next: %s", why);
    int64_t next;
    int rc = kn_cron_next(&c, (int64_t)after, &next);
    if (rc == KN_ERR_NOT_FOUND) {
        lua_pushnil(L);
        return 1;
    }
    if (rc) return luaL_error(L, "cron_next: time %lld is out of range", (long long)after);
    lua_pushinteger(L, (lua_Integer)next);
    return 1;
}

static const luaL_Reg kaos_funcs[] = {
    {"cron_next", k_cron_next},
    {"base64_encode", k_base64_encode},
    {"base64_decode", k_base64_decode},
    {"sha256_hash", k_sha256_hash},
    {"hmac_sha256_hash", k_hmac_sha256_hash},
    {"register_rpc", k_register_rpc},
    {"register_req_before", k_register_req_before},
    {"register_match", k_register_match},
    {"register_matchmaker_matched", k_register_matchmaker_matched},
    {"register_matchmaker_processor", k_register_matchmaker_processor},
    {"register_matchmaker_override", k_register_matchmaker_override},
    {"register_req_after", k_register_req_after},
    {"run_once", k_run_once},
    {"logger_debug", k_debug},
    {"logger_info", k_info},
    {"logger_warn", k_warn},
    {"logger_error", k_error},
    {"uuid_v4", k_uuid_v4},
    {"time", k_time},
    {"json_encode", k_json_encode},
    {"json_decode", k_json_decode},
    {NULL, NULL},
};

/* --- sandbox and VM creation ------------------------------------------------------------ */

static void open_sandbox(lua_State *L, const kn_runtime *rt)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os},      {NULL, NULL},
    };
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    /* string: pattern functions that cannot backtrack for hours (pattern.c). */
    lua_getglobal(L, "string");
    rt_pattern_open(L, -1);
    lua_pop(L, 1);
    /* os: only the clock and calendar functions. */
    lua_getglobal(L, "os");
    static const char *const os_keep[] = {"time", "clock", "date", "difftime"};
    lua_newtable(L);
    for (size_t i = 0; i < sizeof os_keep / sizeof os_keep[0]; i++) {
        lua_getfield(L, -2, os_keep[i]);
        lua_setfield(L, -2, os_keep[i]);
    }
    lua_setglobal(L, "os");
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_pushcfunction(L, safe_load);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, safe_require);
    lua_setglobal(L, "require");

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_rpcs);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_run_once);
    for (int k = 0; k < 2; k++) {
        lua_newtable(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &key_hooks[k]);
    }
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rt_key_matches);
    lua_newtable(L); /* loaded modules, with "kaos" preloaded */
    luaL_newlib(L, kaos_funcs);
    rt_open_bindings(L, rt->bindings, rt->n_bindings);
    lua_setfield(L, -2, "kaos");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_loaded);
}

int rt_vm_create(const kn_runtime *rt, bool pooled, kn_runtime_vm **out, char *err, size_t cap)
{
    *out = NULL;
    kn_runtime_vm *vm = kn_calloc(1, sizeof *vm);
    if (!vm) return KN_ERR_NOMEM;
    vm->rt = rt;
    runtime_acquire(rt);
    rt_heap_init(&vm->heap, rt->memory_limit);
    vm->heap.pooled = pooled;
    vm->budget_ms = rt->call_budget_ms;
    vm->L = lua_newstate(rt_heap_lua_alloc, &vm->heap);
    if (!vm->L) {
        rt_heap_deinit(&vm->heap);
        kn_runtime_destroy((kn_runtime *)rt);
        kn_free(vm);
        return KN_ERR_NOMEM;
    }
    lua_State *L = vm->L;
    lua_pushlightuserdata(L, vm);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_vm);
    open_sandbox(L, rt);
    lua_createtable(L, 0, (int)rt->env_count);
    for (size_t i = 0; i < rt->env_count; i++) {
        lua_pushstring(L, rt->env_values[i]);
        lua_setfield(L, -2, rt->env_keys[i]);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rt_key_env);
    /* Load every module in order, through require so each runs once. */
    for (size_t i = 0; i < rt->count; i++) {
        lua_pushcfunction(L, safe_require);
        lua_pushstring(L, rt->mods[i].name);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            const char *m = lua_tostring(L, -1);
            set_msg(err, cap, "%s", m ? m : "error object is not a string");
            /* With err, the caller reports it (once); without, nobody else will. */
            if (!err)
                KN_ERROR("runtime module %s.lua failed to load: %s", rt->mods[i].name, m ? m : "?");
            kn_runtime_vm_destroy(vm);
            return KN_ERR_CONFIG;
        }
    }
    *out = vm;
    return KN_OK;
}

int kn_runtime_vm_create(const kn_runtime *rt, kn_runtime_vm **out)
{
    return rt_vm_create(rt, false, out, NULL, 0);
}

void kn_runtime_vm_destroy(kn_runtime_vm *vm)
{
    if (!vm) return;
    if (vm->L) lua_close(vm->L);
    rt_heap_deinit(&vm->heap); /* after lua_close: its objects live in the pages */
    kn_runtime_destroy((kn_runtime *)vm->rt);
    kn_free(vm);
}

static int parse_env(kn_runtime *rt, const char *env, char *err, size_t cap)
{
    for (const char *p = env; p && *p;) {
        const char *end = strchr(p, ','), *eq = strchr(p, '=');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            if (!eq || eq >= p + len || eq == p) {
                set_msg(err, cap, "runtime env: expected key=value, got \"%.*s\"", (int)len, p);
                return KN_ERR_CONFIG;
            }
            if (rt->env_count == MAX_ENV) {
                set_msg(err, cap, "runtime env: more than %d entries", MAX_ENV);
                return KN_ERR_CONFIG;
            }
            rt->env_keys[rt->env_count] = kn_strndup(p, (size_t)(eq - p));
            rt->env_values[rt->env_count] = kn_strndup(eq + 1, len - (size_t)(eq - p) - 1);
            rt->env_count++;
            if (!rt->env_keys[rt->env_count - 1] || !rt->env_values[rt->env_count - 1])
                return KN_ERR_NOMEM;
        }
        p += len + (end ? 1 : 0);
    }
    return KN_OK;
}

int rt_traceback(lua_State *L);
static void push_context(lua_State *L, const kn_runtime_context *c);

/* Calls every kaos.run_once function, in registration order, once. */
static int run_once_all(kn_runtime_vm *vm, char *err, size_t cap)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, rt_traceback);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_run_once);
    kn_runtime_context ctx = {"", "", "", "", "run_once", NULL, 0, NULL};
    vm->mode = "run_once";
    int rc = KN_OK;
    for (lua_Integer i = 1; rc == KN_OK && i <= (lua_Integer)lua_rawlen(L, top + 2); i++) {
        lua_rawgeti(L, top + 2, i);
        push_context(L, &ctx);
        if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) {
            const char *m = lua_tostring(L, -1);
            if (!m && lua_istable(L, -1)) { /* error({code =, message =}) */
                lua_getfield(L, -1, "message");
                m = lua_tostring(L, -1);
            }
            set_msg(err, cap, "run_once: %s", m ? m : "error object is not a string");
            rc = KN_ERR_CONFIG;
        }
    }
    vm->mode = NULL;
    lua_settop(L, top);
    return rc;
}

/* Every VM of a runtime registers the same hooks: note which, from one. */
/* The "kaos." script hooks the server asks for by id (kn_runtime_host_has_script). */
static const char *const script_ids[] = {KN_RUNTIME_MATCHED_ID, KN_RUNTIME_PROCESSOR_ID,
                                         KN_RUNTIME_OVERRIDE_ID};
#define N_SCRIPT_IDS (sizeof script_ids / sizeof script_ids[0])

static void record_hooks(kn_runtime *rt, kn_runtime_vm *vm)
{
    lua_State *L = vm->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_rpcs);
    for (size_t i = 0; i < N_SCRIPT_IDS; i++) {
        if (lua_getfield(L, -1, script_ids[i]) == LUA_TFUNCTION) rt->scripts |= 1u << i;
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, -2) && rt->n_rpc_names < MAX_RPC_NAMES) {
        if (lua_type(L, -2) == LUA_TSTRING)
            rt->rpc_names[rt->n_rpc_names++] = kn_strndup(lua_tostring(L, -2), 128);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    for (int k = 0; k < 2; k++) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &key_hooks[k]);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_Integer c = lua_tointeger(L, -2);
            if (c > 0 && c < KN_RUNTIME_HOOK_CASES) rt->hooks[k][c / 64] |= (uint64_t)1 << (c % 64);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rt_key_matches);
    lua_pushnil(L);
    while (lua_next(L, -2) && rt->n_match_names < MAX_MATCH_HANDLERS) {
        rt->match_names[rt->n_match_names++] = kn_strndup(lua_tostring(L, -2), 128);
        lua_pop(L, 1);
    }
    lua_settop(L, 0);
}

bool kn_runtime_has_hook(const kn_runtime *rt, kn_hook_kind kind, int c)
{
    return c > 0 && c < KN_RUNTIME_HOOK_CASES && (rt->hooks[kind][c / 64] >> (c % 64)) & 1;
}

int kn_runtime_load(const kn_runtime_config *cfg, kn_runtime **out, char *err, size_t cap)
{
    *out = NULL;
    kn_runtime *rt = kn_calloc(1, sizeof *rt);
    if (!rt) return KN_ERR_NOMEM;
    atomic_init(&rt->refs, 1);
    rt->memory_limit = cfg->memory_limit ? cfg->memory_limit : DEFAULT_MEMORY_LIMIT;
    rt->is_client_op = cfg->is_client_op;
    rt->bindings = cfg->bindings;
    rt->n_bindings = cfg->n_bindings;
    rt->call_budget_ms = cfg->call_budget_ms > 0 ? cfg->call_budget_ms : 2000;
    rt->match_budget_ms = cfg->match_budget_ms > 0 ? cfg->match_budget_ms : 200;
    rt->match_memory_limit = cfg->match_memory_limit ? cfg->match_memory_limit : (size_t)32 << 20;
    int rc = parse_env(rt, cfg->env, err, cap);
    if (rc == KN_OK && cfg->path && *cfg->path) rc = scan(rt, cfg->path, err, cap);
    kn_runtime_vm *check = NULL;
    /* Every module must load and run cleanly before anything serves. */
    if (rc == KN_OK) rc = rt_vm_create(rt, false, &check, err, cap);
    if (rc == KN_OK) record_hooks(rt, check);
    if (rc == KN_OK && cfg->run_once) rc = run_once_all(check, err, cap);
    kn_runtime_vm_destroy(check);
    if (rc) {
        kn_runtime_destroy(rt);
        return rc == KN_ERR_NOMEM ? rc : KN_ERR_CONFIG;
    }
    *out = rt;
    return KN_OK;
}

/* --- calls -------------------------------------------------------------------------------- */

int rt_traceback(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) return 1; /* a structured error: keep it as it is */
    const char *m = lua_tostring(L, 1);
    luaL_traceback(L, L, m ? m : "(error object is not a string)", 1);
    return 1;
}

bool kn_runtime_has_rpc(const kn_runtime_vm *vm, const char *id)
{
    lua_State *L = vm->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_rpcs);
    bool has = lua_getfield(L, -1, id) == LUA_TFUNCTION;
    lua_pop(L, 2);
    return has;
}

static void push_context(lua_State *L, const kn_runtime_context *c)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, c->user_id ? c->user_id : "");
    lua_setfield(L, -2, "user_id");
    lua_pushstring(L, c->username ? c->username : "");
    lua_setfield(L, -2, "username");
    lua_pushstring(L, c->session_id ? c->session_id : "");
    lua_setfield(L, -2, "session_id");
    lua_pushstring(L, c->client_address ? c->client_address : "");
    lua_setfield(L, -2, "client_ip");
    lua_pushstring(L, c->execution_mode ? c->execution_mode : "rpc");
    lua_setfield(L, -2, "execution_mode");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rt_key_env);
    lua_setfield(L, -2, "env");
    lua_createtable(L, 0, (int)c->var_count);
    for (size_t i = 0; i < c->var_count; i++) {
        lua_pushstring(L, c->vars[i].value);
        lua_setfield(L, -2, c->vars[i].key);
    }
    lua_setfield(L, -2, "vars");
}

/* CPU time of the calling thread, µs. */
static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The watchdog's count hook: stop the call if it is past its deadline or
 * has used its CPU share (the hook may outlive the call it was armed for:
 * then it just goes). It runs on the calling thread, so it reads that
 * thread's CPU clock.
 *
 * A match callback past its wall-clock deadline that has used less than
 * half its budget in CPU time was not running: its thread waited for a CPU
 * the machine gave to others (a starved machine, not a runaway script). It
 * gets the rest of its budget again, up to STARVED_WALL_FACTOR budgets of
 * wall time in all (a call blocked in C, using no CPU, still ends then).
 * Only match callbacks: an RPC's budget is wall time by contract (it waits
 * on Postgres, using no CPU, and must still end on time). */
#define STARVED_WALL_FACTOR 5

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    kn_runtime_vm *vm = rt_vm_of(L);
    int64_t dl = atomic_load(&vm->deadline_ms), share = atomic_load(&vm->share_us);
    int64_t now = kn_time_mono_ms();
    bool late = dl && now >= dl;
    /* Only match calls read the CPU clock (their share, the starvation rule). */
    int64_t used_us = dl && vm->match ? thread_cpu_us() - vm->cpu_start_us : 0;
    bool over_share = dl && share && used_us >= share;
    if (late && vm->match && !over_share && used_us * 2 < vm->budget_ms * 1000 &&
        now < vm->call_begin_ms + STARVED_WALL_FACTOR * vm->budget_ms) {
        atomic_store(&vm->deadline_ms, now + vm->budget_ms - used_us / 1000);
        late = false;
    }
    if (late || over_share) {
        /* From now on every instruction raises, so a script that catches
         * the error with pcall cannot keep going. */
        vm->timed_out = true;
        vm->over_share = !late;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "time budget exceeded");
    }
    lua_sethook(L, NULL, 0, 0);
    atomic_store(&vm->armed, false);
}

/* Calls under way in the process, so the watchdog walks its VMs only while
 * one may be over its deadline or share (most of the time none is: a match
 * tick's call takes tens of microseconds every 33 ms). */
static atomic_int calls_running;

void rt_call_begin(kn_runtime_vm *vm, const kn_runtime_context *ctx)
{
    atomic_fetch_add_explicit(&calls_running, 1, memory_order_relaxed);
    vm->services = ctx ? ctx->services : NULL;
    vm->mode = !ctx ? "a match handler" : ctx->execution_mode ? ctx->execution_mode : "rpc";
    vm->timed_out = vm->over_share = false;
    atomic_store(&vm->share_us, 0);
    /* One read of the thread's CPU clock per match call: its share, and
     * telling a starved call from a runaway one (budget_hook). RPCs and
     * hooks have a plain wall-time budget and skip it. */
    vm->cpu_start_us = vm->match ? thread_cpu_us() : 0;
    vm->call_begin_ms = kn_time_mono_ms();
    atomic_store(&vm->deadline_ms, vm->call_begin_ms + vm->budget_ms);
}

void rt_call_share(kn_runtime_vm *vm, int64_t share_us)
{
    vm->call_share_us = share_us > 0 ? share_us : 0;
    atomic_store(&vm->share_us, vm->call_share_us);
}

void rt_call_end(kn_runtime_vm *vm)
{
    vm->services = NULL;
    vm->mode = NULL;
    atomic_store(&vm->deadline_ms, 0);
    atomic_store(&vm->share_us, 0);
    if (atomic_exchange(&vm->armed, false)) lua_sethook(vm->L, NULL, 0, 0);
    atomic_fetch_sub_explicit(&calls_running, 1, memory_order_relaxed);
}

/* A script error -> (code, message for the client). */
int rt_script_error(lua_State *L, const char *what, char *msg, size_t cap)
{
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "code");
        lua_getfield(L, -2, "message");
        lua_Integer code = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 13;
        const char *m = lua_tostring(L, -1);
        if (code < 1 || code > 16) code = 13;
        set_msg(msg, cap, "%s", m ? m : "error");
        lua_pop(L, 2);
        return kn_err_from_wire((int)code);
    }
    const char *m = lua_tostring(L, -1);
    kn_runtime_vm *vm = rt_vm_of(L);
    if (vm->timed_out && vm->over_share) {
        KN_WARN("%s stopped: used more than its share of a match thread other matches need "
                "(%.1f ms of CPU)",
                what, (double)vm->call_share_us / 1000);
        set_msg(msg, cap, "%s ran past its time budget (its share of the match thread)", what);
        return KN_ERR_DEADLINE_EXCEEDED;
    }
    if (vm->timed_out) {
        KN_WARN("%s stopped: ran past its time budget of %lld ms", what, (long long)vm->budget_ms);
        set_msg(msg, cap, "%s ran past its time budget", what);
        return KN_ERR_DEADLINE_EXCEEDED;
    }
    if (m && strstr(m, "not enough memory")) {
        KN_WARN("%s stopped: memory limit reached", what);
        set_msg(msg, cap, "%s ran out of memory", what);
        return KN_ERR_RESOURCE_EXHAUSTED;
    }
    KN_ERROR("%s failed: %s", what, m ? m : "?");
    set_msg(msg, cap, "%s failed", what);
    return KN_ERR_INTERNAL;
}

int kn_runtime_call(kn_runtime_vm *vm, const kn_runtime_context *ctx, int (*fn)(lua_State *L),
                    void *ud, const char *what, char *msg, size_t cap)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, rt_traceback);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    push_context(L, ctx);
    rt_call_begin(vm, ctx);
    int status = lua_pcall(L, 2, 0, top + 1);
    rt_call_end(vm);
    int rc = status == LUA_OK ? KN_OK : rt_script_error(L, what, msg, cap);
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    return rc;
}

int kn_runtime_rpc(kn_runtime_vm *vm, const kn_runtime_context *ctx, const char *id,
                   const char *payload, size_t payload_len, char **out, size_t *out_len, char *msg,
                   size_t cap)
{
    *out = NULL;
    *out_len = 0;
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, rt_traceback);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_rpcs);
    if (lua_getfield(L, -1, id) != LUA_TFUNCTION) {
        lua_settop(L, top);
        set_msg(msg, cap, "rpc \"%s\" not found", id);
        return KN_ERR_NOT_FOUND;
    }
    lua_remove(L, -2);
    push_context(L, ctx);
    lua_pushlstring(L, payload ? payload : "", payload_len);
    int rc = KN_OK;
    char what[160];
    snprintf(what, sizeof what, "rpc %s", id);
    rt_call_begin(vm, ctx);
    int status = lua_pcall(L, 2, 1, top + 1);
    rt_call_end(vm);
    if (status != LUA_OK) {
        rc = rt_script_error(L, what, msg, cap);
    } else if (lua_isnil(L, -1) || lua_type(L, -1) == LUA_TSTRING) {
        size_t n = 0;
        const char *s = lua_isnil(L, -1) ? "" : lua_tolstring(L, -1, &n);
        *out = kn_malloc(n + 1);
        if (!*out) {
            rc = KN_ERR_NOMEM;
        } else {
            memcpy(*out, s, n);
            (*out)[n] = '\0';
            *out_len = n;
        }
    } else {
        KN_ERROR("%s returned a %s; an rpc returns a string or nil", what, luaL_typename(L, -1));
        set_msg(msg, cap, "%s returned a non-string", what);
        rc = KN_ERR_INTERNAL;
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    return rc;
}

/* (fn, context, json [, json2]): fn(context, table [, table2]) -> its result as
 * JSON text, or nil. Runs inside the pcall, so decoding errors are script
 * errors and the JSON values are owned by collectable holders. */
static int hook_trampoline(lua_State *L)
{
    int top = lua_gettop(L);
    for (int i = 3; i <= top; i++) {
        size_t n;
        const char *s = lua_tolstring(L, i, &n);
        kn_json_error e;
        kn_json **h = rt_json_holder(L);
        *h = kn_json_parse(s, n, 0, &e);
        if (!*h) return luaL_error(L, "hook payload: %s", e.text);
        rt_from_json(L, *h, 0);
        lua_replace(L, i);
        lua_pop(L, 1);
    }
    lua_call(L, top - 1, 1);
    if (lua_isnil(L, -1) || top > 3) return 1; /* after hooks: result ignored */
    if (!lua_istable(L, -1))
        return luaL_error(L, "a before hook returns the request table or nil, not a %s",
                          luaL_typename(L, -1));
    const char *why;
    if (kn_lua_push_json(L, -1, NULL, &why)) return luaL_error(L, "before hook result: %s", why);
    return 1;
}

int kn_runtime_hook(kn_runtime_vm *vm, const kn_runtime_context *ctx, kn_hook_kind kind,
                    int message_case, const char *req, size_t req_len, const char *res,
                    size_t res_len, char **out, size_t *out_len, char *msg, size_t cap)
{
    *out = NULL;
    *out_len = 0;
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, rt_traceback);
    lua_pushcfunction(L, hook_trampoline);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_hooks[kind]);
    if (lua_rawgeti(L, -1, message_case) != LUA_TFUNCTION) {
        lua_settop(L, top);
        return KN_OK;
    }
    lua_remove(L, -2);
    push_context(L, ctx);
    if (kind == KN_HOOK_AFTER) lua_pushlstring(L, res, res_len);
    lua_pushlstring(L, req, req_len);
    char what[160];
    snprintf(what, sizeof what, "%s hook of %s", kind == KN_HOOK_BEFORE ? "before" : "after",
             kn_envelope_type_name(message_case));
    int rc = KN_OK;
    rt_call_begin(vm, ctx);
    int status = lua_pcall(L, kind == KN_HOOK_AFTER ? 4 : 3, 1, top + 1);
    rt_call_end(vm);
    if (status != LUA_OK) {
        rc = rt_script_error(L, what, msg, cap);
    } else if (kind == KN_HOOK_BEFORE && lua_isnil(L, -1)) {
        set_msg(msg, cap, "%s rejected by a before hook", kn_envelope_type_name(message_case));
        rc = KN_ERR_PERMISSION_DENIED;
    } else if (kind == KN_HOOK_BEFORE) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        *out = kn_malloc(n + 1);
        if (!*out) {
            rc = KN_ERR_NOMEM;
        } else {
            memcpy(*out, s, n + 1);
            *out_len = n;
        }
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    return rc;
}

/* --- hot reload ---------------------------------------------------------------------------- */

struct kn_runtime_host {
    pthread_mutex_t lock; /* current, the slot list and each slot's vm */
    kn_runtime *current;
    atomic_uint generation;
    kn_runtime_vm *watched; /* VMs under the time budget (slots' and matches') */
    size_t n_match_vms;     /* of them, matches' */
    pthread_t watchdog;
    pthread_cond_t wake;
    bool stop;
    _Atomic uint64_t hooks[2][KN_RUNTIME_HOOK_CASES / 64]; /* the current runtime's, lock-free */
    atomic_uint scripts;                                   /* the current runtime's */
};

static void host_publish_hooks(kn_runtime_host *h, const kn_runtime *rt)
{
    atomic_store(&h->scripts, rt->scripts);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < KN_RUNTIME_HOOK_CASES / 64; i++)
            atomic_store(&h->hooks[k][i], rt->hooks[k][i]);
}

bool kn_runtime_host_has_hook(const kn_runtime_host *h, kn_hook_kind kind, int c)
{
    return c > 0 && c < KN_RUNTIME_HOOK_CASES &&
           (atomic_load(&((kn_runtime_host *)h)->hooks[kind][c / 64]) >> (c % 64)) & 1;
}

bool kn_runtime_host_has_script(const kn_runtime_host *h, const char *id)
{
    for (size_t i = 0; i < N_SCRIPT_IDS; i++)
        if (!strcmp(id, script_ids[i]))
            return (atomic_load(&((kn_runtime_host *)h)->scripts) >> i) & 1;
    return false;
}

struct kn_runtime_slot {
    kn_runtime_host *host;
    kn_runtime_vm *vm;
    unsigned generation;
};

void rt_watch_add(kn_runtime_host *h, kn_runtime_vm *vm)
{
    pthread_mutex_lock(&h->lock);
    vm->watch_prev = NULL;
    vm->watch_next = h->watched;
    if (h->watched) h->watched->watch_prev = vm;
    h->watched = vm;
    vm->watched = true;
    h->n_match_vms += vm->match;
    pthread_mutex_unlock(&h->lock);
}

void rt_watch_del(kn_runtime_host *h, kn_runtime_vm *vm)
{
    if (!vm || !vm->watched) return;
    pthread_mutex_lock(&h->lock);
    if (vm->watch_prev)
        vm->watch_prev->watch_next = vm->watch_next;
    else
        h->watched = vm->watch_next;
    if (vm->watch_next) vm->watch_next->watch_prev = vm->watch_prev;
    vm->watched = false;
    h->n_match_vms -= vm->match;
    pthread_mutex_unlock(&h->lock);
}

kn_runtime *rt_host_current(kn_runtime_host *h)
{
    pthread_mutex_lock(&h->lock);
    kn_runtime *rt = h->current;
    runtime_acquire(rt);
    pthread_mutex_unlock(&h->lock);
    return rt;
}

/* Arms the count hook of VMs whose call is past its deadline, or has run
 * as long as its CPU share in wall time (CPU time is at most that; the
 * hook, on the calling thread, checks the CPU time itself). Every
 * budget/10 (5-100 ms), or every SHARE_POLL_MS while matches run: a CPU
 * share is a fraction of a tick, and its end must be noticed within a few
 * ms for the neighbours to stay within their tick. */
#define SHARE_POLL_MS 2
static void *watchdog_main(void *arg)
{
    kn_runtime_host *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        int64_t now = kn_time_mono_ms();
        /* A call that begins after this read is first looked at on the next
         * wake, at most SHARE_POLL_MS later: as if it had begun then. */
        bool any = atomic_load_explicit(&calls_running, memory_order_relaxed) > 0;
        for (kn_runtime_vm *vm = any ? h->watched : NULL; vm; vm = vm->watch_next) {
            int64_t dl = atomic_load(&vm->deadline_ms), share = atomic_load(&vm->share_us);
            bool due = dl && (now >= dl || (share && (now - (dl - vm->budget_ms)) * 1000 >= share));
            /* At the next instruction: a call that allocates in big C calls
             * (string.rep, concatenation) runs few instructions. The hook
             * disarms itself when the call is not due after all. */
            if (due && !atomic_exchange(&vm->armed, true))
                lua_sethook(vm->L, budget_hook, LUA_MASKCOUNT, 1);
        }
        int64_t every = h->current->match_budget_ms / 10;
        every = every < 5 ? 5 : every > 100 ? 100 : every;
        if (h->n_match_vms) every = SHARE_POLL_MS;
        struct timespec until;
        kn_time_deadline(CLOCK_REALTIME, every, &until);
        pthread_cond_timedwait(&h->wake, &h->lock, &until);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int kn_runtime_host_create(kn_runtime *rt, kn_runtime_host **out)
{
    *out = NULL;
    kn_runtime_host *h = kn_calloc(1, sizeof *h);
    if (!h) {
        kn_runtime_destroy(rt);
        return KN_ERR_NOMEM;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    h->current = rt;
    atomic_init(&h->generation, 1);
    host_publish_hooks(h, rt);
    if (pthread_create(&h->watchdog, NULL, watchdog_main, h)) {
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
        kn_runtime_destroy(rt);
        kn_free(h);
        return KN_ERR_NOMEM;
    }
    *out = h;
    return KN_OK;
}

void kn_runtime_host_destroy(kn_runtime_host *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->watchdog, NULL);
    kn_runtime_destroy(h->current);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    kn_free(h);
}

void kn_runtime_host_describe(kn_runtime_host *h, kn_runtime_visit visit, void *ud)
{
    pthread_mutex_lock(&h->lock);
    const kn_runtime *rt = h->current;
    for (size_t i = 0; rt && i < rt->count; i++)
        visit(ud, "module", rt->mods[i].name);
    for (size_t i = 0; rt && i < rt->n_rpc_names; i++)
        visit(ud, "rpc", rt->rpc_names[i]);
    for (size_t i = 0; rt && i < rt->n_match_names; i++)
        visit(ud, "match", rt->match_names[i]);
    for (int k = 0; rt && k < 2; k++)
        for (int c = 1; c < KN_RUNTIME_HOOK_CASES; c++)
            if (kn_runtime_has_hook(rt, (kn_hook_kind)k, c))
                visit(ud, k == KN_HOOK_BEFORE ? "before" : "after", kn_envelope_type_name(c));
    pthread_mutex_unlock(&h->lock);
}

void kn_runtime_host_swap(kn_runtime_host *h, kn_runtime *rt)
{
    pthread_mutex_lock(&h->lock);
    kn_runtime *old = h->current;
    h->current = rt;
    atomic_fetch_add(&h->generation, 1);
    host_publish_hooks(h, rt);
    pthread_mutex_unlock(&h->lock);
    kn_runtime_destroy(old); /* lives on while VMs still use it */
}

int kn_runtime_slot_create(kn_runtime_host *h, kn_runtime_slot **out)
{
    *out = kn_calloc(1, sizeof **out);
    if (!*out) return KN_ERR_NOMEM;
    (*out)->host = h;
    return KN_OK;
}

void kn_runtime_slot_destroy(kn_runtime_slot *s)
{
    if (!s) return;
    rt_watch_del(s->host, s->vm);
    kn_runtime_vm_destroy(s->vm);
    kn_free(s);
}

kn_runtime_vm *kn_runtime_slot_vm(kn_runtime_slot *s)
{
    unsigned gen = atomic_load(&s->host->generation);
    if (s->vm && gen == s->generation) return s->vm;
    pthread_mutex_lock(&s->host->lock);
    kn_runtime *rt = s->host->current;
    runtime_acquire(rt); /* keep it alive while the VM is built outside the lock */
    gen = atomic_load(&s->host->generation);
    pthread_mutex_unlock(&s->host->lock);
    kn_runtime_vm *vm;
    if (kn_runtime_vm_create(rt, &vm) == KN_OK) {
        vm->host = s->host;
        rt_watch_add(s->host, vm);
        rt_watch_del(s->host, s->vm);
        kn_runtime_vm_destroy(s->vm);
        s->vm = vm;
        s->generation = gen;
    }
    kn_runtime_destroy(rt);
    return s->vm;
}
