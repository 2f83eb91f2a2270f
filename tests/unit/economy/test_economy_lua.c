/* The economy service's kaos.* functions (economy_lua.c), registered as
 * the runtime's "economy" binding: input checks raised as {code, message}
 * before any query. The database is never reached here;
 * tests/e2e/test_economy.c covers the functions against Postgres. */
#include "kn_economy_lua.h"
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

#define U "a11ce000-0000-4000-8000-000000000001"

static void economy_functions_raise_input_errors_as_code_and_message(void **state)
{
    (void)state;
    luatest_write(
        "eco.lua", LUATEST_PRELUDE
        "local U = '" U "'\n"
        "local cases = {\n"
        "  real = function() return outcome(kaos.wallet_update, U, {coins = 1.5}) end,\n"
        "  text = function() return outcome(kaos.wallet_update, U, {coins = '1'}) end,\n"
        "  array = function() return outcome(kaos.wallet_update, U, {1, 2}) end,\n"
        "  missing = function() return outcome(kaos.wallet_update, U, nil) end,\n"
        "  number = function() return outcome(kaos.wallet_update, U, 7) end,\n"
        "  user = function() return outcome(kaos.wallet_update, 'x', {coins = 1}) end,\n"
        "  meta = function() return outcome(kaos.wallet_update, U, {}, {1}) end,\n"
        "  batch = function() return outcome(kaos.wallets_update, { {user_id = U, changeset = {}}, "
        "5 }) end,\n"
        "  many = function()\n"
        "    local b = {}\n"
        "    for i = 1, 101 do b[i] = {user_id = U, changeset = {}} end\n"
        "    return outcome(kaos.wallets_update, b)\n"
        "  end,\n"
        "  limit = function() return outcome(kaos.wallet_ledger_list, U, 0) end,\n"
        "  cursor = function() return outcome(kaos.wallet_ledger_list, U, 10, '!!') end,\n"
        "  entry = function() return outcome(kaos.wallet_ledger_update, 'x', {}) end,\n"
        "  multi_field = function()\n"
        "    return outcome(kaos.multi_update, { {user_id = U, lang_tag = 5} }, nil, nil, nil)\n"
        "  end,\n"
        "  multi_many = function()\n"
        "    local w = {}\n"
        "    for i = 1, 101 do w[i] = {collection = 'c', key = 'k' .. i, value = {}} end\n"
        "    return outcome(kaos.multi_update, nil, w, nil, nil)\n"
        "  end,\n"
        "}\n"
        "kaos.register_rpc(function(ctx, p) return cases[p]() end, 'case')\n");
    kn_runtime *rt;
    const kn_lua_binding binding = {"economy", kn_economy_lua_funcs, NULL};
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    char msg[256];
    int rc;
    char *out = luatest_call(vm, "case", "real", &rc, msg); /* ctx has no services */
    assert_non_null(strstr(out, "kaos.wallet_update is not available in rpc"));
    kn_free(out);

    static const luatest_case cases[] = {
        {"real", "3 wallet update 0: the change of \"coins\" must be an integer"},
        {"text", "3 wallet update 0: the change of \"coins\" must be an integer"},
        {"array", "3 wallet update 0: changeset must be a JSON object"},
        {"missing", "3 wallet update 0: changeset is missing"},
        {"number", "3 wallet update 0: changeset must be a table, not a number"},
        {"user", "3 wallet update 0: user_id is not a UUID"},
        {"meta", "3 wallet update 0: metadata must be a JSON object"},
        {"batch", "3 wallet update 1 must be a table, not a number"},
        {"many", "3 at most 100 wallet updates, not 101"},
        {"limit", "3 limit must be 1-100, not 0"},
        {"cursor", "3 cursor is malformed"},
        {"entry", "3 ledger entry id is not a UUID"},
        {"multi_field", "3 account update 0: lang_tag must be a string, not a number"},
        {"multi_many", "3 at most 100 storage writes, not 101"},
    };
    luatest_expect(vm, cases, sizeof cases / sizeof cases[0]);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(economy_functions_raise_input_errors_as_code_and_message,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
