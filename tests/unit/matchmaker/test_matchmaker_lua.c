/* The matchmaker functions of `kaos` (matchmaker_lua.c), registered as the
 * runtime's "matchmaker" binding over a real matchmaker (manual passes) and
 * real bound sessions: a script adds tickets for two sessions that a pass
 * matches (properties, query and widening as the wire gives them), removes
 * one, and is refused with the service's codes and messages (an unknown
 * session, bad counts, a bad query, a bad widening rule, the per-session
 * limit, a ticket removed twice, a wrong type). */
#include "kn_error.h"
#include "kn_matchmaker.h"
#include "kn_matchmaker_lua.h"
#include "kn_session.h"
#include "luatest.h"
#include "sessionlane.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define U1 "a11ce000-0000-4000-8000-000000000001"
#define S1 "5e551000-0000-4000-8000-000000000001"
#define U2 "b0b00000-0000-4000-8000-000000000002"
#define S2 "5e552000-0000-4000-8000-000000000002"

static sessionlane L;
static kn_matchmaker *mm;

/* What `matched` saw: the groups' players as "user/skill" lists. */
static char seen[4][256];
static size_t n_seen;

static void on_matched(void *ud, kn_mm_ticket *const *t, size_t n)
{
    (void)ud;
    if (n_seen == 4) return;
    char *out = seen[n_seen++];
    *out = '\0';
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < t[i]->n_props; k++)
            if (t[i]->props[k].is_num)
                snprintf(out + strlen(out), 256 - strlen(out), "%s%s=%g", *out ? " " : "",
                         t[i]->players[0].username, t[i]->props[k].num);
}

static int setup(void **state)
{
    sessionlane_open(&L, false);
    kn_matchmaker_config cfg = {.max_intervals = 1, .matched = on_matched};
    assert_int_equal(kn_matchmaker_create(&cfg, &mm), KN_OK);
    sessionlane_bind(&L, U1, "alice", S1);
    sessionlane_bind(&L, U2, "bob", S2);
    n_seen = 0;
    return luatest_setup(state);
}

static int teardown(void **state)
{
    for (size_t i = 0; i < L.n; i++)
        kn_sessions_close(L.ss, L.sessions[i]);
    L.n = 0;
    kn_matchmaker_destroy(mm);
    sessionlane_close(&L);
    return luatest_teardown(state);
}

static const char module[] = LUATEST_PRELUDE
    "local U1, S1, U2, S2 = '" U1 "', '" S1 "', '" U2 "', '" S2 "'\n"
    "local function duel(skill, query, widen)\n"
    "  return { min_count = 2, max_count = 2, query = query,\n"
    "           properties = { region = 'eu', skill = skill }, widen = widen }\n"
    "end\n"
    "local cases = {\n"
    "  pair = function()\n"
    "    local a = kaos.matchmaker_add(U1, S1, duel(1000, '+region:eu +skill:<=1100',\n"
    "                                  { { property = 'skill', step = 100, max = 300 } }))\n"
    "    local b = kaos.matchmaker_add(U2, S2, duel(1250, '+region:eu'))\n"
    "    return #a .. ' ' .. #b .. ' ' .. tostring(a ~= b)\n"
    "  end,\n"
    "  remove = function()\n"
    "    local a = kaos.matchmaker_add(U1, S1, duel(5, '+region:nowhere'))\n"
    "    local r = outcome(kaos.matchmaker_remove, U1, S1, a)\n"
    "    return r .. ' | ' .. outcome(kaos.matchmaker_remove, U1, S1, a)\n"
    "  end,\n"
    "  limit = function()\n"
    "    local r = ''\n"
    "    for i = 1, 4 do r = r .. outcome(kaos.matchmaker_add, U2, S2, duel(i, '+region:x')) .. ' "
    "' end\n"
    "    return r\n"
    "  end,\n"
    "  no_session = function() return outcome(kaos.matchmaker_add, U2, S1, duel(1)) end,\n"
    "  counts = function()\n"
    "    return outcome(kaos.matchmaker_add, U1, S1, { min_count = 1, max_count = 2 })\n"
    "  end,\n"
    "  query = function() return outcome(kaos.matchmaker_add, U1, S1, duel(1, 'skill>3')) end,\n"
    "  widen = function()\n"
    "    return outcome(kaos.matchmaker_add, U1, S1,\n"
    "      duel(1, '+skill:<=5', { { property = 'skill', step = 0, max = 3 } }))\n"
    "  end,\n"
    "  widen_shape = function()\n"
    "    return outcome(kaos.matchmaker_add, U1, S1, duel(1, '+skill:<=5', { 'skill' }))\n"
    "  end,\n"
    "  prop_type = function()\n"
    "    return outcome(kaos.matchmaker_add, U1, S1,\n"
    "      { min_count = 2, max_count = 2, properties = { mode = true } })\n"
    "  end,\n"
    "}\n" LUATEST_CASES_RPC;

