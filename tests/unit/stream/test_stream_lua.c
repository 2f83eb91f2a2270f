/* The stream and status functions of `kaos` (stream_lua.c, status_lua.c),
 * registered as the runtime's "streams" and "status" bindings over a real
 * tracker (its sink records the sends), a real status service and a real
 * session registry with two bound sessions on a fake network lane: joins,
 * updates, leaves, kicks, listings, gets, counts, sends and closes of a
 * script stream; the input errors of both bindings as {code, message}
 * (bad stream tables, mode 5 refused, "session not found", a session not
 * on the stream, bad statuses and ids); status updates reaching a
 * follower. status_follow's success needs Postgres: tests/e2e/test_status.c. */
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_out.h"
#include "kn_session.h"
#include "kn_status.h"
#include "kn_status_lua.h"
#include "kn_stream.h"
#include "kn_stream_lua.h"
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

/* --- sessions on a fake lane, a counting tracker, the status service ---------------- */

static sessionlane L;
static kn_status *status;

static int setup(void **state)
{
    sessionlane_open(&L, true);
    assert_int_equal(kn_status_create(L.tracker, &status), KN_OK);
    sessionlane_bind(&L, U1, "alice", S1);
    sessionlane_bind(&L, U2, "bob", S2);
    return luatest_setup(state);
}

static int teardown(void **state)
{
    kn_status_destroy(status);
    sessionlane_close(&L);
    return luatest_teardown(state);
}

/* The module: "case" runs one named case and returns what it saw; errors
 * come back as "<code> <message>". */
