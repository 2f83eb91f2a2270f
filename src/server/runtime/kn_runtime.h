/* kn_runtime: the Lua 5.4 server runtime; the only module that includes Lua
 * (services' kaos.* functions reach it through kn_lua_bind.h, the runtime's
 * binding API, and are handed in as bindings: the runtime names no service).
 *
 * kn_runtime_load reads every `*.lua` file of the runtime path, in byte
 * order of their names, and checks that each one loads and runs in a fresh
 * sandboxed VM; a module that fails is reported with file and line and the
 * load fails. The loaded sources are then shared (read-only) by VMs: each
 * API worker owns one kn_runtime_vm, created from the same sources, so every
 * registration (kaos.register_rpc, ...) exists in every VM.
 *
 * Sandbox: base library without dofile/loadfile and with a text-only `load`,
 * plus table, string, math, utf8, coroutine, and an `os` reduced to time,
 * clock, date and difftime. No io, no debug, no package loading from disk:
 * `require` resolves only "kaos" and the modules of the runtime path. A
 * per-VM allocator cap stops unbounded memory (KN_ERR_RESOURCE_EXHAUSTED).
 *
 * Errors raised by scripts keep the code they carry: `error({code = 3,
 * message = "bad input"})` reaches the client as INVALID_ARGUMENT with that
 * message; any other error becomes INTERNAL ("rpc failed") and is logged with
 * its traceback here, once.
 *
 * Threads: a kn_runtime is immutable after load and shared; a kn_runtime_vm
 * belongs to the one thread that uses it. */
#ifndef KN_RUNTIME_H
#define KN_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kn_token.h"

typedef struct kn_runtime kn_runtime;
typedef struct kn_runtime_vm kn_runtime_vm;
typedef struct kn_lua_binding kn_lua_binding; /* kn_lua_bind.h */

typedef struct kn_runtime_config {
    const char *path;        /* directory of modules; missing or empty = no modules */
    size_t memory_limit;     /* bytes per VM; 0 = 64 MiB */
    int64_t call_budget_ms;  /* wall time per RPC or hook call; 0 = 2000 ms (enforced by the
                                host's watchdog, so only for VMs of a host's slots) */
    int64_t match_budget_ms; /* wall time per match handler call; 0 = 200 ms */
    size_t match_memory_limit; /* bytes per match VM; 0 = 32 MiB */
    const char *env;         /* "key=value,key=value": context.env for every call */
    bool run_once;           /* run kaos.run_once functions (at start, not on reload) */
    /* Which message cases are client operations (hooks may be registered
     * for them); from the route table (kn_routes). NULL = any request type. */
    bool (*is_client_op)(int message_case);
    /* The services' kaos.* functions (kn_lua_bind.h), opened into every VM
     * built from this runtime. Borrowed: the array and what each ud points
     * to must outlive the runtime and its VMs. */
    const kn_lua_binding *bindings;
    size_t n_bindings;
} kn_runtime_config;

typedef struct kn_db kn_db;

/* What belongs to one call and is handed to the bindings' functions
 * (kn_lua_db): the calling worker's database connection. Filled by whoever
 * runs the call (the pipeline or the RPC service, per worker call) and only borrowed for its
 * duration. Where there is none (run_once, module load, match handlers)
 * kn_lua_db raises "kaos.NAME is not available in MODE". Long-lived
 * dependencies of a service are not added here: they go in its binding's
 * ud (kn_lua_bind.h). */
typedef struct kn_runtime_services {
    kn_db *db; /* the calling thread's connection */
} kn_runtime_services;

/* What a script sees of the caller (the `context` table). */
typedef struct kn_runtime_context {
    const char *user_id;     /* "" when not authenticated (server-to-server) */
    const char *username;
    const char *session_id;
    const char *client_address;
    const char *execution_mode; /* "rpc", "before", "after", "run_once" */
    const kn_token_var *vars;   /* session variables (context.vars) */
    size_t var_count;
    const kn_runtime_services *services; /* NULL: kn_lua_db raises */
} kn_runtime_context;

/* Before and after hooks (kaos.register_req_before/after), one per client
 * operation, named as kn_envelope_case_by_name accepts. */
typedef enum { KN_HOOK_BEFORE = 0, KN_HOOK_AFTER = 1 } kn_hook_kind;

/* Loads and checks the modules. On failure returns KN_ERR_CONFIG and writes
 * "file.lua:12: message" into err. */
int kn_runtime_load(const kn_runtime_config *cfg, kn_runtime **out, char *err, size_t err_cap);
/* Drops the caller's reference; the runtime is freed when no VM uses it. */
void kn_runtime_destroy(kn_runtime *rt); /* accepts NULL */
size_t kn_runtime_module_count(const kn_runtime *rt);

/* A VM with every module loaded (and so every registration made). */
int kn_runtime_vm_create(const kn_runtime *rt, kn_runtime_vm **out);
void kn_runtime_vm_destroy(kn_runtime_vm *vm); /* accepts NULL */

/* Calls the RPC registered as `id` with (context, payload). On success *out
 * is a kn_malloc'd string (the function's return value, "" for nil). On
 * failure returns KN_ERR_NOT_FOUND (no such RPC) or the error's code, and
 * writes a message for the client into msg. */
int kn_runtime_rpc(kn_runtime_vm *vm, const kn_runtime_context *ctx, const char *id,
                   const char *payload, size_t payload_len, char **out, size_t *out_len,
                   char *msg, size_t msg_cap);
bool kn_runtime_has_rpc(const kn_runtime_vm *vm, const char *id);

