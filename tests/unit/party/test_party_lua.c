/* The party functions of `kaos` (party_lua.c), registered as the runtime's
 * "party" binding over a real tracker, a real party service and real bound
 * sessions: create, get, join an open party, promote, leave, a closed
 * party's request the leader lists and accepts, close, and the refusals
 * with their codes and messages (unknown session, not the leader, a bad
 * size or label, an unknown party). */
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_out.h"
#include "kn_party.h"
#include "kn_matchmaker.h"
#include "kn_party_lua.h"
#include "kn_party_wire.h"
#include "kn_session.h"
#include "kn_stream.h"
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

/* --- sessions on a fake lane, a counting tracker, the party service ----------------- */

static sessionlane L;
static kn_parties *parties;

static int setup(void **state)
{
    sessionlane_open(&L, false);
    assert_int_equal(kn_parties_create(L.tracker, NULL, &parties), KN_OK);
    sessionlane_bind(&L, U1, "alice", S1);
    sessionlane_bind(&L, U2, "bob", S2);
    return luatest_setup(state);
}

static int teardown(void **state)
{
    for (size_t i = 0; i < L.n; i++) /* the sessions end before the parties go */
        kn_sessions_close(L.ss, L.sessions[i]);
    L.n = 0;
    kn_parties_destroy(parties);
    sessionlane_close(&L);
    return luatest_teardown(state);
}

static const char module[] = LUATEST_PRELUDE
    "local U1, S1, U2, S2 = '" U1 "', '" S1 "', '" U2 "', '" S2 "'\n"
    "local function names(list)\n"
    "  local r = {}\n"
    "  for i, p in ipairs(list) do r[i] = p.username end\n"
    "  return table.concat(r, ',')\n"
    "end\n"
    "local cases = {\n"
    "  open = function()\n"
    "    local p = kaos.party_create(U1, S1, { open = true, max_size = 4, label = 'duo' })\n"
    "    local r = p.label .. ' ' .. tostring(p.open) .. ' ' .. p.max_size .. ' ' ..\n"
    "      p.leader.username .. ' ' .. names(p.presences)\n"
    "    local j = kaos.party_join(U2, S2, p.party_id)\n"
    "    r = r .. ' | ' .. names(j.presences)\n"
    "    r = r .. ' | ' .. outcome(kaos.party_promote, U2, S2, p.party_id, U2, S2)\n"
    "    kaos.party_promote(U1, S1, p.party_id, U2, S2)\n"
    "    r = r .. ' | ' .. kaos.party_get(p.party_id).leader.username\n"
    "    kaos.party_leave(U2, S2, p.party_id)\n"
    "    r = r .. ' | ' .. kaos.party_get(p.party_id).leader.username\n"
    "    kaos.party_leave(U1, S1, p.party_id)\n"
    "    return r .. ' | ' .. tostring(kaos.party_get(p.party_id))\n"
    "  end,\n"
    "  closed = function()\n"
    "    local p = kaos.party_create(U1, S1, { max_size = 2 })\n"
    "    local r = tostring(kaos.party_join(U2, S2, p.party_id))\n"
    "    r = r .. ' ' .. names(kaos.party_join_requests(U1, S1, p.party_id))\n"
    "    r = r .. ' ' .. outcome(kaos.party_join_requests, U2, S2, p.party_id)\n"
    "    kaos.party_accept(U1, S1, p.party_id, U2, S2)\n"
    "    r = r .. ' ' .. names(kaos.party_get(p.party_id).presences)\n"
    "    r = r .. ' ' .. outcome(kaos.party_close, U2, S2, p.party_id)\n"
    "    kaos.party_close(U1, S1, p.party_id)\n"
    "    return r .. ' ' .. tostring(kaos.party_get(p.party_id))\n"
    "  end,\n"
    "  no_session = function() return outcome(kaos.party_create, U2, S1, { max_size = 2 }) end,\n"
    "  bad_size = function() return outcome(kaos.party_create, U1, S1, { max_size = 1 }) end,\n"
    "  bad_label = function()\n"
    "    return outcome(kaos.party_create, U1, S1, { max_size = 2, label = {} })\n"
    "  end,\n"
    "  unknown = function()\n"
    "    return outcome(kaos.party_join, U1, S1, '00000000-0000-4000-8000-000000000000')\n"
    "  end,\n"
    "}\n" LUATEST_CASES_RPC;

