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
 * None reads Postgres: they run anywhere. */
#ifndef KN_PARTY_LUA_H
#define KN_PARTY_LUA_H

#include "kn_lua_bind.h"

typedef struct kn_parties kn_parties;
typedef struct kn_sessions kn_sessions;

typedef struct kn_party_lua {
    kn_parties *parties; /* NULL until set: the functions refuse */
    kn_sessions *sessions;
} kn_party_lua;

/* party_create, party_join, party_leave, party_promote, party_accept,
 * party_remove, party_close, party_join_requests, party_get. */
extern const luaL_Reg kn_party_lua_funcs[];

#endif
