/* kn_lua_bind: the runtime's public binding API — how a service gives
 * scripts its kaos.* functions.
 *
 * Rule: this header is the only way into Lua from outside the runtime. A
 * service's `<svc>_lua.c` (account/account_lua.c, storage/storage_lua.c,
 * match/match_lua.c) includes it, and with it <lua.h> and <lauxlib.h>, plus
 * its own service's headers; never runtime_internal.h, never another
 * service's `_lua` header. The runtime in turn includes no service header:
 * it only opens the bindings it is handed (kn_runtime_config.bindings).
 *
 * A binding is a luaL_Reg table plus one `ud`. Every VM (the check VM at
 * load, each API worker's VM, each match's VM) adds every binding's
 * functions to the `kaos` table the same way, with `ud` as their upvalue:
 * a function reads it with kn_lua_binding_ud. Long-lived dependencies go in
 * `ud` (the auth service, the session-ending callback, the match engine).
 * The root may fill what `ud` points to after the runtime is loaded (the
 * session registry and the match engine are created after it) but before serving:
 * until then only module loading and run_once run scripts, where a function
 * that needs its ud refuses first (kn_lua_db, kn_lua_mode, or a NULL check
 * of its own). What belongs to one call (the worker's
 * database connection) comes from the call through kn_lua_db: a new service
 * adds a binding, never a field to kn_runtime_services.
 *
 * Errors: a service's refusal is raised with kn_lua_raise_coded, a table
 * {code = <wire code>, message = "..."} that scripts can pcall and that,
 * uncaught, reaches the client with that code; a wrong argument type stays
 * an ordinary Lua error (luaL_check*: a script bug, INTERNAL for the client).
 * Every function here that may raise does so only as a Lua error, inside
 * the VM: call them from a lua_CFunction only.
 *
 * Memory: a C result that must be freed is put in a holder (kn_lua_holder)
 * before any Lua allocation, so a Lua error half-way never leaks it.
 *
 * Threads: a lua_State belongs to the thread running its VM; ud is shared
 * by every VM of every thread, so what it points to must be safe to use
 * from any API worker or match thread at once. */
#ifndef KN_LUA_BIND_H
#define KN_LUA_BIND_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_entity kn_entity;

/* One service's kaos.* functions. The table and what ud points to are
 * borrowed: they must outlive the runtime and every VM built from it. Names
 * must not repeat a built-in kaos function or another binding's (asserted
 * when a VM opens them). */
typedef struct kn_lua_binding {
    const char *name;      /* the service, for messages ("account") */
    const luaL_Reg *funcs; /* ends with {NULL, NULL} */
    void *ud;              /* handed to every function of funcs; may be NULL */
} kn_lua_binding;

typedef struct kn_sessions kn_sessions;

/* The ids and connection of a session connected to this node. */
typedef struct kn_lua_session {
    uint64_t conn; /* its kn_conn_id */
    char user_id[37];
    char session_id[37];
    char username[129];
} kn_lua_session;

/* The session named by arguments idx (user id) and idx + 1 (session id),
 * bound to ss on this node, for the functions that act as a session
 * (kaos.party_*, kaos.status_*, kaos.matchmaker_*). Raises {code = 5,
 * message = "session not found"} when none is (a non-string: an ordinary
 * Lua error). */
kn_lua_session kn_lua_session_arg(lua_State *L, kn_sessions *ss, int idx);

/* The ud of the binding whose function is running (its upvalue 1). */
void *kn_lua_binding_ud(lua_State *L);

/* The database connection of the call running on L (the API worker's), or
 * raises "kaos.FN_NAME is not available in MODE (no database connection)"
 * where there is none: run_once, module loading, a match handler. */
kn_db *kn_lua_db(lua_State *L, const char *fn_name);

/* The execution mode of the call running on L ("rpc", "before", "after",
 * "run_once", "a match handler"), or NULL while modules load (at the top
 * level of a module, in any VM). */
const char *kn_lua_mode(lua_State *L);

/* Raises error({code = <wire code of rc>, message = msg}); an empty or NULL
 * msg becomes rc's text. Does not return. */
int kn_lua_raise_coded(lua_State *L, int rc, const char *msg);
/* The same with a printf-style message (cut at 256 bytes). */
int kn_lua_raise_codedf(lua_State *L, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Pushes a zeroed userdata of `size` bytes whose metatable `type` (one name
 * per C type, e.g. "kaos.account_holder") calls gc when Lua collects it;
 * returns it. gc gets the userdata as argument 1 and must accept a zeroed
 * or already released one. */
void *kn_lua_holder(lua_State *L, size_t size, const char *type, lua_CFunction gc);

/* The strings of the list (a sequence table) at idx, in order, as an array
 * pushed as a userdata; *n gets their count. The strings are the table's
 * own and live while it does (Lua never moves a string). With nil_ok, nil
 * or an absent argument is an empty list (lua_settop the arguments first
 * when a later one may be absent: the pushed array would take its place); otherwise a table is
 * required (a script bug, an ordinary Lua error). An element that is not a string raises {code = 3,
 * message = "<what> must be a list of strings"}. */
const char **kn_lua_string_list(lua_State *L, int idx, bool nil_ok, const char *what, size_t *n);

/* Pushes the compact JSON text of the Lua value at idx, as kaos.json_encode
 * writes it (a sequence is an array, a table with string keys an object, an
 * empty table {}), and returns KN_OK with *len its length. When the value
 * cannot be encoded returns KN_ERR_INVALID_ARGUMENT with *why saying why
 * ("nested too deep", "object keys must be strings ..."), and when the JSON
 * library runs out of memory KN_ERR_NOMEM; nothing is pushed then. Raises
 * only when Lua itself is out of memory. */
int kn_lua_push_json(lua_State *L, int idx, size_t *len, const char **why);

/* Pushes JSON text the server itself stored (account metadata, storage
 * values) as a Lua value; NULL or text that does not parse pushes {}. */
void kn_lua_push_stored_json(lua_State *L, const char *text, size_t len);

/* Pushes the C struct `obj` of entity e (kn_entity.h) as a table with one
 * key per field of the entity, named as on the wire: text as a string (NULL
 * as ""), JSON text as a Lua value (kn_lua_push_stored_json), numbers as
 * integers, BOOL as a boolean. */
void kn_lua_push_entity(lua_State *L, const kn_entity *e, const void *obj);

/* t[key] = value for the table on top of the stack (a NULL string as ""). */
void kn_lua_set_string(lua_State *L, const char *key, const char *value);
void kn_lua_set_integer(lua_State *L, const char *key, int64_t value);

#endif
