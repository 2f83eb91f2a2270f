/* kn_leaderboard_lua: the leaderboards' kaos.* functions — create and
 * delete boards, write, list and delete records from server code
 * (leaderboard_lua.c; the script API is in docs/lua-api.md).
 *
 * The composition root registers them as one binding:
 *
 *     kn_lua_binding b = {"leaderboards", kn_leaderboard_lua_funcs, &leaderboard_lua};
 *
 * They use the calling worker's database connection (kn_lua_db). Creating
 * a board is also allowed where there is none — at the top level of a
 * module and in run_once, the usual place to create boards — through the
 * ud's own connection, under the ud's mutex. */
#ifndef KN_LEADERBOARD_LUA_H
#define KN_LEADERBOARD_LUA_H

#include "kn_leaderboard.h"
#include "kn_lua_bind.h"
#include "kn_tournament.h"

#include <pthread.h>

/* Filled by the root before the runtime loads; read-only after, except db
 * which is used under mu. lbs NULL: every function refuses. */
typedef struct kn_leaderboard_lua {
    kn_leaderboards *lbs;
    kn_db *db; /* the start-up connection, for creations outside calls; may be NULL */
    pthread_mutex_t mu;
} kn_leaderboard_lua;

/* A reset for kn_leaderboard_lua_run_reset: the board as it was and the
 * end of the period that ended. */
typedef struct kn_leaderboard_lua_reset {
    const kn_leaderboard *board;
    int64_t reset;
} kn_leaderboard_lua_reset;

/* Calls every function registered with kaos.register_leaderboard_reset as
 * fn(context, leaderboard, reset), for the call the root runs with
 * kn_runtime_call(vm, ctx, kn_leaderboard_lua_run_reset, &reset, ...):
 * argument 1 is the kn_leaderboard_lua_reset, argument 2 the context. */
int kn_leaderboard_lua_run_reset(lua_State *L);

/* A tournament's end or reset for kn_leaderboard_lua_run_tournament. */
typedef struct kn_leaderboard_lua_tournament {
    const kn_tournament *tournament;
    int64_t end, reset;
    bool is_end; /* register_tournament_end's functions, else _reset's */
} kn_leaderboard_lua_tournament;

/* Calls every function registered with kaos.register_tournament_end (or
 * _reset) as fn(context, tournament, end, reset); arguments as
 * kn_leaderboard_lua_run_reset's. */
int kn_leaderboard_lua_run_tournament(lua_State *L);

/* register_leaderboard_reset, leaderboard_create, leaderboard_delete, leaderboard_list,
 * leaderboard_get, leaderboard_submit, leaderboard_records_list, leaderboard_around,
 * leaderboard_record_delete, leaderboard_records_list_cursor_from_rank, and the tournaments':
 * register_tournament_end, register_tournament_reset, tournament_create, tournament_delete,
 * tournament_get, tournament_join, tournament_list, tournament_records_list, tournament_around,
 * tournament_record_write, tournament_add_attempt. */
extern const luaL_Reg kn_leaderboard_lua_funcs[];

#endif