/* kaos.register_matchmaker_matched(fn) stores a function the RPC path runs
 * under this id (kn_rpc_call_script): fn(context, matched_users) with the
 * payload (a JSON array of matched users) decoded; it returns a match id
 * (string) or nil. Clients cannot call "kaos." ids. */
#define KN_RUNTIME_MATCHED_ID "kaos.matchmaker_matched"
/* kaos.register_matchmaker_processor(fn) / _override(fn): the same, with
 * fn(context, decoded payload) returning a table (the groups to form)
 * that goes back JSON-encoded, or nil. The matchmaker names these ids. */
#define KN_RUNTIME_PROCESSOR_ID "kaos.matchmaker_processor"
#define KN_RUNTIME_OVERRIDE_ID  "kaos.matchmaker_override"

/* Runs fn inside vm as a call of ctx (its mode, its services: the
 * kaos.* functions fn reaches see ctx->services->db), under the VM's call
 * budget and a traceback handler: fn gets (ud as a light userdata, the
 * context table) and its results are dropped. A Lua error, of fn or of a
 * script it calls, becomes its code and message in msg, logged once here
 * with `what` ("leaderboard reset ...") and the traceback. For the
 * callbacks a service lets scripts register through its binding
 * (kaos.register_leaderboard_reset): the binding finds the script's
 * function and calls it; the composition root runs it here. */
typedef struct lua_State lua_State;
int kn_runtime_call(kn_runtime_vm *vm, const kn_runtime_context *ctx, int (*fn)(lua_State *L),
                    void *ud, const char *what, char *msg, size_t msg_cap);

/* Whether the runtime's modules registered a hook of `kind` for the
 * operation `message_case` (an Envelope message case). */
bool kn_runtime_has_hook(const kn_runtime *rt, kn_hook_kind kind, int message_case);

/* Calls the hook for message_case. Before: fn(context, request) where the
 * request is the JSON object `req` (kn_codec_json) as a table; the hook
 * returns the request to go on (*out: its JSON, kn_malloc'd) or nil to
 * refuse it (KN_ERR_PERMISSION_DENIED), or raises an error whose code and
 * message reach the client. After: fn(context, response, request), its
 * result ignored (*out stays NULL). No hook: KN_OK with *out NULL. */
int kn_runtime_hook(kn_runtime_vm *vm, const kn_runtime_context *ctx, kn_hook_kind kind,
                    int message_case, const char *req, size_t req_len, const char *res,
                    size_t res_len, char **out, size_t *out_len, char *msg, size_t msg_cap);

/* --- hot reload ----------------------------------------------------------
 * A host holds the current runtime; each API worker has a slot whose VM
 * follows the host: after kn_runtime_host_swap, a slot builds a VM from the
 * new runtime at its next kn_runtime_slot_vm and drops the old one. A
 * runtime is freed when its last VM is gone, so calls in progress finish on
 * the code they started with. The host is shared (mutex inside); a slot
 * belongs to its worker thread.
 *
 * Time budget: the host runs a watchdog thread. A call that runs past its
 * budget gets a Lua count hook armed from the watchdog (lua_sethook is safe
 * from another thread), which stops the script at its next instruction with
 * KN_ERR_DEADLINE_EXCEEDED; calls within budget never carry a hook, so the
 * common case costs nothing. A C function that runs long itself (a pattern
 * match on a huge string) is stopped when it returns to Lua. */
typedef struct kn_runtime_host kn_runtime_host;
typedef struct kn_runtime_slot kn_runtime_slot;

/* Takes ownership of rt (also on failure). */
int kn_runtime_host_create(kn_runtime *rt, kn_runtime_host **out);
void kn_runtime_host_destroy(kn_runtime_host *h); /* accepts NULL; after its slots */
/* Makes rt current (takes ownership). */
void kn_runtime_host_swap(kn_runtime_host *h, kn_runtime *rt);
int kn_runtime_slot_create(kn_runtime_host *h, kn_runtime_slot **out);
void kn_runtime_slot_destroy(kn_runtime_slot *s); /* accepts NULL */
/* The VM of the current runtime; if building it fails, the previous VM stays
 * (NULL only if there never was one). */
kn_runtime_vm *kn_runtime_slot_vm(kn_runtime_slot *s);
/* The match engine's factory (kn_match_factory_fn) for handlers registered
 * with kaos.register_match; ud is the host. Each match gets its own VM from
 * the host's current runtime, under the match memory cap and time budget. */
typedef struct kn_match_handler kn_match_handler;
int kn_runtime_match_factory(void *ud, const char *name, const char *match_id, const char *node,
                             kn_match_handler **out, char *msg, size_t cap);

/* Whether the current runtime registered the script hook `id` (one of the
 * KN_RUNTIME_*_ID above; false for any other id). Lock-free, any thread. */
bool kn_runtime_host_has_script(const kn_runtime_host *h, const char *id);

/* What the current runtime registered, for the admin console: visit(ud,
 * kind, name) for each module ("module", its file name without .lua), RPC
 * ("rpc", its id), match handler ("match") and hooked message ("before",
 * "after": the message type's name). Under the host's lock: visit must not
 * call into the host. Any thread. */
typedef void (*kn_runtime_visit)(void *ud, const char *kind, const char *name);
void kn_runtime_host_describe(kn_runtime_host *h, kn_runtime_visit visit, void *ud);

/* kn_runtime_has_hook of the current runtime; lock-free, for the net thread. */
bool kn_runtime_host_has_hook(const kn_runtime_host *h, kn_hook_kind kind, int message_case);

#endif
