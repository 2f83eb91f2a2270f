/* The leaderboard binding (kaos.leaderboard_*, kaos.register_leaderboard_reset)
 * in a real runtime against Postgres: boards created while modules load
 * (the binding's own connection), the functions' refusals with their codes,
 * and a cron reset with a stepped clock running the script's reset function
 * through kn_runtime_call, as the composition root does, once; the same
 * for a tournament's reset function (kaos.register_tournament_reset). */
#include "luatest.h"
#include "pgtest.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_leaderboard.h"
#include "kn_leaderboard_lua.h"
#include "kn_mem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static pgtest pg;
static kn_db *db;
static char msg[256];
static int64_t clock_ms = 1700000000000LL;
static kn_runtime_vm *vm;
static int resets_run;

static int64_t test_clock(void *ud)
{
    (void)ud;
    return clock_ms;
}

/* What server.c does with on_reset. */
static void on_reset(void *ud, kn_db *d, const kn_leaderboard *board, int64_t reset)
{
    (void)ud;
    kn_runtime_services svc = {d};
    kn_runtime_context ctx = luatest_ctx;
    ctx.execution_mode = "leaderboard_reset";
    ctx.services = &svc;
    kn_leaderboard_lua_reset r = {board, reset};
    char m[256];
    assert_int_equal(
        kn_runtime_call(vm, &ctx, kn_leaderboard_lua_run_reset, &r, "reset", m, sizeof m), KN_OK);
    resets_run++;
}

static int setup(void **state)
{
    if (luatest_setup(state)) return -1;
    return pgtest_create(&pg, "kaos_lb_lua", &db) ? -1 : 0;
}

static int teardown(void **state)
{
    kn_db_close(db);
    pgtest_drop(&pg);
    return luatest_teardown(state);
}

static const char module[] =
    "local kaos = require('kaos')\n"
    "kaos.leaderboard_create('daily', false, 'desc', 'best', '0 0 * * *')\n"
    "kaos.leaderboard_create('reset_log', true, 'asc', 'set')\n"
    "kaos.register_leaderboard_reset(function(ctx, lb, reset)\n"
    "  kaos.leaderboard_submit('reset_log', 'c0000000-0000-4000-8000-000000000001', reset, 0,\n"
    "                          { board = lb.id, mode = ctx.execution_mode, op = lb.operator })\n"
    "end)\n"
    "local function outcome(f, ...)\n"
    "  local ok, e = pcall(f, ...)\n"
    "  if ok then return 'ok' end\n"
    "  if type(e) == 'table' then return e.code .. ' ' .. e.message end\n"
    "  return 'lua error'\n"
    "end\n"
    "kaos.register_rpc(function(ctx, payload)\n"
    "  local me = 'c0000000-0000-4000-8000-000000000002'\n"
    "  if payload == 'sort' then return outcome(kaos.leaderboard_create, 'x', false, 'up') end\n"
    "  if payload == 'op' then return outcome(kaos.leaderboard_submit, 'daily', me, 1, 0, nil, "
    "nil, 'max') end\n"
    "  if payload == 'cron' then return outcome(kaos.leaderboard_create, 'y', false, 'asc', 'set', "
    "'bad') end\n"
    "  if payload == 'limit' then return outcome(kaos.leaderboard_records_list, 'daily', nil, "
    "5000) end\n"
    "  if payload == 'huge' then return outcome(kaos.leaderboard_around, 'daily', me, 4294967301) "
    "end\n"
    "  if payload == 'write' then\n"
    "    local r = kaos.leaderboard_submit('daily', me, 42, 1, { a = 1 }, 'bob')\n"
    "    return r.username .. ' ' .. r.score .. ' ' .. r.rank .. ' ' .. r.metadata.a\n"
    "  end\n"
    "  if payload == 'list' then\n"
    "    local all = kaos.leaderboard_list()\n"
    "    return #all .. ' ' .. all[1].id .. ' ' .. all[1].operator .. ' ' .. all[2].sort_order\n"
    "  end\n"
    "  if payload == 'cursor' then\n"
    "    return outcome(kaos.leaderboard_records_list_cursor_from_rank, 'daily', 9)\n"
    "  end\n"
    "  return 'unknown'\n"
    "end, 'case')\n";

