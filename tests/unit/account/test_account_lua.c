/* The account service's kaos.* functions (account_lua.c), registered as
 * the runtime's "account" binding: where they may run, and that they raise
 * the service's refusals as {code, message}. The database is never reached
 * here; tests/e2e/test_account.c covers the functions against Postgres. */
#include "kn_account_lua.h"
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

static int dummy_auth; /* never dereferenced: no input here reaches a login */
static kn_account_lua deps = {(const kn_auth *)&dummy_auth, NULL, NULL};
static const kn_lua_binding binding = {"account", kn_account_lua_funcs, &deps};

/* The account functions need the services of a worker call: without them
 * they say where they were called; with them, a service refusal is raised
 * as a {code, message} table a script can pcall. Only input the services
 * refuse before any query is used here (the database handle is never
 * touched); tests/e2e/test_account.c covers the real thing. */
static void account_functions_raise_service_errors_and_need_a_database(void **state)
{
    luatest_write(
        "acct.lua",
        "local kaos = require('kaos')\n"
        "kaos.register_rpc(function(ctx, p)\n"
        "  local ok, e = pcall(kaos.account_get_id, p)\n"
        "  if type(e) == 'table' then return e.code .. ' ' .. e.message end\n"
        "  return tostring(e)\n"
        "end, 'get')\n"
        "kaos.register_rpc(function(ctx, p)\n"
        "  local ok, e = pcall(kaos.account_update_id, '8f4d52c7-bf28-4fcf-8af2-1d4fcf685592',\n"
        "                      { nickname = 'x' })\n"
        "  return e.code .. ' ' .. e.message\n"
        "end, 'update')\n"
        "kaos.register_rpc(function(ctx, p)\n"
        "  kaos.session_logout('me')\n"
        "end, 'logout')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    char msg[256];
    int rc;
    char *out = luatest_call(vm, "get", "not-a-uuid", &rc, msg); /* ctx has no services */
    assert_non_null(strstr(out, "kaos.account_get_id is not available in rpc"));
    kn_free(out);

    out = luatest_call_db(vm, NULL, "get", "not-a-uuid", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "3 user id must be a UUID");
    kn_free(out);
    out = luatest_call_db(vm, NULL, "update", "", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "3 unknown account field \"nickname\"");
    kn_free(out);
    /* Uncaught, the table's code and message reach the caller. */
    out = luatest_call_db(vm, NULL, "logout", "", &rc, msg);
    assert_int_equal(rc, KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "user id must be a UUID");
    assert_null(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);

    /* run_once and module loading have no database. */
    luatest_write("zz_once.lua",
                  "require('kaos').run_once(function() require('kaos').users_ban_id({}) end)\n");
    kn_runtime_config cfg = {
        .path = luatest_dir(), .run_once = true, .bindings = &binding, .n_bindings = 1};
    char err[512] = "";
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "kaos.users_ban_id is not available in run_once"));
    luatest_write("zz_once.lua", "require('kaos').account_delete_id('x')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(
        strstr(err, "zz_once.lua:1: kaos.account_delete_id is not available in module loading"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(account_functions_raise_service_errors_and_need_a_database,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
