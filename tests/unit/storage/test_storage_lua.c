/* The storage service's kaos.* functions (storage_lua.c), registered as
 * the runtime's "storage" binding: input checks raised as {code, message}
 * before any query. The database is never reached here;
 * tests/e2e/test_storage.c covers the functions against Postgres. */
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_runtime.h"
#include "kn_storage_lua.h"
#include "luatest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* The storage functions act with full rights (caller NULL) but take the
 * same input as the wire: what they or the service refuse before any query
 * is raised as a {code, message} table. The database handle is never
 * touched here; tests/e2e/test_storage.c covers the real thing. */
static void storage_functions_raise_input_errors_as_code_and_message(void **state)
{
    luatest_write(
        "store.lua", LUATEST_PRELUDE
        "local cases = {\n"
        "  array = function() return outcome(kaos.storage_write, nil, 'c', 'k', {1, 2}) end,\n"
        "  text_array = function() return outcome(kaos.storage_write, nil, 'c', 'k', '[1]') end,\n"
        "  fn = function() return outcome(kaos.storage_write, nil, 'c', 'k', print) end,\n"
        "  keys = function() return outcome(kaos.storage_write, nil, 'c', 'k', {[true] = 1}) end,\n"
        "  missing = function() return outcome(kaos.storage_write, nil, 'c', 'k', nil) end,\n"
        "  read3 = function() return outcome(kaos.storage_write, nil, 'c', 'k', {}, nil, 3) end,\n"
        "  bad_user = function() return outcome(kaos.storage_read, 'nope', 'c', 'k') end,\n"
        "  star = function() return outcome(kaos.storage_delete, nil, 'c', 'k', '*') end,\n"
        "  limit = function() return outcome(kaos.storage_list, nil, 'c', 0) end,\n"
        "  cursor = function() return outcome(kaos.storage_list, nil, 'c', 5, '!!') end,\n"
        "  many = function()\n"
        "    local b = {}\n"
        "    for i = 1, 101 do b[i] = { collection = 'c', key = 'k' .. i, value = {} } end\n"
        "    return outcome(kaos.storage_write_batch, b)\n"
        "  end,\n"
        "  not_table = function() return outcome(kaos.storage_read_batch, { {}, 7 }) end,\n"
        "  field = function() return outcome(kaos.storage_delete_batch, { { collection = 5 } }) "
        "end,\n"
        "  perm = function()\n"
        "    return outcome(kaos.storage_write_batch, { { collection = 'c', key = 'k', value = "
        "{},\n"
        "                                                permission_write = 1.5 } })\n"
        "  end,\n"
        "  repeated = function()\n"
        "    return outcome(kaos.storage_write_batch, { { collection = 'c', key = 'k', value = {} "
        "},\n"
        "                                             { collection = 'c', key = 'k', value = '{}' "
        "} })\n"
        "  end,\n"
        "  no_collection = function()\n"
        "    return outcome(kaos.storage_write_batch, { { key = 'k', value = {} } })\n"
        "  end,\n"
        "  arg_type = function() return outcome(kaos.storage_read, nil, {}, 'k') end,\n"
        "  retries = function()\n"
        "    return outcome(kaos.storage_write_retry, nil, 'c', 'k', function() end, 21)\n"
        "  end,\n"
        "  nul_key = function() return outcome(kaos.storage_delete, nil, 'c', 'k\\0x') end,\n"
        "  nul_value = function() return outcome(kaos.storage_write, nil, 'c', 'k', '{}\\0x') "
        "end,\n"
        "  nul_field = function()\n"
        "    return outcome(kaos.storage_read_batch, { { collection = 'c', key = 'a\\0b' } })\n"
        "  end,\n"
        "}\n"
        "kaos.register_rpc(function(ctx, p) return cases[p]() end, 'case')\n");
    kn_runtime *rt;
    const kn_lua_binding binding = {"storage", kn_storage_lua_funcs, NULL};
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    char msg[256];
    int rc;
    char *out = luatest_call(vm, "case", "array", &rc, msg); /* ctx has no services */
    assert_non_null(strstr(out, "kaos.storage_write is not available in rpc"));
    kn_free(out);

    static const luatest_case cases[] = {
        {"array", "3 object 0: value must be a JSON object, not an array"},
        {"text_array", "3 object 0: value must be a JSON object, not an array"},
        {"fn", "3 object 0: value must be a table or JSON text, not a function"},
        {"keys", "3 object 0: value: object keys must be strings (or use a sequence)"},
        {"missing", "3 object 0: value is missing"},
        {"read3", "3 object 0: read permission must be 0 (none), 1 (owner) or 2 (public), not 3"},
        {"bad_user", "3 object 0: user_id is not a UUID"},
        {"star", "3 object 0: version \"*\" means \"absent\"; there is nothing to delete"},
        {"limit", "3 limit must be 1-100, not 0"},
        {"cursor", "3 cursor is malformed"},
        {"many", "3 at most 100 objects per write, not 101"},
        {"not_table", "3 object 1 must be a table, not a number"},
        {"field", "3 object 0: collection must be a string, not a number"},
        {"perm", "3 object 0: permission_write must be an integer"},
        {"repeated", "3 object 1: repeats object 0"},
        {"no_collection", "3 object 0: collection is missing"},
        {"nul_key", "3 object 0: key contains a NUL byte"},
        {"nul_value", "3 object 0: value contains a NUL byte"},
        {"nul_field", "3 object 0: key contains a NUL byte"},
        {"retries", "3 attempts must be 1-20, not 21"},
    };
    luatest_expect(vm, cases, sizeof cases / sizeof cases[0]);
    /* A wrong type of a plain argument is a script bug, not a service refusal. */
    out = luatest_call_db(vm, NULL, "case", "arg_type", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "lua: "));
    assert_non_null(strstr(out, "string expected, got table"));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(storage_functions_raise_input_errors_as_code_and_message,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