static kn_runtime_vm *load(kn_runtime **rt, kn_matchmaker_lua *deps)
{
    *deps = (kn_matchmaker_lua){mm, L.ss};
    return luatest_load_one(rt, "mm.lua", module, "matchmaker", kn_matchmaker_lua_funcs, deps);
}

static void a_script_adds_tickets_for_sessions_that_a_widening_pass_matches(void **state)
{
    (void)state;
    kn_matchmaker_lua deps;
    kn_runtime *rt;
    kn_runtime_vm *vm = load(&rt, &deps);
    static const luatest_case cases[] = {{"pair", "36 36 true"}};
    luatest_expect(vm, cases, 1);
    kn_mm_process(mm); /* alice looks up to 1100: bob (1250) is out */
    kn_mm_process(mm); /* 1200 */
    assert_int_equal(n_seen, 0);
    kn_mm_process(mm); /* 1300: bob is in */
    assert_int_equal(n_seen, 1);
    assert_string_equal(seen[0], "alice=1000 bob=1250");
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void a_script_removes_tickets_and_is_refused_as_the_wire_is(void **state)
{
    (void)state;
    kn_matchmaker_lua deps;
    kn_runtime *rt;
    kn_runtime_vm *vm = load(&rt, &deps);
    static const luatest_case cases[] = {
        {"remove", "ok | 5 ticket not found"},
        {"limit", "ok ok ok 8 matchmaker ticket limit per session reached (3) "},
        {"no_session", "5 session not found"},
        {"counts", "3 counts: need 2 <= min_count <= max_count <= 64"},
        {"query", "3 query: expected field:value at position 0 (\"skill>3\")"},
        {"widen", "3 widen \"skill\": step must be a finite number above 0"},
        {"widen_shape", "3 widen: a list of {property, step, max}"},
        {"prop_type", "3 property \"mode\" must be a string or a number"},
    };
    luatest_expect(vm, cases, sizeof cases / sizeof cases[0]);
    kn_matchmaker_stats st;
    kn_matchmaker_stats_get(mm, &st);
    assert_int_equal(st.tickets, 3); /* bob's three from "limit" */
    /* A ticket from a script dies with its session, as a client's does. */
    assert_int_equal(kn_mm_remove_session(mm, S2), 3);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void the_functions_refuse_before_the_matchmaker_exists(void **state)
{
    (void)state;
    kn_matchmaker_lua deps = {0};
    kn_runtime *rt;
    kn_runtime_vm *vm =
        luatest_load_one(&rt, "mm.lua", module, "matchmaker", kn_matchmaker_lua_funcs, &deps);
    static const luatest_case cases[] = {
        {"no_session", "14 kaos.matchmaker_add is not available yet (server starting)"}};
    luatest_expect(vm, cases, 1);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_script_adds_tickets_for_sessions_that_a_widening_pass_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(a_script_removes_tickets_and_is_refused_as_the_wire_is,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(the_functions_refuse_before_the_matchmaker_exists, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
