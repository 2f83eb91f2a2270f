/* leaderboard_lua: the leaderboard functions of `kaos` (docs/lua-api.md),
 * registered with the runtime as a binding (kn_leaderboard_lua.h).
 *
 * They call the same C functions as the wire, as the server (authoritative
 * boards accept them). Refusals of the service are raised as
 * error({code = N, message = "..."}); a wrong argument type is an ordinary
 * Lua error (a script bug). Results are kept in a holder userdata while
 * the tables are built, so a Lua error half-way never leaks them. */
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_leaderboard_lua.h"
#include "kn_mem.h"
#include "kn_tournament.h"

#include <limits.h>
#include <string.h>

#define MSG_CAP 256

typedef struct holder {
    kn_leaderboard *boards;
    size_t n_boards;
    kn_leaderboard_page page;
    kn_leaderboard_record rec;
    kn_leaderboard board;
    char *cursor;
    kn_tournament *tours;
    size_t n_tours;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_leaderboards_free(h->boards, h->n_boards);
    kn_leaderboard_page_free(&h->page);
    kn_free(h->rec.metadata);
    kn_leaderboard_deinit(&h->board);
    kn_free(h->cursor);
    kn_tournaments_free(h->tours, h->n_tours);
    memset(h, 0, sizeof *h);
    return 0;
}

static holder *new_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(holder), "kaos.leaderboard_holder", holder_gc);
}

static kn_leaderboards *lbs_of(lua_State *L, const char *name)
{
    kn_leaderboard_lua *ud = kn_lua_binding_ud(L);
    if (!ud || !ud->lbs) luaL_error(L, "kaos.%s is not available (no leaderboard service)", name);
    return ud->lbs;
}

/* The optional metadata table at idx as JSON text pushed on the stack; NULL for nil. */
static const char *metadata_arg(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t len;
    const char *why = "";
    int rc = kn_lua_push_json(L, idx, &len, &why);
    if (rc) kn_lua_raise_codedf(L, rc, "metadata: %s", why);
    return lua_tostring(L, -1);
}

static int sort_arg(lua_State *L, int idx)
{
    const char *s = luaL_optstring(L, idx, "desc");
    if (!strcmp(s, "desc") || !strcmp(s, "descending")) return KN_LB_DESC;
    if (!strcmp(s, "asc") || !strcmp(s, "ascending")) return KN_LB_ASC;
    return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT,
                               "sort order must be \"asc\" or \"desc\", not \"%s\"", s);
}

/* "best", "set", "incr"/"increment", "decr"/"decrement"; none: dflt. */
static int operator_arg(lua_State *L, int idx, int dflt)
{
    if (lua_isnoneornil(L, idx)) return dflt;
    const char *s = luaL_checkstring(L, idx);
    if (!strcmp(s, "best")) return KN_LB_OP_BEST;
    if (!strcmp(s, "set")) return KN_LB_OP_SET;
    if (!strcmp(s, "incr") || !strcmp(s, "increment")) return KN_LB_OP_INCR;
    if (!strcmp(s, "decr") || !strcmp(s, "decrement")) return KN_LB_OP_DECR;
    return kn_lua_raise_codedf(
        L, KN_ERR_INVALID_ARGUMENT,
        "operator must be \"best\", \"set\", \"incr\" or \"decr\", not \"%s\"", s);
}

/* The board's database for a creation: the binding's own at a module's
 * top level or in run_once (*own set: use it under ud->mu), else the
 * worker's. */
static kn_db *create_db(lua_State *L, const char *name, bool *own)
{
    kn_leaderboard_lua *ud = kn_lua_binding_ud(L);
    const char *mode = kn_lua_mode(L);
    *own = (!mode || !strcmp(mode, "run_once")) && ud->db;
    return *own ? ud->db : kn_lua_db(L, name);
}

/* leaderboard_create(id, authoritative, sort_order, operator, reset_schedule,
 * metadata, enable_ranks): Nakama's arguments. At a module's top level or in
 * run_once it uses the binding's own connection. */
