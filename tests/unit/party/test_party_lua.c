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
#include "kn_party_lua.h"
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
    "}\n"
    "kaos.register_rpc(function(ctx, p)\n"
    "  local ok, r = pcall(cases[p])\n"
    "  if ok then return r end\n"
    "  return 'raised: ' .. (type(r) == 'table' and r.code .. ' ' .. r.message or tostring(r))\n"
    "end, 'case')\n";

static void party_functions_act_for_bound_sessions_and_refuse_bad_input(void **state)
{
    (void)state;
    luatest_write("party.lua", module);
    kn_party_lua party_lua = {parties, L.ss};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(party_functions_act_for_bound_sessions_and_refuse_bad_input,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