static const char module[] = LUATEST_PRELUDE
    "local U1, S1, U2, S2 = '" U1 "', '" S1 "', '" U2 "', '" S2 "'\n"
    "local room = { mode = 8, subject = 'room', label = 'lobby' }\n"
    "local function names(list)\n"
    "  local t = {}\n"
    "  for _, p in ipairs(list) do t[#t + 1] = p.username .. (p.hidden and '(h)' or '') ..\n"
    "    ':' .. (p.status or '') end\n"
    "  table.sort(t)\n"
    "  return table.concat(t, ',')\n"
    "end\n"
    "local cases = {\n"
    "  lifecycle = function()\n"
    "    local r = {}\n"
    "    r[#r + 1] = tostring(kaos.stream_user_join(U1, S1, room, false, true, 'hi'))\n"
    "    r[#r + 1] = tostring(kaos.stream_user_join(U1, S1, room))\n"
    "    r[#r + 1] = tostring(kaos.stream_user_join(U2, S2, room, true))\n"
    "    r[#r + 1] = kaos.stream_count(room)\n"
    "    r[#r + 1] = names(kaos.stream_user_list(room))\n"
    "    r[#r + 1] = names(kaos.stream_user_list(room, false))\n"
    "    r[#r + 1] = names(kaos.stream_user_list(room, true, false))\n"
    "    kaos.stream_user_update(U1, S1, room, false, 'busy')\n"
    "    local p = kaos.stream_user_get(U1, S1, room)\n"
    "    r[#r + 1] = p.username .. ':' .. p.status .. ':' .. tostring(p.persistence)\n"
    "    r[#r + 1] = tostring(kaos.stream_user_get(U2, S1, room))\n"
    "    kaos.stream_send(room, 'data')\n"
    "    kaos.stream_send(room, 'one', { { user_id = U2, session_id = S2 } }, false)\n"
    "    kaos.stream_user_leave(U2, S2, room)\n"
    "    kaos.stream_user_leave(U2, S2, room)\n"
    "    r[#r + 1] = kaos.stream_count(room)\n"
    "    kaos.stream_user_kick({ user_id = U1, session_id = S1 }, room)\n"
    "    r[#r + 1] = kaos.stream_count(room)\n"
    "    kaos.stream_user_join(U1, S1, room)\n"
    "    kaos.stream_user_join(U2, S2, room)\n"
    "    r[#r + 1] = kaos.stream_close(room)\n"
    "    r[#r + 1] = kaos.stream_count(room)\n"
    "    return table.concat(r, ' ')\n"
    "  end,\n"
    "  empty = function()\n"
    "    local s = { mode = 9, subject = 'nobody' }\n"
    "    return kaos.stream_count(s) .. ' ' .. #kaos.stream_user_list(s) .. ' ' ..\n"
    "      kaos.stream_close(s) .. ' ' .. tostring(kaos.stream_user_get(U1, S1, s))\n"
    "  end,\n"
    "  send_empty = function() return outcome(kaos.stream_send, { mode = 9 }, 'x') end,\n"
    "  mode_big = function() return outcome(kaos.stream_count, { mode = 16 }) end,\n"
    "  mode_neg = function() return outcome(kaos.stream_count, { mode = -1 }) end,\n"
    "  mode_text = function() return outcome(kaos.stream_user_list, { mode = 'x' }) end,\n"
    "  mode_none = function() return outcome(kaos.stream_send, { subject = 'a' }, 'x') end,\n"
    "  subject_long = function()\n"
    "    return outcome(kaos.stream_count, { mode = 8, subject = string.rep('s', 37) }) end,\n"
    "  subcontext_long = function()\n"
    "    return outcome(kaos.stream_count, { mode = 8, subcontext = string.rep('s', 37) }) end,\n"
    "  label_long = function()\n"
    "    return outcome(kaos.stream_count, { mode = 8, label = string.rep('l', 65) }) end,\n"
    "  subject_table = function() return outcome(kaos.stream_count, { mode = 8, subject = {} }) "
    "end,\n"
    "  not_table = function() return outcome(kaos.stream_count, 'room') end,\n"
    "  relayed_join = function()\n"
    "    return outcome(kaos.stream_user_join, U1, S1, { mode = 5, subject = 'm' }) end,\n"
    "  relayed_leave = function()\n"
    "    return outcome(kaos.stream_user_leave, U1, S1, { mode = 5, subject = 'm' }) end,\n"
    "  relayed_close = function() return outcome(kaos.stream_close, { mode = 5 }) end,\n"
    "  relayed_count = function() return outcome(kaos.stream_count, { mode = 5 }) end,\n"
    "  no_session = function() return outcome(kaos.stream_user_join, U1, S2, room) end,\n"
    "  no_user = function() return outcome(kaos.stream_user_leave, 'x', S1, room) end,\n"
    "  long_id = function()\n"
    "    return outcome(kaos.stream_user_join, string.rep('u', 37), S1, room) end,\n"
    "  kick_nobody = function()\n"
    "    return outcome(kaos.stream_user_kick, { user_id = U2, session_id = S1 }, room) end,\n"
    "  not_on = function() return outcome(kaos.stream_user_update, U1, S1, room, false, 's') end,\n"
    "  status_long = function()\n"
    "    kaos.stream_user_join(U1, S1, room)\n"
    "    local r = outcome(kaos.stream_user_update, U1, S1, room, false, string.rep('x', 2049))\n"
    "    kaos.stream_user_leave(U1, S1, room)\n"
    "    return r\n"
    "  end,\n"
    "  bad_presence = function() return outcome(kaos.stream_send, room, 'x', { { user_id = 1 } })\n"
    "  end,\n"
    "  st_update = function()\n"
    "    local r = outcome(kaos.status_update, U1, S1, 'playing')\n"
    "    r = r .. ' ' .. outcome(kaos.presence_update, U1, S1, 'away')\n"
    "    r = r .. ' ' .. names(kaos.stream_user_list({ mode = 1, subject = U1 }))\n"
    "    r = r .. ' ' .. outcome(kaos.status_update, U1, S1, nil)\n"
    "    return r .. ' ' .. kaos.stream_count({ mode = 1, subject = U1 })\n"
    "  end,\n"
    "  st_bad_utf8 = function() return outcome(kaos.status_update, U1, S1, 'bad \\255') end,\n"
    "  st_control = function() return outcome(kaos.status_update, U1, S1, 'a\\nb') end,\n"
    "  st_no_session = function() return outcome(kaos.status_update, U2, S1, 'x') end,\n"
    "  st_unfollow_bad = function() return outcome(kaos.status_unfollow, U1, S1, { 'x' }) end,\n"
    "  st_unfollow_ok = function() return outcome(kaos.status_unfollow, U1, S1, { U2 }) end,\n"
    "  st_follow_no_session = function()\n"
    "    return outcome(kaos.status_follow, U1, S2, { U2 }) end,\n"
    "  st_follow_bad = function() return outcome(kaos.status_follow, U1, S1, { 'x' }) end,\n"
    "  st_follow_many = function()\n"
    "    local many = {}\n"
    "    for i = 1, 101 do many[i] = 'name' .. i end\n"
    "    return outcome(kaos.status_follow, U1, S1, nil, many)\n"
    "  end,\n"
    "}\n"
    "kaos.register_rpc(function(ctx, p)\n"
    "  local ok, r = pcall(cases[p])\n"
    "  if ok then return r end\n"
    "  return 'raised: ' .. (type(r) == 'table' and r.code .. ' ' .. r.message or tostring(r))\n"
    "end, 'case')\n";

