/* kn_party_lua: the party functions of `kaos` for sessions connected to
 * this node (party_lua.c; the script API is in docs/lua-api.md), through
 * the same C functions as the wire (kn_party.h): same rules, same errors,
 * the same events to the members.
 *
 * The composition root registers them as one binding whose ud is a
 * kn_party_lua it fills before serving:
 *
 *     kn_lua_binding b = {"party", kn_party_lua_funcs, &party_lua};
 *
 * None reads Postgres: they run anywhere (party_matchmaker_add may wait
 * for a matchmaker pass: not in a match handler's tick). */
#ifndef KN_PARTY_LUA_H
#define KN_PARTY_LUA_H

#include "kn_lua_bind.h"

typedef struct kn_parties kn_parties;
typedef struct kn_sessions kn_sessions;

typedef struct kn_party_wire kn_party_wire;

typedef struct kn_party_lua {
    kn_parties *parties; /* NULL until set: the functions refuse */
    kn_sessions *sessions;
    kn_party_wire *wire; /* its matchmaker (and way out) for party tickets;
                            NULL or no matchmaker: they are refused */
} kn_party_lua;

/* party_create, party_join, party_leave, party_promote, party_accept,
 * party_remove, party_close, party_join_requests, party_get, party_send,
 * party_matchmaker_add, party_matchmaker_remove, party_list. */
extern const luaL_Reg kn_party_lua_funcs[];

#endif