static int k_leaderboard_create(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "leaderboard_create");
    kn_leaderboard_lua *ud = kn_lua_binding_ud(L);
    bool own;
    kn_db *db = create_db(L, "leaderboard_create", &own);
    lua_settop(L, 7);
    kn_leaderboard_spec s = {.id = luaL_checkstring(L, 1),
                             .authoritative = lua_toboolean(L, 2),
                             .sort_order = sort_arg(L, 3),
                             .operator_ = operator_arg(L, 4, KN_LB_OP_BEST),
                             .reset_schedule = luaL_optstring(L, 5, ""),
                             .disable_ranks = !lua_isnil(L, 7) && !lua_toboolean(L, 7)};
    s.metadata = metadata_arg(L, 6);
    char msg[MSG_CAP] = "";
    if (own) pthread_mutex_lock(&ud->mu);
    int rc = kn_leaderboard_create(lbs, db, &s, msg, sizeof msg);
    if (own) pthread_mutex_unlock(&ud->mu);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

static int k_leaderboard_delete(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "leaderboard_delete");
    kn_db *db = kn_lua_db(L, "leaderboard_delete");
    char msg[MSG_CAP] = "";
    int rc = kn_leaderboard_delete(lbs, db, luaL_checkstring(L, 1), msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

static void push_board(lua_State *L, const kn_leaderboard *b);

/* leaderboard_get(id) -> the board's table (operator as a name). */
static int k_leaderboard_get(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "leaderboard_get");
    const char *id = luaL_checkstring(L, 1);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_leaderboard_get(lbs, id, &h->board, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    push_board(L, &h->board);
    return 1;
}

/* leaderboard_list() -> every board, ordered by id. */
static int k_leaderboard_list(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "leaderboard_list");
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_leaderboards_list(lbs, &h->boards, &h->n_boards, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n_boards, 0);
    for (size_t i = 0; i < h->n_boards; i++) {
        push_board(L, &h->boards[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* leaderboard_submit(id, owner_id, score, subscore, metadata, username,
 * operator_override) -> the record table with its rank. In a match
 * handler, which must not wait on Postgres, the write is queued
 * (kn_leaderboards_enqueue) and nothing is returned. */
static int k_leaderboard_submit(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "leaderboard_submit");
    const char *mode = kn_lua_mode(L);
    bool queued = mode && !strcmp(mode, "a match handler");
    kn_db *db = queued ? NULL : kn_lua_db(L, "leaderboard_submit");
    lua_settop(L, 7);
    const char *id = luaL_checkstring(L, 1);
    const char *owner = luaL_checkstring(L, 2);
    kn_leaderboard_write_opts o = {.score = luaL_checkinteger(L, 3),
                                   .subscore = luaL_optinteger(L, 4, 0),
                                   .username = luaL_optstring(L, 6, NULL),
                                   .operator_ = operator_arg(L, 7, KN_LB_OP_DEFAULT)};
    o.metadata = metadata_arg(L, 5);
    char msg[MSG_CAP] = "";
    if (queued) {
        int rc = kn_leaderboards_enqueue(lbs, id, owner, &o, msg, sizeof msg);
        if (rc) return kn_lua_raise_coded(L, rc, msg);
        return 0;
    }
    holder *h = new_holder(L);
    int rc = kn_leaderboard_write(lbs, db, id, owner, &o, &h->rec, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    kn_lua_push_entity(L, &kn_leaderboard_record_entity, &h->rec);
    return 1;
}

static void push_records(lua_State *L, const kn_leaderboard_record *r, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        kn_lua_push_entity(L, &kn_leaderboard_record_entity, &r[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* A Lua integer as the service's int; past the int range stays out of
 * range for the service to refuse. */
static int clamp(lua_Integer v)
{
    return v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
}

typedef int (*list_fn)(kn_leaderboards *, kn_db *, const kn_leaderboard_query *,
                       kn_leaderboard_page *, char *, size_t);
typedef int (*around_fn)(kn_leaderboards *, kn_db *, const char *, const char *, int, int64_t,
                         kn_leaderboard_page *, char *, size_t);

/* (id, owner_ids, limit, cursor, expiry) -> records, owner_records,
 * next_cursor, prev_cursor (Nakama's four), through fn. */
static int records_list(lua_State *L, const char *name, list_fn fn)
{
    kn_leaderboards *lbs = lbs_of(L, name);
    kn_db *db = kn_lua_db(L, name);
    lua_settop(L, 5);
    kn_leaderboard_query q = {.id = luaL_checkstring(L, 1),
                              .limit = clamp(luaL_optinteger(L, 3, 0)),
                              .cursor = luaL_optstring(L, 4, NULL),
                              .expiry = luaL_optinteger(L, 5, 0)};
    q.owner_ids = kn_lua_string_list(L, 2, true, "owner_ids", &q.n_owner_ids);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = fn(lbs, db, &q, &h->page, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    push_records(L, h->page.records, h->page.n_records);
    push_records(L, h->page.owner_records, h->page.n_owner_records);
    lua_pushstring(L, h->page.next_cursor);
    lua_pushstring(L, h->page.prev_cursor);
    return 4;
}

/* (id, owner_id, limit, expiry) -> records, next_cursor, prev_cursor, through fn. */
static int records_around(lua_State *L, const char *name, around_fn fn)
{
    kn_leaderboards *lbs = lbs_of(L, name);
    kn_db *db = kn_lua_db(L, name);
    const char *id = luaL_checkstring(L, 1);
    const char *owner = luaL_checkstring(L, 2);
    int limit = clamp(luaL_optinteger(L, 3, 0));
    lua_Integer expiry = luaL_optinteger(L, 4, 0);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = fn(lbs, db, id, owner, limit, expiry, &h->page, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    push_records(L, h->page.records, h->page.n_records);
    lua_pushstring(L, h->page.next_cursor);
    lua_pushstring(L, h->page.prev_cursor);
    return 3;
}

/* leaderboard_records_list(id, owner_ids, limit, cursor, expiry) */
static int k_leaderboard_records_list(lua_State *L)
{
    return records_list(L, "leaderboard_records_list", kn_leaderboard_records_list);
}

/* leaderboard_around(id, owner_id, limit, expiry) -> records, next_cursor, prev_cursor */
static int k_leaderboard_around(lua_State *L)
{
    return records_around(L, "leaderboard_around", kn_leaderboard_records_around);
}

static int k_leaderboard_record_delete(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "leaderboard_record_delete");
    kn_db *db = kn_lua_db(L, "leaderboard_record_delete");
    char msg[MSG_CAP] = "";
    int rc = kn_leaderboard_record_delete(lbs, db, luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                                          false, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

/* leaderboard_records_list_cursor_from_rank(id, rank) -> a cursor */
static int k_leaderboard_cursor_from_rank(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "leaderboard_records_list_cursor_from_rank");
    const char *id = luaL_checkstring(L, 1);
    lua_Integer rank = luaL_checkinteger(L, 2);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_leaderboard_cursor_from_rank(lbs, id, rank, &h->cursor, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_pushstring(L, h->cursor);
    return 1;
}

/* The functions scripts registered with register_leaderboard_reset, in
 * registration order: a sequence in the registry under this key's address. */
static const char key_resets = 0;

/* register_leaderboard_reset(fn): fn(context, leaderboard, reset) runs
 * once per cluster when a period of any board ends (Nakama's shape);
 * leaderboard is the board's table, reset the end of the period that
 * ended (Unix seconds). Usually called as the module loads. */
static int register_in(lua_State *L, const void *key);

static int k_register_leaderboard_reset(lua_State *L)
{
    return register_in(L, &key_resets);
}

static void push_board(lua_State *L, const kn_leaderboard *b)
{
    kn_lua_push_entity(L, &kn_leaderboard_entity, b);
    static const char *const ops[] = {"best", "set", "incr", "decr"};
    kn_lua_set_string(L, "operator", ops[b->operator_ & 3]);
}

int kn_leaderboard_lua_run_reset(lua_State *L)
{
    const kn_leaderboard_lua_reset *r = lua_touserdata(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_resets) != LUA_TTABLE) return 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_pushvalue(L, 2); /* the context */
        push_board(L, r->board);
        lua_pushinteger(L, (lua_Integer)r->reset);
        lua_call(L, 3, 0);
    }
    return 0;
}

/* --- tournaments --------------------------------------------------------------------------- */

/* An integer argument as the service's int (out of range stays out of range). */
static int int_arg(lua_State *L, int idx)
{
    return clamp(luaL_optinteger(L, idx, 0));
}

/* tournament_create(id, authoritative, sort_order, operator, reset_schedule,
 * metadata, title, description, category, start_time, end_time, duration,
 * max_size, max_num_score, join_required, enable_ranks): Nakama's order. */
static int k_tournament_create(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "tournament_create");
    bool own;
    kn_db *db = create_db(L, "tournament_create", &own);
    lua_settop(L, 16);
    kn_tournament_spec s = {.board = {.id = luaL_checkstring(L, 1),
                                      .authoritative = lua_toboolean(L, 2),
                                      .sort_order = sort_arg(L, 3),
                                      .operator_ = operator_arg(L, 4, KN_LB_OP_BEST),
                                      .reset_schedule = luaL_optstring(L, 5, ""),
                                      .disable_ranks = !lua_isnil(L, 16) && !lua_toboolean(L, 16)},
                            .title = luaL_optstring(L, 7, ""),
                            .description = luaL_optstring(L, 8, ""),
                            .category = int_arg(L, 9),
                            .start_time = luaL_optinteger(L, 10, 0),
                            .end_time = luaL_optinteger(L, 11, 0),
                            .duration = int_arg(L, 12),
                            .max_size = int_arg(L, 13),
                            .max_num_score = int_arg(L, 14),
                            .join_required = lua_toboolean(L, 15)};
    s.board.metadata = metadata_arg(L, 6);
    char msg[MSG_CAP] = "";
    kn_leaderboard_lua *ud = kn_lua_binding_ud(L);
    if (own) pthread_mutex_lock(&ud->mu);
    int rc = kn_tournament_create(lbs, db, &s, msg, sizeof msg);
    if (own) pthread_mutex_unlock(&ud->mu);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

static int k_tournament_delete(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "tournament_delete");
    kn_db *db = kn_lua_db(L, "tournament_delete");
    char msg[MSG_CAP] = "";
    int rc = kn_tournament_delete(lbs, db, luaL_checkstring(L, 1), msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

static void push_tournament(lua_State *L, const kn_tournament *t)
{
    kn_lua_push_entity(L, &kn_tournament_entity, t);
    static const char *const ops[] = {"best", "set", "incr", "decr"};
    kn_lua_set_string(L, "operator", ops[t->operator_ & 3]);
}

/* tournament_join(id, owner_id, username): Nakama's arguments (username is
 * not needed: the record takes it at the first write). */
static int k_tournament_join(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "tournament_join");
    kn_db *db = kn_lua_db(L, "tournament_join");
    char msg[MSG_CAP] = "";
    int rc = kn_tournament_join(lbs, db, luaL_checkstring(L, 1), luaL_checkstring(L, 2), msg,
                                sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

/* tournament_list(category_start, category_end, start_time, end_time,
 * limit, cursor) -> tournaments, cursor (nil on the last page). */
static int k_tournament_list(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "tournament_list");
    kn_db *db = kn_lua_db(L, "tournament_list");
    lua_settop(L, 6);
    kn_tournament_query q = {.category_start = clamp(luaL_optinteger(L, 1, 0)),
                             .category_end =
                                 clamp(luaL_optinteger(L, 2, KN_TOURNAMENT_CATEGORY_MAX)),
                             .start_time = luaL_optinteger(L, 3, 0),
                             .end_time = luaL_optinteger(L, 4, 0),
                             .limit = int_arg(L, 5),
                             .cursor = luaL_optstring(L, 6, NULL)};
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_tournament_list(lbs, db, &q, &h->tours, &h->n_tours, &h->cursor, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n_tours, 0);
    for (size_t i = 0; i < h->n_tours; i++) {
        push_tournament(L, &h->tours[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushstring(L, h->cursor);
    return 2;
}

/* tournament_get(id) -> the tournament's table, with its window now. */
static int k_tournament_get(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "tournament_get");
    kn_db *db = kn_lua_db(L, "tournament_get");
    const char *id = luaL_checkstring(L, 1);
    holder *h = new_holder(L);
    if (!(h->tours = kn_calloc(1, sizeof *h->tours))) return luaL_error(L, "out of memory");
    h->n_tours = 1;
    char msg[MSG_CAP] = "";
    int rc = kn_tournament_get(lbs, db, id, h->tours, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    push_tournament(L, h->tours);
    return 1;
}

/* tournament_records_list(id, owner_ids, limit, cursor, expiry): as
 * leaderboard_records_list. */
static int k_tournament_records_list(lua_State *L)
{
    return records_list(L, "tournament_records_list", kn_tournament_records_list);
}

/* tournament_around(id, owner_id, limit, expiry) -> records, next, prev */
static int k_tournament_around(lua_State *L)
{
    return records_around(L, "tournament_around", kn_tournament_records_around);
}

/* tournament_record_write(id, owner_id, username, score, subscore, metadata,
 * operator_override): Nakama's order -> the record with its rank. */
static int k_tournament_record_write(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "tournament_record_write");
    kn_db *db = kn_lua_db(L, "tournament_record_write");
    lua_settop(L, 7);
    const char *id = luaL_checkstring(L, 1);
    const char *owner = luaL_checkstring(L, 2);
    kn_leaderboard_write_opts o = {.username = luaL_optstring(L, 3, NULL),
                                   .score = luaL_checkinteger(L, 4),
                                   .subscore = luaL_optinteger(L, 5, 0),
                                   .operator_ = operator_arg(L, 7, KN_LB_OP_DEFAULT)};
    o.metadata = metadata_arg(L, 6);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_tournament_record_write(lbs, db, id, owner, &o, &h->rec, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    kn_lua_push_entity(L, &kn_leaderboard_record_entity, &h->rec);
    return 1;
}

/* tournament_add_attempt(id, owner_id, count) */
static int k_tournament_add_attempt(lua_State *L)
{
    kn_leaderboards *lbs = lbs_of(L, "tournament_add_attempt");
    kn_db *db = kn_lua_db(L, "tournament_add_attempt");
    const char *id = luaL_checkstring(L, 1);
    const char *owner = luaL_checkstring(L, 2);
    int count = clamp(luaL_checkinteger(L, 3));
    char msg[MSG_CAP] = "";
    int rc = kn_tournament_add_attempt(lbs, db, id, owner, count, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    return 0;
}

/* register_tournament_end(fn) / register_tournament_reset(fn): fn(context,
 * tournament, end, reset), once per cluster (Nakama's shape). */
static const char key_ends = 0, key_tour_resets = 0;

static int register_in(lua_State *L, const void *key)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, key);
    }
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int k_register_tournament_end(lua_State *L)
{
    return register_in(L, &key_ends);
}

static int k_register_tournament_reset(lua_State *L)
{
    return register_in(L, &key_tour_resets);
}

int kn_leaderboard_lua_run_tournament(lua_State *L)
{
    const kn_leaderboard_lua_tournament *r = lua_touserdata(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, r->is_end ? &key_ends : &key_tour_resets) != LUA_TTABLE)
        return 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_pushvalue(L, 2); /* the context */
        push_tournament(L, r->tournament);
        lua_pushinteger(L, (lua_Integer)r->end);
        lua_pushinteger(L, (lua_Integer)r->reset);
        lua_call(L, 4, 0);
    }
    return 0;
}

const luaL_Reg kn_leaderboard_lua_funcs[] = {
    {"register_leaderboard_reset", k_register_leaderboard_reset},
    {"leaderboard_create", k_leaderboard_create},
    {"leaderboard_delete", k_leaderboard_delete},
    {"leaderboard_get", k_leaderboard_get},
    {"leaderboard_list", k_leaderboard_list},
    {"leaderboard_submit", k_leaderboard_submit},
    {"leaderboard_records_list", k_leaderboard_records_list},
    {"leaderboard_around", k_leaderboard_around},
    {"leaderboard_record_delete", k_leaderboard_record_delete},
    {"leaderboard_records_list_cursor_from_rank", k_leaderboard_cursor_from_rank},
    {"register_tournament_end", k_register_tournament_end},
    {"register_tournament_reset", k_register_tournament_reset},
    {"tournament_create", k_tournament_create},
    {"tournament_delete", k_tournament_delete},
    {"tournament_get", k_tournament_get},
    {"tournament_join", k_tournament_join},
    {"tournament_list", k_tournament_list},
    {"tournament_records_list", k_tournament_records_list},
    {"tournament_around", k_tournament_around},
    {"tournament_record_write", k_tournament_record_write},
    {"tournament_add_attempt", k_tournament_add_attempt},
    {NULL, NULL},
};