static void party_functions_act_for_bound_sessions_and_refuse_bad_input(void **state)
{
    (void)state;
    luatest_write("party.lua", module);
    kn_party_lua party_lua = {parties, L.ss, NULL};
    const kn_lua_binding binding = {"party", kn_party_lua_funcs, &party_lua};
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    static const luatest_case cases[] = {
        {"open", "duo true 4 alice alice | alice,bob | 7 only the party leader may promote "
                 "members | bob | alice | nil"},
        /* bob asks (nil: pending), and before the accept he is no member: not found */
        {"closed", "nil bob 5 party not found alice,bob 7 only the party leader may close the "
                   "party nil"},
        {"no_session", "5 session not found"},
        {"bad_size", "3 max size must be 2-256"},
        {"bad_label", "3 label must be a string"},
        {"unknown", "5 party not found"},
    };
    luatest_expect(vm, cases, sizeof cases / sizeof cases[0]);
    assert_true(L.tracker_sends > 0); /* the joins and leaves reached the members */
    assert_int_equal(kn_parties_count(parties), 0);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

/* --- the same with the matchmaker and the way out: data, listing, party tickets ----- */

static kn_matchmaker *mm;
static kn_party_wire wire;
static size_t groups, group_players;
static char group_party[37];

static void on_matched(void *ud, kn_mm_ticket *const *t, size_t n)
{
    (void)ud;
    groups++;
    for (size_t i = 0; i < n; i++) {
        group_players += t[i]->n_players;
        snprintf(group_party, sizeof group_party, "%s", t[i]->party_id);
    }
}

static int setup_mm(void **state)
{
    sessionlane_open(&L, false);
    kn_matchmaker_config cfg = {.max_intervals = 1, .matched = on_matched};
    assert_int_equal(kn_matchmaker_create(&cfg, &mm), KN_OK);
    wire = (kn_party_wire){.mm = mm, .out = L.out};
    kn_party_hooks hooks = {kn_party_wire_notify, kn_party_wire_changed, &wire};
    assert_int_equal(kn_parties_create(L.tracker, &hooks, &parties), KN_OK);
    wire.parties = parties;
    sessionlane_bind(&L, U1, "alice", S1);
    sessionlane_bind(&L, U2, "bob", S2);
    groups = group_players = 0;
    return luatest_setup(state);
}

static int teardown_mm(void **state)
{
    int rc = teardown(state);
    kn_matchmaker_destroy(mm);
    return rc;
}

static const char mm_module[] = LUATEST_PRELUDE
    "local U1, S1, U2, S2 = '" U1 "', '" S1 "', '" U2 "', '" S2 "'\n"
    "local duo = function() \n"
    "  local p = kaos.party_create(U1, S1, { open = true, max_size = 4,\n"
    "                                       label = '{\"mode\":\"ranked\"}' })\n"
    "  kaos.party_join(U2, S2, p.party_id)\n"
    "  return p.party_id\n"
    "end\n"
    "local ticket = { min_count = 2, max_count = 4, properties = { skill = 10 } }\n"
    "local cases = {\n"
    "  send = function()\n"
    "    local id = duo()\n"
    "    kaos.party_send(U1, S1, id, 7, 'hello')\n"
    "    kaos.party_send(U2, S2, id, 8, 'x', false)\n"
    "    local r = outcome(kaos.party_send, U1, S1, '00000000-0000-4000-8000-000000000000', 1, "
    "'')\n"
    "    kaos.party_close(U1, S1, id)\n"
    "    return r\n"
    "  end,\n"
    "  list = function()\n"
    "    local id = duo()\n"
    "    kaos.party_create(U1, S1, { open = true, max_size = 2, label = '{\"mode\":\"casual\"}' "
    "})\n"
    "    kaos.party_create(U2, S2, { open = true, max_size = 2, hidden = true,\n"
    "                                label = '{\"mode\":\"ranked\"}' })\n"
    "    local l = kaos.party_list('+label.mode:ranked')\n"
    "    local r = #l .. ' ' .. tostring(l[1].party_id == id) .. ' ' .. #l[1].presences\n"
    "    r = r .. ' ' .. #kaos.party_list() .. ' ' .. #kaos.party_list('', 1)\n"
    "    return r .. ' | ' .. outcome(kaos.party_list, '', 101) .. ' | ' ..\n"
    "      outcome(kaos.party_list, 'mode>3')\n"
    "  end,\n"
    "  ticket = function()\n"
    "    local id = duo()\n"
    "    local r = outcome(kaos.party_matchmaker_add, U2, S2, id, ticket)\n"
    "    local t = kaos.party_matchmaker_add(U1, S1, id, ticket)\n"
    "    return #t .. ' ' .. id .. ' | ' .. r\n"
    "  end,\n"
    "  ticket_remove = function()\n"
    "    local id = duo()\n"
    "    local t = kaos.party_matchmaker_add(U1, S1, id, ticket)\n"
    "    local r = outcome(kaos.party_matchmaker_remove, U2, S2, id, t)\n"
    "    r = r .. ' | ' .. outcome(kaos.party_matchmaker_remove, U1, S1, id, t)\n"
    "    r = r .. ' | ' .. outcome(kaos.party_matchmaker_remove, U1, S1, id, t)\n"
    "    return r .. ' | ' .. outcome(kaos.party_matchmaker_add, U1, S1, id, { min_count = 1 })\n"
    "  end,\n"
    "}\n" LUATEST_CASES_RPC;

static kn_runtime_vm *load_mm(kn_runtime **rt, kn_party_lua *deps)
{
    *deps = (kn_party_lua){parties, L.ss, &wire};
    return luatest_load_one(rt, "party.lua", mm_module, "party", kn_party_lua_funcs, deps);
}

static void party_data_and_listing_reach_the_service_from_a_script(void **state)
{
    (void)state;
    kn_party_lua deps;
    kn_runtime *rt;
    kn_runtime_vm *vm = load_mm(&rt, &deps);
    size_t before = L.tracker_recips;
    static const luatest_case send[] = {{"send", "5 party not found"}};
    luatest_expect(vm, send, 1);
    /* Each send reached the one other member (beside the joins and the close). */
    assert_true(L.tracker_recips >= before + 2);
    static const luatest_case list[] = {
        {"list", "1 true 2 2 1 | 3 limit must be 1-100 (0 = 10) | 3 query: expected field:value "
                 "at position 0 (\"mode>3\")"}};
    luatest_expect(vm, list, 1);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void a_script_puts_a_party_in_the_matchmaker_as_one_ticket(void **state)
{
    (void)state;
    kn_party_lua deps;
    kn_runtime *rt;
    kn_runtime_vm *vm = load_mm(&rt, &deps);
    int rc;
    char msg[256] = "";
    char *out = luatest_call(vm, "case", "ticket", &rc, msg);
    assert_int_equal(rc, KN_OK);
    char party[37];
    assert_int_equal(sscanf(out, "36 %36s | ", party), 1);
    assert_non_null(strstr(out, "| 7 only the party leader may add matchmaker tickets"));
    kn_free(out);
    kn_mm_process(mm); /* one ticket of two players: a group on its own */
    assert_int_equal(groups, 1);
    assert_int_equal(group_players, 2);
    assert_string_equal(group_party, party);
    static const luatest_case cases[] = {
        {"ticket_remove", "7 only the party leader may remove matchmaker tickets | ok | 5 ticket "
                          "not found | 3 counts: need 2 <= min_count <= max_count <= 64"}};
    luatest_expect(vm, cases, 1);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(party_functions_act_for_bound_sessions_and_refuse_bad_input,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(party_data_and_listing_reach_the_service_from_a_script,
                                        setup_mm, teardown_mm),
        cmocka_unit_test_setup_teardown(a_script_puts_a_party_in_the_matchmaker_as_one_ticket,
                                        setup_mm, teardown_mm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
