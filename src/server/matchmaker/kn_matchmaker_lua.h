/* kn_matchmaker_lua: the matchmaker functions of `kaos` for sessions
 * connected to this node (matchmaker_lua.c; the script API is in
 * docs/lua-api.md), through the same C functions as the wire
 * (kn_matchmaker_wire_add_session, kn_mm_remove): same rules, same limits,
 * same errors, and the ticket dies with its session as a client's does.
 *
 * The composition root registers them as one binding whose ud is a
 * kn_matchmaker_lua it fills once the matchmaker exists:
 *
 *     kn_lua_binding b = {"matchmaker", kn_matchmaker_lua_funcs, &mm_lua};
 *
 * None reads Postgres: they run anywhere a script runs. matchmaker_add
 * waits while a pass's C matcher holds the matchmaker's lock (milliseconds,
 * bench/README.md): call it from RPCs and hooks rather than a match tick. */
#ifndef KN_MATCHMAKER_LUA_H
#define KN_MATCHMAKER_LUA_H

#include "kn_lua_bind.h"
#include "kn_matchmaker.h"

typedef struct kn_sessions kn_sessions;

typedef struct kn_matchmaker_lua {
    kn_matchmaker *mm; /* NULL until set: the functions refuse */
    kn_sessions *sessions;
} kn_matchmaker_lua;

/* matchmaker_add, matchmaker_remove. */
extern const luaL_Reg kn_matchmaker_lua_funcs[];

/* The ticket table at idx — {min_count, max_count, count_multiple, query,
 * properties = {name = string or number}, widen = {{property, step, max},
 * ...}} — into req (props: KN_MM_PROPS_MAX, widen: KN_MM_WIDEN_MAX; the
 * strings point into the table, alive while it is on the stack; players
 * and party_id left to the caller). Raises {code = 3, message} for a wrong
 * type or too many entries; kn_mm_add checks the rest. For
 * kaos.party_matchmaker_add too. */
void kn_matchmaker_lua_request(lua_State *L, int idx, kn_mm_prop *props, kn_mm_widen *widen,
                               kn_mm_request *req);

#endif
