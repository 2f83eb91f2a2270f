/* The chat service's kaos.* functions (chat_lua.c), registered as the
 * runtime's "chat" binding over a real kn_chat on a tracker: channel ids
 * built from scripts, and that input errors are raised as {code, message}
 * before any query. The database is never reached here;
 * tests/e2e/test_chat.c runs the functions against Postgres through an
 * RPC. */
#include "kn_chat.h"
#include "kn_chat_lua.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_runtime.h"
#include "luatest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#define ME    "a11ce000-0000-4000-8000-000000000001"
#define OTHER "0b0b0000-0000-4000-8000-000000000002"

static int no_send(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel,
                   const uint8_t *data, size_t len, bool reliable)
{
    (void)ud, (void)conns, (void)n, (void)channel, (void)data, (void)len, (void)reliable;
    return KN_OK;
}

static void chat_functions_build_ids_and_raise_input_errors(void **state)
{
    (void)state;
    luatest_write(
        "chat.lua",
        "local kaos = require('kaos')\n"
        "local function outcome(f, ...)\n"
        "  local ok, e = pcall(f, ...)\n"
        "  if ok then return tostring(e) end\n"
        "  if type(e) == 'table' then return e.code .. ' ' .. e.message end\n"
        "  return 'lua: ' .. tostring(e)\n"
        "end\n"
        "local ROOM = '2...lobby'\n"
        "local cases = {\n"
        "  room = function() return outcome(kaos.channel_id_build, nil, 'lobby', 1) end,\n"
        "  dm = function() return outcome(kaos.channel_id_build, '" ME "', '" OTHER "', 2) end,\n"
        "  dm_back = function() return outcome(kaos.channel_id_build, '" OTHER "', '" ME
        "', 2) end,\n"
        "  group = function() return outcome(kaos.channel_id_build, nil, '" OTHER "', 3) end,\n"
        "  bad_type = function() return outcome(kaos.channel_id_build, nil, 'x', 9) end,\n"
        "  bad_room = function() return outcome(kaos.channel_id_build, nil, '', 1) end,\n"
        "  dm_self = function() return outcome(kaos.channel_id_build, '" ME "', '" ME "', 2) end,\n"
        "  content = function() return outcome(kaos.channel_message_send, ROOM, { 1, 2 }) end,\n"
        "  content_text = function() return outcome(kaos.channel_message_send, ROOM, '[]') end,\n"
        "  channel = function() return outcome(kaos.channel_message_send, 'x', {}) end,\n"
        "  sender = function() return outcome(kaos.channel_message_send, ROOM, {}, 'x') end,\n"
        "  update_id = function() return outcome(kaos.channel_message_update, ROOM, 'x', {}) end,\n"
        "  remove_id = function() return outcome(kaos.channel_message_remove, ROOM, 'x') end,\n"
        "  limit = function() return outcome(kaos.channel_messages_list, ROOM, 101) end,\n"
        "  cursor = function() return outcome(kaos.channel_messages_list, ROOM, 10, true, '!') "
        "end,\n"
        "  list_channel = function() return outcome(kaos.channel_messages_list, '2..') end,\n"
        "  arg_type = function() return outcome(kaos.channel_message_send, ROOM, 5) end,\n"
        "}\n"
        "kaos.register_rpc(function(ctx, p) return cases[p]() end, 'case')\n");
    kn_tracker_config tc;
    kn_tracker_config_default(&tc);
    kn_tracker_sink sink = {no_send, NULL};
    kn_tracker *t;
    kn_chat *chat;
    kn_chat_config cc;
    kn_chat_config_default(&cc);
    assert_int_equal(kn_tracker_create(&tc, &sink, &t), KN_OK);
    assert_int_equal(kn_chat_create(&cc, t, NULL, &chat), KN_OK);
    kn_chat_lua ud = {NULL};
    kn_runtime *rt;
    const kn_lua_binding binding = {"chat", kn_chat_lua_funcs, &ud};
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    char msg[256];
    int rc;
    /* before the root fills the ud: refused */
    char *out = luatest_call_db(vm, NULL, "case", "content", &rc, msg);
    assert_non_null(strstr(out, "14 kaos.channel_message_send is not available yet"));
    kn_free(out);
    ud.chat = chat;
    out = luatest_call(vm, "case", "content", &rc, msg); /* ctx has no database */
    assert_non_null(strstr(out, "kaos.channel_message_send is not available in rpc"));
    kn_free(out);

    static const luatest_case cases[] = {
        {"room", "2...lobby"},
        {"dm", "4." OTHER "." ME "."},
        {"dm_back", "4." OTHER "." ME "."},
        {"group", "3." OTHER ".."},
        {"bad_type", "3 channel type must be 1 (room), 2 (direct message) or 3 (group)"},
        {"bad_room", "3 room name must be 1-64 bytes of UTF-8 without control characters"},
        {"dm_self", "3 a direct message channel needs another user"},
        {"content", "3 content must be a JSON object"},
        {"content_text", "3 content must be a JSON object"},
        {"channel", "3 channel id is not valid"},
        {"sender", "3 sender id must be a UUID or empty"},
        {"update_id", "3 message id must be a UUID"},
        {"remove_id", "3 message id must be a UUID"},
        {"limit", "3 limit must be 1-100"},
        {"cursor", "3 cursor is not valid"},
        {"list_channel", "3 channel id is not valid"},
    };
    luatest_expect(vm, cases, sizeof cases / sizeof cases[0]);
    /* A wrong type of a plain argument is a script bug, not a service refusal. */
    out = luatest_call_db(vm, NULL, "case", "arg_type", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "lua: "));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
    kn_chat_destroy(chat);
    kn_tracker_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(chat_functions_build_ids_and_raise_input_errors,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
