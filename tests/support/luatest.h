/* luatest: helpers for cmocka tests of Lua modules and of the bindings
 * that give scripts kaos.* functions (tests/unit/runtime, and each
 * service's *_lua test): a temporary runtime path, loading it into a
 * runtime and a VM, and calling an RPC with a fixed context.
 *
 * One runtime path at a time (a static directory): single-threaded tests
 * only. Failures fail the running test. */
#ifndef KN_TEST_LUATEST_H
#define KN_TEST_LUATEST_H

#include "kn_lua_bind.h"
#include "kn_runtime.h"

#include <stddef.h>

/* cmocka setup/teardown: a fresh empty runtime path, then its removal. */
int luatest_setup(void **state);
int luatest_teardown(void **state);
const char *luatest_dir(void);
/* Writes the module file `name` (e.g. "a.lua") into the runtime path. */
void luatest_write(const char *name, const char *src);

/* Loads the runtime path with these bindings (none: NULL, 0) and makes one
 * VM of it; a load error fails the test with its message. */
kn_runtime_vm *luatest_load(kn_runtime **rt, const kn_lua_binding *bindings, size_t n);

/* user-1 / alice / sess-1 / 127.0.0.1, mode "rpc", vars {platform =
 * "linux"}, no services (kn_lua_db raises). */
extern const kn_runtime_context luatest_ctx;
/* kn_runtime_rpc with luatest_ctx; msg holds 256 bytes. Returns the
 * result (kn_malloc'd) or NULL. */
char *luatest_call(kn_runtime_vm *vm, const char *id, const char *payload, int *rc, char *msg);
/* The same as a worker's call with the database connection db (kn_lua_db
 * hands it out); NULL gives a fake one that must never be used. */
char *luatest_call_db(kn_runtime_vm *vm, kn_db *db, const char *id, const char *payload, int *rc,
                      char *msg);

/* Lua source for a module's start: `kaos` and outcome(f, ...), which calls
 * f and answers "ok", "<code> <message>" for a raised {code, message}, or
 * "lua: <error>" for any other error. Module text goes after it. */
#define LUATEST_PRELUDE                                                                            \
    "local kaos = require('kaos')\n"                                                               \
    "local function outcome(f, ...)\n"                                                             \
    "  local ok, e = pcall(f, ...)\n"                                                              \
    "  if ok then return 'ok' end\n"                                                               \
    "  if type(e) == 'table' then return e.code .. ' ' .. e.message end\n"                         \
    "  return 'lua: ' .. tostring(e)\n"                                                            \
    "end\n"

/* Lua source for a module's end: registers the RPC "case", which runs
 * cases[payload] (a table of functions the module defined) and answers its
 * result, or "raised: <code> <message>" (or "raised: <error>") when it
 * raised. */
#define LUATEST_CASES_RPC                                                                          \
    "kaos.register_rpc(function(ctx, p)\n"                                                         \
    "  local ok, r = pcall(cases[p])\n"                                                            \
    "  if ok then return r end\n"                                                                  \
    "  return 'raised: ' .. (type(r) == 'table' and r.code .. ' ' .. r.message or tostring(r))\n"  \
    "end, 'case')\n"

/* Writes module `file` with src and loads the runtime path with the one
 * binding (name, funcs, ud), as luatest_load. */
kn_runtime_vm *luatest_load_one(kn_runtime **rt, const char *file, const char *src,
                                const char *name, const luaL_Reg *funcs, void *ud);

/* One expected answer of the RPC "case" for a payload. */
typedef struct luatest_case {
    const char *name; /* the payload */
    const char *want; /* the exact answer */
} luatest_case;
/* Calls "case" with each name as a worker would (a fake database) and
 * fails the test, naming the case, on the first answer that differs. */
void luatest_expect(kn_runtime_vm *vm, const luatest_case *cases, size_t n);

#endif
