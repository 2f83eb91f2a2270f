/* The friends service's kaos.* functions (friends_lua.c), registered as the
 * runtime's "friends" binding: where they refuse, and that input errors are
 * raised as {code, message} before any query. The database is never
 * reached here; tests/e2e/test_friends.c runs the functions against
 * Postgres through an RPC. */
#include "kn_error.h"
#include "kn_friends_lua.h"
#include "kn_mem.h"
#include "kn_runtime.h"
#include "luatest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#define ME "a11ce000-0000-4000-8000-000000000001"

static void friends_functions_raise_input_errors_as_code_and_message(void **state)
{
    (void)state;
    luatest_write(
        "friends.lua", LUATEST_PRELUDE
        "local ME = '" ME "'\n"
        "local many = {}\n"
        "for i = 1, 101 do many[i] = 'u' .. i end\n"
        "local cases = {\n"
        "  self = function() return outcome(kaos.friends_add, ME, { ME }) end,\n"
        "  bad_id = function() return outcome(kaos.friends_block, ME, { 'x' }) end,\n"
        "  bad_user = function() return outcome(kaos.friends_delete, 'x', { ME }) end,\n"
        "  remove_user = function() return outcome(kaos.friends_remove, 'x', { ME }) end,\n"
        "  not_string = function() return outcome(kaos.friends_add, ME, { 5 }) end,\n"
        "  many = function() return outcome(kaos.friends_add, ME, nil, many) end,\n"
        "  space = function() return outcome(kaos.friends_add, ME, nil, { 'a b' }) end,\n"
        "  limit = function() return outcome(kaos.friends_list, ME, 1001) end,\n"
        "  state = function() return outcome(kaos.friends_list, ME, 10, 4) end,\n"
        "  cursor = function() return outcome(kaos.friends_list, ME, 10, -1, '!') end,\n"
        "  arg_type = function() return outcome(kaos.friends_add, ME, 'x') end,\n"
        "  meta_id = function()\n"
        "    return outcome(kaos.friend_metadata_update, ME, 'x', {}) end,\n"
        "  meta_type = function()\n"
        "    return outcome(kaos.friend_metadata_update, ME, ME, 'x') end,\n"
        "  meta_keys = function()\n"
        "    return outcome(kaos.friends_add, ME, { ME }, nil, { [true] = 1 }) end,\n"
        "  fof_limit = function()\n"
        "    return outcome(kaos.friends_of_friends_list, ME, 1001) end,\n"
        "  fof_cursor = function()\n"
        "    return outcome(kaos.friends_of_friends_list, ME, 10, '!') end,\n"
        "  fof_user = function() return outcome(kaos.friends_of_friends_list, 'x') end,\n"
        "}\n"
        "kaos.register_rpc(function(ctx, p) return cases[p]() end, 'case')\n");
    kn_runtime *rt;
    const kn_lua_binding binding = {"friends", kn_friends_lua_funcs, NULL};
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    char msg[256];
    int rc;
    char *out = luatest_call(vm, "case", "self", &rc, msg); /* ctx has no services */
    assert_non_null(strstr(out, "kaos.friends_add is not available in rpc"));
    kn_free(out);

    static const luatest_case cases[] = {
        {"self", "3 you cannot befriend, delete or block yourself"},
        {"bad_id", "3 id 0 is not a UUID"},
        {"bad_user", "3 user id must be a UUID"},
        {"remove_user", "3 user id must be a UUID"}, /* friends_remove is friends_delete */
        {"not_string", "3 ids must be a list of strings"},
        {"many", "3 at most 100 ids and 100 usernames per call"},
        {"limit", "3 limit must be 1-1000, not 1001"},
        {"state", "3 state must be -1 (all), 0, 1, 2 or 3, not 4"},
        {"cursor", "3 cursor is not valid"},
        {"meta_id", "3 friend id must be a UUID"},
        {"fof_limit", "3 limit must be 1-1000, not 1001"},
        {"fof_cursor", "3 cursor is not valid"},
        {"fof_user", "3 user id must be a UUID"},
    };
    luatest_expect(vm, cases, sizeof cases / sizeof cases[0]);
    out = luatest_call_db(vm, NULL, "case", "space", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_true(!strncmp(out, "3 ", 2)); /* the login rules' message */
    kn_free(out);
    /* A wrong type of a plain argument is a script bug, not a service refusal. */
    out = luatest_call_db(vm, NULL, "case", "arg_type", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "lua: "));
    assert_non_null(strstr(out, "table expected, got string"));
    kn_free(out);
    out = luatest_call_db(vm, NULL, "case", "meta_type", &rc, msg);
    assert_non_null(strstr(out, "lua: "));
    kn_free(out);
    /* Metadata Lua cannot encode is refused before the add runs. */
    out = luatest_call_db(vm, NULL, "case", "meta_keys", &rc, msg);
    assert_true(!strncmp(out, "3 metadata: ", 12));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(friends_functions_raise_input_errors_as_code_and_message,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
