/* The groups service's kaos.* functions (groups_lua.c), registered as the
 * runtime's "groups" binding: where they refuse, and that input errors are
 * raised as {code, message} before any query. The database is never
 * reached here; tests/e2e/test_groups.c runs the functions against
 * Postgres through an RPC. */
#include "kn_error.h"
#include "kn_groups_lua.h"
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
#define GR "a11ce000-0000-4000-8000-000000000002"

static void groups_functions_raise_input_errors_as_code_and_message(void **state)
{
    (void)state;
    luatest_write(
        "groups.lua",
        "local kaos = require('kaos')\n"
        "local function outcome(f, ...)\n"
        "  local ok, e = pcall(f, ...)\n"
        "  if ok then return 'ok' end\n"
        "  if type(e) == 'table' then return e.code .. ' ' .. e.message end\n"
        "  return 'lua: ' .. tostring(e)\n"
        "end\n"
        "local ME, GR = '" ME "', '" GR "'\n"
        "local many = {}\n"
        "for i = 1, 101 do many[i] = ME end\n"
        "local cases = {\n"
        "  noname = function() return outcome(kaos.group_create, ME, {}) end,\n"
        "  max = function() return outcome(kaos.group_create, ME,"
        " {name = 'x', max_count = 10001}) end,\n"
        "  meta = function() return outcome(kaos.group_update, ME, GR,"
        " {metadata = '[]'}) end,\n"
        "  self = function() return outcome(kaos.group_users_kick, ME, GR, { ME }) end,\n"
        "  bad_id = function() return outcome(kaos.group_users_ban, ME, GR, { 'x' }) end,\n"
        "  many = function() return outcome(kaos.group_users_add, "
        "'b1ce0000-0000-4000-8000-000000000001', GR, many) end,\n"
        "  bad_group = function() return outcome(kaos.group_join, ME, 'x') end,\n"
        "  bad_user = function() return outcome(kaos.group_leave, 'x', GR) end,\n"
        "  state = function() return outcome(kaos.group_users_list, GR, 5) end,\n"
        "  limit = function() return outcome(kaos.user_groups_list, ME, -1, 101) end,\n"
        "  cursor = function() return outcome(kaos.groups_list, nil, 10, '!') end,\n"
        "  open = function() return outcome(kaos.groups_list,"
        " {members_min = 5, members_max = 2}) end,\n"
        "  arg_type = function() return outcome(kaos.group_create, ME, 'x') end,\n"
        "}\n"
        "kaos.register_rpc(function(ctx, p) return cases[p]() end, 'case')\n");
    kn_runtime *rt;
    const kn_lua_binding binding = {"groups", kn_groups_lua_funcs, NULL};
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    char msg[256];
    int rc;
    char *out = luatest_call(vm, "case", "self", &rc, msg); /* ctx has no services */
    assert_non_null(strstr(out, "kaos.group_users_kick is not available in rpc"));
    kn_free(out);

    static const luatest_case cases[] = {
        {"noname", "3 a group needs a name"},
        {"max", "3 max_count must be 1-10000 (0: the default), not 10001"},
        {"meta", "3 metadata must be a JSON object"},
        {"self", "3 you cannot kick yourself (use join or leave)"},
        {"bad_id", "3 user id 0 is not a UUID"},
        {"many", "3 name 1-100 user ids to add"},
        {"bad_group", "3 group id must be a UUID"},
        {"bad_user", "3 user id must be a UUID"},
        {"state", "3 state must be -1 (all) or 0-4, not 5"},
        {"limit", "3 limit must be 1-100, not 101"},
        {"cursor", "3 cursor is not valid"},
        {"open", "3 members_min 5 is above members_max 2"},
    };
    luatest_expect(vm, cases, sizeof cases / sizeof cases[0]);
    /* A wrong type of a plain argument is a script bug, not a service refusal. */
    out = luatest_call_db(vm, NULL, "case", "arg_type", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "lua: "));
    assert_non_null(strstr(out, "table expected, got string"));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(groups_functions_raise_input_errors_as_code_and_message,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
