/* kaos.rpc_call_async (rpc_lua.c, kn_rpc_call_async) with a real API pool
 * against the Postgres named by the PG* environment (the suite runs inside
 * pg_virtualenv) and a worker whose runtime slot loads the same module as
 * the calling VM: a queued RPC runs as the system in mode "async"; a full
 * queue refuses at once with RESOURCE_EXHAUSTED instead of blocking the
 * caller; an unknown or failing RPC is counted as failed; bad arguments,
 * module loading, a missing service and a closed service are refused with
 * their codes. */
#include "apigate.h"
#include "kn_api.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_rpc.h"
#include "kn_rpc_lua.h"
#include "kn_runtime.h"
#include "luatest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static const char *const module = LUATEST_PRELUDE
    "local at_load = outcome(kaos.rpc_call_async, 'system_only')\n"
    "local cases = {\n"
    "  at_load = function() return at_load end,\n"
    "  system = function() return outcome(kaos.rpc_call_async, 'system_only', {a = 1}) end,\n"
    "  unknown = function() return outcome(kaos.rpc_call_async, 'no_such_rpc') end,\n"
    "  boom = function() return outcome(kaos.rpc_call_async, 'boom', 'x') end,\n"
    "  empty_id = function() return outcome(kaos.rpc_call_async, '') end,\n"
    "  long_id = function() return outcome(kaos.rpc_call_async, string.rep('a', 129)) end,\n"
    "  nul_id = function() return outcome(kaos.rpc_call_async, 'a\\0b') end,\n"
    "  big = function() return outcome(kaos.rpc_call_async, 'boom', string.rep('x', 65537)) end,\n"
    "  bad_table = function() return outcome(kaos.rpc_call_async, 'boom', {[true] = 1}) end,\n"
    "  not_string = function() return outcome(kaos.rpc_call_async, 'boom', true) end,\n"
    "}\n"
    "kaos.register_rpc(function(ctx, p) return cases[p]() end, 'case')\n"
    "kaos.register_rpc(function(ctx, p)\n"
    "  if ctx.user_id ~= '' or ctx.session_id ~= '' or ctx.execution_mode ~= 'async'\n"
    "      or p ~= '{\"a\":1}' then\n"
    "    error('not the system: ' .. ctx.user_id .. ' ' .. ctx.execution_mode .. ' ' .. p)\n"
    "  end\n"
    "  return 'fine'\n"
    "end, 'system_only')\n"
    "kaos.register_rpc(function(ctx, p) error({code = 3, message = 'boom'}) end, 'boom')\n";

typedef struct fixture {
    kn_rpc *rpc; /* the binding's ud points here */
    kn_lua_binding binding;
    kn_runtime *rt;
    kn_runtime_vm *vm; /* the caller's (mode "rpc") */
    kn_runtime_host *host;
    kn_runtime_slot *slot; /* the worker's */
    kn_api *api;
} fixture;

static fixture fx;

static int setup(void **state)
{
    luatest_setup(state);
    fx.binding = (kn_lua_binding){"rpc", kn_rpc_lua_funcs, &fx.rpc};
    luatest_write("m.lua", module);
    fx.vm = luatest_load(&fx.rt, &fx.binding, 1);
    kn_runtime_config cfg = {.path = luatest_dir(), .bindings = &fx.binding, .n_bindings = 1};
    kn_runtime *worker_rt;
    char err[512] = "";
    assert_int_equal(kn_runtime_load(&cfg, &worker_rt, err, sizeof err), KN_OK);
    assert_int_equal(kn_runtime_host_create(worker_rt, &fx.host), KN_OK);
    assert_int_equal(kn_runtime_slot_create(fx.host, &fx.slot), KN_OK);
    void *ctx[] = {fx.slot};
    kn_api_config ac = {.workers = 1, .queue_size = 2, .database_url = "", .worker_ctx = ctx};
    assert_int_equal(kn_api_create(&ac, &fx.api), KN_OK);
    kn_runtime_services svc = {0};
    assert_int_equal(kn_rpc_create(fx.api, &svc, &fx.rpc), KN_OK);
    return 0;
}

static int teardown(void **state)
{
    kn_rpc_async_close(fx.rpc);
    kn_api_destroy(fx.api);
    kn_rpc_destroy(fx.rpc);
    kn_runtime_slot_destroy(fx.slot);
    kn_runtime_host_destroy(fx.host);
    kn_runtime_vm_destroy(fx.vm);
    kn_runtime_destroy(fx.rt);
    return luatest_teardown(state);
}

