/* End to end: before and after hooks from lua-examples/hooks_example.lua on
 * the real server — a before hook refuses (the client sees its code and
 * message), rewrites a worker request and a net-thread request, and session
 * variables reach the script context. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static e2e_client *connected(void)
{
    return e2e_client_new(e2e_group_server.port, 0, 0);
}

static void a_before_hook_refusal_reaches_the_client_with_its_code(void **state)
{
    e2e_client *c = connected();
    int cid = kaos_client_auth_custom(c->c, "blocked-123456", NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->errors == 1, 5000);
    assert_int_equal(c->error_cid, (uint32_t)cid);
    assert_int_equal(c->error_code, 7);
    assert_string_equal(c->error_message, "this custom id is blocked");
    assert_int_equal(c->sessions, 0);
    /* The same hook lets other ids through to the accounts service. */
    char id[40];
    e2e_device_id(id);
    kaos_client_auth_custom(c->c, id, NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->sessions == 1 || c->errors > 1, 5000);
    assert_int_equal(c->sessions, 1);
    e2e_client_free(c);
}

static void a_before_hook_rewrites_a_worker_request(void **state)
{
    e2e_client *c = connected();
    char dev[40], name[64];
    e2e_device_id(dev);
    snprintf(name, sizeof name, "MiXeD_%s", dev + 4);
    const char *vars[] = {"platform", "test-rig", NULL};
    kaos_client_auth_device(c->c, dev, name, true, vars, e2e_on_session, c);
    E2E_WAIT(c->sessions == 1 || c->errors, 5000);
    assert_int_equal(c->sessions, 1);
    char want[64];
    snprintf(want, sizeof want, "mixed_%s", dev + 4);
    assert_string_equal(c->username, want);
    /* Session variables from authentication are in every call's context. */
    kaos_client_rpc_call(c->c, "echo", "x", e2e_on_rpc, c);
    E2E_WAIT(c->rpcs == 1 || c->errors, 5000);
    assert_non_null(strstr(c->rpc_payload, "\"vars\":{\"platform\":\"test-rig\"}"));
    e2e_client_free(c);
}

static void a_before_hook_rewrites_a_net_thread_request(void **state)
{
    e2e_client *c = connected();
    char dev[40];
    e2e_device_id(dev);
    e2e_auth(c, dev);
    int cid = kaos_client_match_create(c->c, 8, e2e_on_match, c);
    E2E_WAIT(c->matches == 1 || c->errors, 5000);
    assert_int_equal(c->match_cid, (uint32_t)cid);
    assert_int_equal(c->match_max_size, 4); /* the hook capped it */
    kaos_client_match_create(c->c, 2, e2e_on_match, c);
    E2E_WAIT(c->matches == 2 || c->errors, 5000);
    assert_int_equal(c->match_max_size, 2); /* small enough: untouched */
    /* Requests without hooks are unaffected, and ordering with them holds. */
    kaos_client_ping(c->c, e2e_on_pong, c);
    E2E_WAIT(c->pongs == 1, 5000);
    e2e_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_before_hook_refusal_reaches_the_client_with_its_code),
        cmocka_unit_test(a_before_hook_rewrites_a_worker_request),
        cmocka_unit_test(a_before_hook_rewrites_a_net_thread_request),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_examples, e2e_group_teardown);
}