static void stream_and_status_functions_act_on_bound_sessions_and_refuse_bad_input(void **state)
{
    (void)state;
    luatest_write("streams.lua", module);
    kn_stream_lua stream_lua = {L.tracker, L.ss, L.out};
    kn_status_lua status_lua = {status, L.ss};
    const kn_lua_binding bindings[] = {
        {"streams", kn_stream_lua_funcs, &stream_lua},
        {"status", kn_status_lua_funcs, &status_lua},
    };
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, bindings, 2);

    /* alice joins (a visible presence: nobody to tell yet), bob joins hidden
     * (nobody hears), the data reaches both, the targeted data bob alone. */
    static const luatest_case cases[] = {
        {"lifecycle",
         "true false true 2 alice:hi,bob(h): alice:hi bob(h): alice:busy:true nil 1 0 2 0"},
        {"empty", "0 0 0 nil"},
        {"send_empty", "ok"},
        {"mode_big", "3 stream mode must be an integer 0-15"},
        {"mode_neg", "3 stream mode must be an integer 0-15"},
        {"mode_text", "3 stream mode must be an integer 0-15"},
        {"mode_none", "3 stream mode must be an integer 0-15"},
        {"subject_long", "3 stream subject must be at most 36 bytes"},
        {"subcontext_long", "3 stream subcontext must be at most 36 bytes"},
        {"label_long", "3 stream label must be at most 64 bytes"},
        {"subject_table", "3 stream subject must be a string"},
        {"relayed_join", "3 streams of mode 5 are relayed matches: join them with a MatchJoin"},
        {"relayed_leave", "3 streams of mode 5 are relayed matches: join them with a MatchJoin"},
        {"relayed_close", "3 streams of mode 5 are relayed matches: join them with a MatchJoin"},
        {"relayed_count", "ok"},
        {"no_session", "5 session not found"},
        {"no_user", "5 session not found"},
        {"long_id", "5 session not found"},
        {"kick_nobody", "5 session not found"},
        {"not_on", "5 session is not on this stream"},
        {"status_long", "3 status must be at most 2048 bytes"},
        {"bad_presence", "3 presences must have user_id and session_id strings"},
        {"st_update", "ok ok alice:away ok 0"},
        {"st_bad_utf8", "3 status must be at most 2048 bytes of UTF-8 without control characters"},
        {"st_control", "3 status must be at most 2048 bytes of UTF-8 without control characters"},
        {"st_no_session", "5 session not found"},
        {"st_unfollow_bad", "3 id 0 is not a UUID"},
        {"st_unfollow_ok", "ok"},
        {"st_follow_no_session", "5 session not found"},
        {"st_follow_bad", "3 id 0 is not a UUID"},
        {"st_follow_many", "3 at most 100 ids and 100 usernames per call"},
    };
    luatest_expect(vm, cases, 1);
    /* lifecycle: bob's hidden join and both leaves... see the counts. */
    assert_int_equal(L.lane_sends, 1); /* the data for bob alone went through kn_out */
    size_t sends_after_lifecycle = L.tracker_sends;
    assert_true(sends_after_lifecycle >= 2);
    luatest_expect(vm, cases + 1, sizeof cases / sizeof cases[0] - 1);

    /* status_follow reads Postgres: without a database it says so. */
    char msg[256];
    int rc;
    char *res = luatest_call(vm, "case", "st_follow_bad", &rc, msg);
    assert_non_null(res);
    assert_non_null(strstr(res, "kaos.status_follow is not available in rpc"));
    kn_free(res);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

/* A published status reaches the session that follows it, through the
 * tracker, from Lua; the follower's session ending is heard by nobody. */
static void a_status_from_lua_reaches_a_follower(void **state)
{
    (void)state;
    luatest_write("st.lua", "local kaos = require('kaos')\n"
                            "kaos.register_rpc(function(ctx, p)\n"
                            "  kaos.status_update('" U1 "', '" S1 "', p)\n"
                            "  return 'ok'\n"
                            "end, 'case')\n");
    kn_status_lua status_lua = {status, L.ss};
    const kn_lua_binding binding = {"status", kn_status_lua_funcs, &status_lua};
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    kn_presence bob = {.conn = L.ids[1]};
    snprintf(bob.user_id, sizeof bob.user_id, U2);
    snprintf(bob.session_id, sizeof bob.session_id, S2);
    kn_status_user alice = U1;
    kn_presence *online = NULL;
    size_t n = 0;
    char msg[256];
    assert_int_equal(kn_status_follow(status, &bob, &alice, 1, &online, &n, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 0);
    static const luatest_case cases[] = {{"playing", "ok"}};
    luatest_expect(vm, cases, 1);
    assert_int_equal(L.tracker_sends, 1);
    assert_int_equal(L.tracker_recips, 1);
    assert_int_equal(kn_status_follow(status, &bob, &alice, 1, &online, &n, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 1);
    assert_string_equal(online[0].status, "playing");
    assert_string_equal(online[0].username, "alice");
    kn_free(online);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            stream_and_status_functions_act_on_bound_sessions_and_refuse_bad_input, setup,
            teardown),
        cmocka_unit_test_setup_teardown(a_status_from_lua_reaches_a_follower, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