static void drain(void)
{
    while (kn_api_pending(fx.api) > 0)
        usleep(1000);
}

static void expect_case(const char *name, const char *want)
{
    luatest_case c = {name, want};
    luatest_expect(fx.vm, &c, 1);
}

static void a_queued_rpc_runs_as_the_system_in_async_mode(void **state)
{
    (void)state;
    kn_rpc_stats before, after;
    kn_rpc_stats_get(fx.rpc, &before);
    expect_case("system", "ok");
    drain();
    kn_rpc_stats_get(fx.rpc, &after);
    assert_int_equal(after.async_queued, before.async_queued + 1);
    assert_int_equal(after.async_done, before.async_done + 1);
    assert_int_equal(after.async_failed, before.async_failed);
}

static void a_full_api_queue_refuses_at_once_with_resource_exhausted(void **state)
{
    (void)state;
    static apigate g = APIGATE_INIT;
    assert_int_equal(kn_api_submit(fx.api, apigate_job, &g), KN_OK);
    apigate_wait_entered(&g, 1); /* the worker is busy; now fill its queue of 2 */
    assert_int_equal(kn_api_submit(fx.api, apigate_job, &g), KN_OK);
    assert_int_equal(kn_api_submit(fx.api, apigate_job, &g), KN_OK);
    kn_rpc_stats before, after;
    kn_rpc_stats_get(fx.rpc, &before);
    expect_case("system",
                "8 rpc_call_async \"system_only\": the API queue is full; try again later");
    kn_rpc_stats_get(fx.rpc, &after);
    assert_int_equal(after.async_refused, before.async_refused + 1);
    assert_int_equal(after.async_queued, before.async_queued);
    apigate_open(&g);
    drain();
    expect_case("system", "ok"); /* room again */
    drain();
}

static void an_unknown_or_failing_queued_rpc_is_counted_as_failed(void **state)
{
    (void)state;
    kn_rpc_stats before, after;
    kn_rpc_stats_get(fx.rpc, &before);
    expect_case("unknown", "ok"); /* known only when a worker runs it */
    expect_case("boom", "ok");
    drain();
    kn_rpc_stats_get(fx.rpc, &after);
    assert_int_equal(after.async_failed, before.async_failed + 2);
    assert_int_equal(after.async_done, before.async_done);
}

static void bad_arguments_and_module_loading_are_refused(void **state)
{
    (void)state;
    const luatest_case cases[] = {
        {"at_load", "14 rpc_call_async is not available while modules load"},
        {"empty_id", "3 rpc_call_async \"\": rpc id must be 1-128 bytes"},
        {"nul_id", "3 rpc_call_async: rpc id must not contain a NUL byte"},
        {"big", "3 rpc_call_async \"boom\": payload of 65537 bytes is over the limit of 65536"},
        {"bad_table", "3 rpc_call_async: payload: object keys must be strings (or use a sequence)"},
    };
    kn_rpc_stats before, after;
    kn_rpc_stats_get(fx.rpc, &before);
    luatest_expect(fx.vm, cases, sizeof cases / sizeof cases[0]);
    char msg[256];
    int rc;
    char *out = luatest_call_db(fx.vm, NULL, "case", "long_id", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "3 rpc_call_async \"aaaa"));
    assert_non_null(strstr(out, "rpc id must be 1-128 bytes"));
    kn_free(out);
    out = luatest_call_db(fx.vm, NULL, "case", "not_string", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "lua: "));
    kn_free(out);
    kn_rpc_stats_get(fx.rpc, &after);
    assert_int_equal(after.async_queued, before.async_queued);
}

static void without_the_service_or_after_close_calls_are_unavailable(void **state)
{
    (void)state;
    kn_rpc *rpc = fx.rpc;
    fx.rpc = NULL; /* what the binding sees before the root made the service */
    expect_case("system", "14 rpc_call_async: no API workers here");
    fx.rpc = rpc;
    kn_rpc_async_close(fx.rpc);
    expect_case("system", "14 rpc_call_async \"system_only\": server is shutting down");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_queued_rpc_runs_as_the_system_in_async_mode),
        cmocka_unit_test(a_full_api_queue_refuses_at_once_with_resource_exhausted),
        cmocka_unit_test(an_unknown_or_failing_queued_rpc_is_counted_as_failed),
        cmocka_unit_test(bad_arguments_and_module_loading_are_refused),
        cmocka_unit_test(without_the_service_or_after_close_calls_are_unavailable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
