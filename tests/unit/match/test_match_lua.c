/* The match module's kaos.* functions (match_lua.c), registered as the
 * runtime's "match" binding: where they refuse. Without an engine they say
 * so, and while modules load they refuse even with one, since a match made
 * at a module's top level would be made again by every VM that loads the
 * module (match VMs included). The engine is never reached here;
 * tests/e2e/test_authoritative.c covers the functions with a real one. */
#include "kn_error.h"
#include "kn_match_lua.h"
#include "kn_mem.h"
#include "kn_runtime.h"
#include "luatest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void match_functions_need_an_engine_and_refuse_while_modules_load(void **state)
{
    kn_match_engine *engine = NULL; /* what the root fills once the engine exists */
    const kn_lua_binding binding = {"match", kn_match_lua_funcs, &engine};
    luatest_write("m.lua", "local kaos = require('kaos')\n"
                           "kaos.register_rpc(function(ctx, p)\n"
                           "  local ok, e = pcall(kaos[p], 'handler')\n"
                           "  return tostring(ok) .. ' ' .. tostring(e)\n"
                           "end, 'try')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    const char *fns[] = {"match_create", "match_list", "match_signal"};
    char msg[256];
    int rc;
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        char *out = luatest_call(vm, "try", fns[i], &rc, msg);
        assert_int_equal(rc, KN_OK);
        assert_non_null(strstr(out, "false "));
        if (!strstr(out, "no match engine here")) fail_msg("%s: got \"%s\"", fns[i], out);
        kn_free(out);
    }
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);

    /* An engine pointer that must never be used: module loading refuses
     * before looking at it. */
    engine = (kn_match_engine *)&engine;
    luatest_write("m.lua", "require('kaos').match_create('handler')\n");
    kn_runtime_config cfg = {.path = luatest_dir(), .bindings = &binding, .n_bindings = 1};
    char err[512] = "";
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    if (!strstr(err, "m.lua:1: match_create: no match engine here")) fail_msg("got \"%s\"", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            match_functions_need_an_engine_and_refuse_while_modules_load, luatest_setup,
            luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
