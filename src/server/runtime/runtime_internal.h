/* runtime_internal: what runtime.c shares with the other files of the
 * runtime module (lua_account.c). Not part of the module's contract. */
#ifndef KN_RUNTIME_INTERNAL_H
#define KN_RUNTIME_INTERNAL_H

#include "kn_runtime.h"

#include <jansson.h>
#include <lua.h>

/* The services of the call running on L (never NULL), or raises
 * "kaos.NAME is not available in MODE (no database connection)" when the
 * call has none (run_once, module loading). */
const kn_runtime_services *kn_runtime__services(lua_State *L, const char *name);

/* Lua value <-> jansson, as kaos.json_encode / json_decode do it.
 * to_json never raises (NULL and *why instead); from_json pushes one value
 * and raises on nesting over 64. */
json_t *kn_runtime__to_json(lua_State *L, int idx, const char **why);
void kn_runtime__from_json(lua_State *L, json_t *j);
/* Pushes a userdata owning one jansson value (released by its __gc), so a
 * Lua error never leaks it; returns the slot to store the value in. */
json_t **kn_runtime__json_holder(lua_State *L);

/* Adds the account functions to the `kaos` table on top of the stack. */
void kn_runtime__open_account(lua_State *L);

#endif
