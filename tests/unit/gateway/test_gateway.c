/* Gateway creation: its handler table is complete and create cleans up
 * after every allocation failure. Message handling is covered by the
 * pipeline's tests (test_pipeline.c) and end to end (tests/e2e/). */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_gateway.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void handler_implements_every_net_callback_it_needs(void **state)
{
    kn_gateway_deps deps = {.shutdown_grace_ms = 100};
    kn_gateway *gw;
    assert_int_equal(kn_gateway_create(&deps, &gw), KN_OK);
    kn_net_handler h;
    kn_gateway_handler(gw, 0, &h);
    assert_non_null(h.on_open);
    assert_non_null(h.on_message);
    assert_non_null(h.on_close);
    assert_non_null(h.on_shutdown);
    assert_non_null(h.drained);
    assert_ptr_equal(h.ud, gw);
    assert_true(h.drained(h.ud)); /* nothing in flight yet */
    kn_gateway_destroy(gw);
}

static void one_shard_per_network_thread(void **state)
{
    kn_gateway_deps deps = {.shards = 3};
    kn_gateway *gw;
    assert_int_equal(kn_gateway_create(&deps, &gw), KN_OK);
    assert_int_equal(kn_gateway_shards(gw), 3);
    kn_net_handler h[3];
    for (size_t i = 0; i < 3; i++) {
        kn_gateway_handler(gw, i, &h[i]);
        assert_true(h[i].drained(h[i].ud));
    }
    assert_ptr_equal(h[0].ud, gw); /* shard 0 is the gateway itself */
    assert_ptr_not_equal(h[1].ud, h[0].ud);
    assert_ptr_not_equal(h[2].ud, h[1].ud);
    kn_gateway_destroy(gw);

    deps.shards = KN_GATEWAY_MAX_SHARDS + 1;
    assert_int_equal(kn_gateway_create(&deps, &gw), KN_ERR_INVALID_ARGUMENT);
}

static int create_destroy(void *arg)
{
    kn_gateway_deps deps = {.shards = arg ? 3 : 1};
    kn_gateway *gw;
    int rc = kn_gateway_create(&deps, &gw);
    if (rc == KN_OK) kn_gateway_destroy(gw);
    return rc;
}

static void create_survives_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(create_destroy, NULL) >= 2);
    assert_true(failalloc_sweep(create_destroy, "sharded") >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handler_implements_every_net_callback_it_needs),
        cmocka_unit_test(one_shard_per_network_thread),
        cmocka_unit_test(create_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
