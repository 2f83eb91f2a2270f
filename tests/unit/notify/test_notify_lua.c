/* The notifications service's kaos.* functions (notify_lua.c), registered
 * as the runtime's "notifications" binding: where they refuse, and that
 * input errors are raised as {code, message} before any query. The
 * database is never reached here; tests/e2e/test_notify.c runs the
 * functions against Postgres through an RPC. */
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_notify_lua.h"
#include "kn_runtime.h"
#include "luatest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#define ME "a11ce000-0000-4000-8000-000000000001"

static void notify_functions_raise_input_errors_as_code_and_message(void **state)
{
    (void)state;
    luatest_write(
        "notify.lua", LUATEST_PRELUDE
        "local ME = '" ME "'\n"
        "local many = {}\n"
        "for i = 1, 101 do many[i] = { user_id = ME, subject = 's' } end\n"
        "local cases = {\n"
        "  first = function() return outcome(kaos.notification_send, ME, 's', {}, 1) end,\n"
        "  reserved = function() return outcome(kaos.notification_send, ME, 's', {}, -2) end,\n"
        "  subject = function() return outcome(kaos.notification_send, ME, '', {}, 1) end,\n"
        "  user = function() return outcome(kaos.notification_send, 'x', 's', {}, 1) end,\n"
        "  content = function() return outcome(kaos.notification_send, ME, 's', { 1, 2 }, 1) end,\n"
        "  many = function() return outcome(kaos.notifications_send, many) end,\n"
        "  item = function() return outcome(kaos.notifications_send, { 5 }) end,\n"
        "  batch = function() return outcome(kaos.notifications_send,\n"
        "    { { user_id = ME, subject = 's', code = -3 } }) end,\n"
        "  limit = function() return outcome(kaos.notifications_list, ME, 101) end,\n"
        "  cursor = function() return outcome(kaos.notifications_list, ME, 10, '!') end,\n"
        "  delete_id = function() return outcome(kaos.notifications_delete, ME, { 'x' }) end,\n"
        "  arg_type = function() return outcome(kaos.notifications_delete, ME, 'x') end,\n"
        "  all_reserved = function()\n"
        "    return outcome(kaos.notification_send_all, 's', {}, -1, true) end,\n"
        "  all_subject = function() return outcome(kaos.notification_send_all, '', {}, 1) end,\n"
        "  all_content = function()\n"
        "    return outcome(kaos.notification_send_all, 's', { 1 }, 1) end,\n"
        "}\n"
        "kaos.register_rpc(function(ctx, p) return cases[p]() end, 'case')\n");
    kn_runtime *rt;
    const kn_lua_binding binding = {"notifications", kn_notify_lua_funcs, NULL};
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    char msg[256];
    int rc;
    char *out = luatest_call(vm, "case", "first", &rc, msg); /* ctx has no services */
    assert_non_null(strstr(out, "kaos.notification_send is not available in rpc"));
    kn_free(out);

    static const luatest_case cases[] = {
        {"reserved", "3 notification 0: negative codes are reserved for the system"},
        {"subject", "3 notification 0: subject must be 1-255 bytes"},
        {"user", "3 notification 0: user id must be a UUID"},
        {"content", "3 notification 0: content must be a JSON object"},
        {"many", "3 at most 100 notifications per call"},
        {"item", "3 notification 1 must be a table"},
        {"batch", "3 notification 0: negative codes are reserved for the system"},
        {"limit", "3 limit must be 1-100, not 101"},
        {"cursor", "3 invalid cursor"},
        {"delete_id", "3 id 0 is not a UUID"},
        {"all_reserved", "3 notification 0: negative codes are reserved for the system"},
        {"all_subject", "3 notification 0: subject must be 1-255 bytes"},
        {"all_content", "3 notification 0: content must be a JSON object"},
    };
    luatest_expect(vm, cases, sizeof cases / sizeof cases[0]);
    /* A wrong type of a plain argument is a script bug, not a service refusal. */
    out = luatest_call_db(vm, NULL, "case", "arg_type", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "lua: "));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(notify_functions_raise_input_errors_as_code_and_message,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
