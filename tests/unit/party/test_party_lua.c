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
#include "kn_time.h"
#include "luatest.h"

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

/* --- a fake lane (this thread) and a counting tracker sink -------------------------- */

#define MAX_CONNS 4
static kn_conn_id ids[MAX_CONNS];
static kn_session *sessions[MAX_CONNS];
static size_t n_conns;
static size_t tracker_sends; /* presence events and data through the tracker's sink */
static int l_send(void *ud, const kn_conn_id *to, size_t n, uint8_t ch, const uint8_t *d,
                  size_t len, bool rel)
{
    (void)n;
    return KN_OK;
}
static void l_close(void *ud, kn_conn_id id, uint32_t reason) {}
static int l_post(void *ud, void (*fn)(void *), void *arg)
{
    fn(arg); /* one thread: run at once */
    return KN_OK;
}
static bool l_here(void *ud)
{
    return true;
}
static void *l_data(void *ud, kn_conn_id id)
{
    for (size_t i = 0; i < n_conns; i++)
        if (ids[i] == id) return sessions[i];
    return NULL;
}
static void l_auth(void *ud, kn_conn_id id) {}
static bool l_violation(void *ud, kn_conn_id id)
{
    return false;
}
static bool l_overloaded(void *ud)
{
    return false;
}

static int sink(void *ud, const kn_conn_id *to, size_t n, uint8_t channel, const uint8_t *data,
                size_t len, bool reliable)
{
    tracker_sends++;
    return KN_OK;
}

static kn_out *out;
static kn_sessions *ss;
static kn_tracker *tracker;
static kn_parties *parties;

static void bind(const char *user, const char *username, const char *session)
{
    kn_conn_id id = ((kn_conn_id)3 << 32) | (n_conns + 1);
    kn_session *s = kn_sessions_open(ss, id, "127.0.0.1:9", 0x0100007f);
    assert_non_null(s);
    kn_token_claims c = {.expires_at = kn_time_wall_ms() / 1000 + 3600};
    snprintf(c.user_id, sizeof c.user_id, "%s", user);
    snprintf(c.username, sizeof c.username, "%s", username);
    snprintf(c.session_id, sizeof c.session_id, "%s", session);
    char msg[64];
    assert_int_equal(kn_sessions_bind(ss, s, &c, false, kn_time_mono_ms(), msg, sizeof msg), KN_OK);
    ids[n_conns] = id;
    sessions[n_conns++] = s;
}

static int setup(void **state)
{
    n_conns = tracker_sends = 0;
    assert_int_equal(kn_out_create(1, &out), KN_OK);
    kn_out_lane l = {l_send, l_close,     l_post,       l_here, l_data,
                     l_auth, l_violation, l_overloaded, NULL,   NULL};
    kn_out_attach_lane(out, 0, &l);
    assert_int_equal(kn_sessions_create(out, &ss), KN_OK);
    kn_out_directory dir = kn_sessions_directory(ss);
    kn_out_set_directory(out, &dir);
    kn_tracker_config cfg;
    kn_tracker_config_default(&cfg);
    kn_tracker_sink ts = {sink, NULL};
    assert_int_equal(kn_tracker_create(&cfg, &ts, &tracker), KN_OK);
    assert_int_equal(kn_parties_create(tracker, NULL, &parties), KN_OK);
    bind(U1, "alice", S1);
    bind(U2, "bob", S2);
    return luatest_setup(state);
}

static int teardown(void **state)
{
    for (size_t i = 0; i < n_conns; i++)
        kn_sessions_close(ss, sessions[i]);
    kn_parties_destroy(parties);
    kn_tracker_destroy(tracker);
    kn_sessions_destroy(ss);
    kn_out_destroy(out);
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
    kn_party_lua party_lua = {parties, ss};
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
    assert_true(tracker_sends > 0); /* the joins and leaves reached the members */
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
