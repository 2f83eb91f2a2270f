/* Internal to the runtime module: shared by runtime.c, lua_bind.c,
 * match_handler.c and pattern.c. Not part of the module's contract; no file
 * outside src/server/runtime includes it (services reach Lua through
 * kn_lua_bind.h). */
#ifndef KN_RUNTIME_INTERNAL_H
#define KN_RUNTIME_INTERNAL_H

#include "kn_json.h"
#include "kn_lua_bind.h"
#include "kn_runtime.h"
#include "vm_alloc.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdatomic.h>

/* Message cases a hook may be registered for: 0..KN_RUNTIME_HOOK_CASES-1
 * (the Envelope's fields; the matchmaker's are 310-349). */
#define KN_RUNTIME_HOOK_CASES 512
#define MAX_MODULES 256
#define MAX_ENV 64
#define MAX_MATCH_HANDLERS 256
#define MAX_RPC_NAMES         256 /* listed for the console; more still work */

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
    char *rpc_names[MAX_RPC_NAMES]; /* kaos.register_rpc ids, from the check VM */
    size_t n_rpc_names;
    bool (*is_client_op)(int message_case);
    const kn_lua_binding *bindings; /* borrowed (kn_runtime_config) */
    size_t n_bindings;
    uint64_t hooks[2][KN_RUNTIME_HOOK_CASES / 64]; /* [kind] bit set of message cases with a hook */
    unsigned scripts; /* bit i: the i-th of the matchmaker's script ids is registered */
};

struct kn_runtime_vm {
    lua_State *L;
    const kn_runtime *rt;
    rt_heap heap; /* Lua's memory: the cap (heap.limit) and what it holds (heap.used) */
    _Atomic int64_t deadline_ms; /* monotonic; 0 = no call running */
    atomic_bool armed;           /* the watchdog set the count hook */
    bool timed_out;              /* this call was stopped by its budget */
    /* A match call's CPU budget (kn_match_call.budget_us; 0 = none), and
     * the calling thread's CPU clock when the call began (that thread's). */
    _Atomic int64_t share_us;
    int64_t cpu_start_us;  /* the calling thread's CPU clock when the call began */
    int64_t call_begin_ms; /* monotonic, when the call began */
    int64_t call_share_us; /* share_us of the last call, kept for its error message */
    bool over_share;       /* the stop was for the CPU budget */
    bool match;            /* a match's VM (the watchdog polls finely while any is on) */
    /* The call running now (NULL between calls): what kn_lua_db hands
     * bindings, and the mode it names when there is none. */
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
/* Lua value <-> kn_json, as kaos.json_encode / json_decode do it
 * (lua_bind.c). to_json never raises (NULL and *why instead); from_json
 * pushes one value and raises on nesting over 64. */
kn_json *rt_to_json(lua_State *L, int idx, int depth, const char **why);
void rt_from_json(lua_State *L, kn_json *j, int depth);
/* Pushes a userdata owning one kn_json value (released by its __gc), so a
 * Lua error never leaks it; returns the slot to store the value in. */
kn_json **rt_json_holder(lua_State *L);
/* Adds the functions of the n bindings to the `kaos` table on top of the
 * stack, each with its binding's ud as upvalue 1. */
void rt_open_bindings(lua_State *L, const kn_lua_binding *b, size_t n);
int rt_traceback(lua_State *L);
/* Starts a call's budget; ctx gives the services (NULL = none: match handlers). */
void rt_call_begin(kn_runtime_vm *vm, const kn_runtime_context *ctx);
void rt_call_end(kn_runtime_vm *vm);
/* After rt_call_begin: the call may also use at most share_us of its
 * thread's CPU time (0 = no such limit); enforced like the budget. */
void rt_call_share(kn_runtime_vm *vm, int64_t share_us);
int rt_script_error(lua_State *L, const char *what, char *msg, size_t cap);
/* Sets find, match, gmatch and gsub of the table at idx to the step-bounded
 * pattern functions (pattern.c). */
void rt_pattern_open(lua_State *L, int idx);
/* The host's watchdog list (enforces the time budget of VMs on it). */
void rt_watch_add(kn_runtime_host *h, kn_runtime_vm *vm);
void rt_watch_del(kn_runtime_host *h, kn_runtime_vm *vm);
/* The host's current runtime, acquired (release with kn_runtime_destroy). */
kn_runtime *rt_host_current(kn_runtime_host *h);

#endif