static void functions_refuse_with_codes_and_write_with_ranks(void **state)
{
    (void)state;
    kn_leaderboards_config c = {.now_ms = test_clock, .on_reset = on_reset};
    kn_leaderboards *lbs = NULL;
    assert_int_equal(kn_leaderboards_create(&c, &lbs), KN_OK);
    kn_leaderboard_lua ud = {.lbs = lbs, .db = db, .mu = PTHREAD_MUTEX_INITIALIZER};
    kn_lua_binding b = {"leaderboards", kn_leaderboard_lua_funcs, &ud};
    luatest_write("lb.lua", module);
    kn_runtime *rt = NULL;
    vm = luatest_load(&rt, &b, 1);
    assert_int_equal(kn_leaderboards_count(lbs), 2); /* created while the modules loaded */
    static const struct {
        const char *payload, *want;
    } cases[] = {
        {"sort", "3 sort order must be \"asc\" or \"desc\", not \"up\""},
        {"op", "3 operator must be \"best\", \"set\", \"incr\" or \"decr\", not \"max\""},
        {"cron",
         "3 reset schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 1"},
        {"limit", "3 limit must be 1-1000, not 5000"},
        {"huge", "3 limit must be 1-1000, not 2147483647"},
        {"write", "bob 42 1 1"},
        {"list", "2 daily best 1"},
        {"cursor", "5 rank 9 is past the board's 1 records"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        char *got = luatest_call_db(vm, db, "case", cases[i].payload, &rc, msg);
        if (!got || strcmp(got, cases[i].want))
            fail_msg("%s: got \"%s\" (%d %s), want \"%s\"", cases[i].payload, got ? got : "", rc,
                     msg, cases[i].want);
        kn_free(got);
    }

    /* A day later the daily board's period has ended: the script's reset
     * function runs once and writes what it was given. */
    int64_t end = (clock_ms / 1000 / 86400 + 1) * 86400;
    clock_ms = end * 1000 + 5000;
    assert_int_equal(kn_leaderboards_tick(lbs, db), 1);
    assert_int_equal(kn_leaderboards_tick(lbs, db), 0);
    assert_int_equal(resets_run, 1);
    kn_leaderboard_query q = {.id = "reset_log", .limit = 10};
    kn_leaderboard_page p;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 1);
    assert_int_equal(p.records[0].score, end);
    assert_non_null(strstr(p.records[0].metadata, "\"board\": \"daily\""));
    assert_non_null(strstr(p.records[0].metadata, "\"mode\": \"leaderboard_reset\""));
    assert_non_null(strstr(p.records[0].metadata, "\"op\": \"best\""));
    kn_leaderboard_page_free(&p);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
    kn_leaderboards_destroy(lbs);
}

static int tournament_calls;

/* What server.c does with on_tournament_end / _reset. */
static void on_tournament(void *ud, kn_db *d, const kn_tournament *t, int64_t end, int64_t reset)
{
    bool is_end = ud != NULL;
    kn_runtime_services svc = {d};
    kn_runtime_context ctx = luatest_ctx;
    ctx.execution_mode = is_end ? "tournament_end" : "tournament_reset";
    ctx.services = &svc;
    kn_leaderboard_lua_tournament r = {t, end, reset, is_end};
    char m[256];
    assert_int_equal(
        kn_runtime_call(vm, &ctx, kn_leaderboard_lua_run_tournament, &r, "tournament", m, sizeof m),
        KN_OK);
    tournament_calls++;
}

static const char tournament_module[] =
    "local kaos = require('kaos')\n"
    "kaos.leaderboard_create('tn_log', true, 'asc', 'set')\n"
    "kaos.tournament_create('hourly_tn', false, 'desc', 'best', '0 * * * *', nil, 'Hourly', '',\n"
    "                       3, 0, 0, 0, 10, 5, false)\n"
    "kaos.register_tournament_reset(function(ctx, t, end_time, reset)\n"
    "  kaos.leaderboard_submit('tn_log', 'c0000000-0000-4000-8000-000000000003', reset, end_time,\n"
    "    { id = t.id, mode = ctx.execution_mode, title = t.title, max = t.max_size,\n"
    "      size = t.size, op = t.operator })\n"
    "end)\n"
    "kaos.register_rpc(function(ctx, payload)\n"
    "  local r = kaos.tournament_record_write('hourly_tn', "
    "'c0000000-0000-4000-8000-000000000004',\n"
    "                                        'ann', 7)\n"
    "  return r.username .. ' ' .. r.score .. ' ' .. r.rank\n"
    "end, 'write')\n";

static void the_tournament_reset_runs_the_scripts_function_with_nakamas_arguments(void **state)
{
    (void)state;
    kn_leaderboards_config c = {.now_ms = test_clock,
                                .on_tournament_reset = on_tournament,
                                .on_tournament_end = on_tournament,
                                .on_tournament_ud = NULL};
    kn_leaderboards *lbs = NULL;
    assert_int_equal(kn_leaderboards_create(&c, &lbs), KN_OK);
    kn_leaderboard_lua ud = {.lbs = lbs, .db = db, .mu = PTHREAD_MUTEX_INITIALIZER};
    kn_lua_binding b = {"leaderboards", kn_leaderboard_lua_funcs, &ud};
    luatest_write("lb.lua", tournament_module);
    kn_runtime *rt = NULL;
    vm = luatest_load(&rt, &b, 1);
    int rc;
    char *got = luatest_call_db(vm, db, "write", "", &rc, msg);
    assert_non_null(got);
    assert_string_equal(got, "ann 7 1");
    kn_free(got);
    int64_t end = (clock_ms / 1000 / 3600 + 1) * 3600;
    clock_ms = end * 1000 + 1000;
    assert_int_equal(kn_leaderboards_tick(lbs, db), 1);
    assert_int_equal(tournament_calls, 1);
    kn_leaderboard_query q = {.id = "tn_log", .limit = 10};
    kn_leaderboard_page p;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 1);
    assert_int_equal(p.records[0].score, end);  /* reset: the period's end */
    assert_int_equal(p.records[0].subscore, 0); /* end: the tournament never ends */
    const char *md = p.records[0].metadata;
    assert_non_null(strstr(md, "\"id\": \"hourly_tn\""));
    assert_non_null(strstr(md, "\"mode\": \"tournament_reset\""));
    assert_non_null(strstr(md, "\"title\": \"Hourly\""));
    assert_non_null(strstr(md, "\"max\": 10"));
    assert_non_null(strstr(md, "\"size\": 1")); /* the period that ended had ann */
    assert_non_null(strstr(md, "\"op\": \"best\""));
    kn_leaderboard_page_free(&p);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
    kn_leaderboards_destroy(lbs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(functions_refuse_with_codes_and_write_with_ranks),
        cmocka_unit_test(the_tournament_reset_runs_the_scripts_function_with_nakamas_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
