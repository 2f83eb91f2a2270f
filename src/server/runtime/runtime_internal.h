/* Internal to the runtime module: shared by runtime.c, match_lua.c,
 * lua_account.c and lua_storage.c. Not part of the module's contract. */
#ifndef KN_RUNTIME_INTERNAL_H
#define KN_RUNTIME_INTERNAL_H

#include "kn_runtime.h"
#include "vm_alloc.h"

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdatomic.h>

#define MAX_MODULES 256
#define MAX_ENV 64
#define MAX_MATCH_HANDLERS 256

typedef struct module {
    char *name;  /* file name without ".lua" (what require takes) */
    char *chunk; /* "@name.lua", for messages */
    char *source;
    size_t len;
} module;

struct kn_runtime {
    atomic_int refs; /* the owner's, plus one per VM */
    char *env_keys[MAX_ENV], *env_values[MAX_ENV];
    size_t env_count;
    module mods[MAX_MODULES];
    size_t count;
    size_t memory_limit;
    int64_t call_budget_ms;
    int64_t match_budget_ms;
    size_t match_memory_limit;
    char *match_names[MAX_MATCH_HANDLERS]; /* kaos.register_match names, from the check VM */
    size_t n_match_names;
    bool (*is_client_op)(int message_case);
    uint64_t hooks[2][4]; /* [kind] bit set of message cases with a hook */
};

struct kn_runtime_vm {
    lua_State *L;
    const kn_runtime *rt;
    rt_heap heap; /* Lua's memory: the cap (heap.limit) and what it holds (heap.used) */
    _Atomic int64_t deadline_ms; /* monotonic; 0 = no call running */
    atomic_bool armed;           /* the watchdog set the count hook */
    bool timed_out;              /* this call was stopped by its budget */
    /* The call running now (NULL between calls): what the account
     * functions use, and the mode they name when there is none. */
    const kn_runtime_services *services;
    const char *mode;
    int64_t budget_ms;           /* per call */
    kn_runtime_vm *watch_prev, *watch_next; /* the host's watchdog list */
    kn_runtime_host *host;                  /* NULL for a VM outside a host */
    bool watched;
};

/* Registry keys: the env table, the table of match handlers by name. */
extern const char rt_key_env, rt_key_matches;

kn_runtime_vm *rt_vm_of(lua_State *L);
/* pooled: small objects from the VM's own pages (match VMs; vm_alloc.h). */
int rt_vm_create(const kn_runtime *rt, bool pooled, kn_runtime_vm **out, char *err, size_t cap);
/* Lua value <-> jansson, as kaos.json_encode / json_decode do it.
 * to_json never raises (NULL and *why instead); from_json pushes one value
 * and raises on nesting over 64. */
json_t *rt_to_json(lua_State *L, int idx, int depth, const char **why);
void rt_from_json(lua_State *L, json_t *j, int depth);
/* Pushes a zeroed userdata of `size` bytes whose metatable `type` calls gc
 * when Lua collects it: C results held this way are freed even when a Lua
 * error unwinds past the function that made them. */
void *rt_holder(lua_State *L, size_t size, const char *type, lua_CFunction gc);
/* Pushes a userdata owning one jansson value (released by its __gc), so a
 * Lua error never leaks it; returns the slot to store the value in. */
json_t **rt_json_holder(lua_State *L);
/* Pushes JSON text the server itself stored (account metadata, storage
 * values) as a Lua value; NULL or text that does not parse pushes {}. */
void rt_push_stored_json(lua_State *L, const char *text, size_t len);
/* t[key] = value for the table on top of the stack (NULL strings as ""). */
void rt_set_string(lua_State *L, const char *key, const char *value);
void rt_set_integer(lua_State *L, const char *key, int64_t value);
int rt_traceback(lua_State *L);
/* Starts a call's budget; ctx gives the services (NULL = none: match handlers). */
void rt_call_begin(kn_runtime_vm *vm, const kn_runtime_context *ctx);
void rt_call_end(kn_runtime_vm *vm);
int rt_script_error(lua_State *L, const char *what, char *msg, size_t cap);
/* Sets find, match, gmatch and gsub of the table at idx to the step-bounded
 * pattern functions (pattern.c). */
void rt_pattern_open(lua_State *L, int idx);
/* Raises error({code = <wire code of rc>, message = msg}): scripts can pcall
 * it, and uncaught it reaches the client with that code. */
int rt_raise_coded(lua_State *L, int rc, const char *msg);
/* The host's watchdog list (enforces the time budget of VMs on it). */
void rt_watch_add(kn_runtime_host *h, kn_runtime_vm *vm);
void rt_watch_del(kn_runtime_host *h, kn_runtime_vm *vm);
/* The host's current runtime, acquired (release with kn_runtime_destroy). */
kn_runtime *rt_host_current(kn_runtime_host *h);
/* The match engine set with kn_runtime_host_set_match_engine, or NULL. */
struct kn_match_engine *rt_host_matches(kn_runtime_host *h);
/* kaos.match_create, match_list, match_signal (match_lua.c). */
extern const luaL_Reg rt_match_funcs[];
#include <lua.h>

/* The services of the call running on L (never NULL), or raises
 * "kaos.NAME is not available in MODE (no database connection)" when the
 * call has none (run_once, module loading). */
const kn_runtime_services *kn_runtime__services(lua_State *L, const char *name);


/* Adds the account functions to the `kaos` table on top of the stack. */
void kn_runtime__open_account(lua_State *L);
/* Adds the storage functions to the `kaos` table on top of the stack. */
void kn_runtime__open_storage(lua_State *L);

#endif
