/* The match routes' context: creation checks the relay limits, takes a
 * per-connection session slot, and cleans up after allocation failures. */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_match_wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static kn_relay_config relay_cfg = {.node = "n1",
                                    .default_size = 4,
                                    .max_size = 8,
                                    .max_matches_per_conn = 2,
                                    .max_message_size = 1024};

static int no_send(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel,
                   const uint8_t *data, size_t len, bool reliable)
{
    return KN_OK;
}

/* Relayed matches are streams: every match service needs a tracker. */
static kn_tracker *tracker_new(void)
{
    kn_tracker_config tc;
    kn_tracker_config_default(&tc);
    kn_tracker_sink sink = {no_send, NULL};
    kn_tracker *t = NULL;
    if (kn_tracker_create(&tc, &sink, &t)) return NULL;
    return t;
}

static void bad_relay_limits_are_refused(void **state)
{
    kn_relay_config bad = relay_cfg;
    bad.default_size = 100; /* above max_size */
    kn_tracker *t = tracker_new();
    assert_non_null(t);
    kn_match_wire_deps deps = {.relay = &bad, .tracker = t};
    kn_match_wire *mw;
    assert_int_equal(kn_match_wire_create(&deps, &mw), KN_ERR_INVALID_ARGUMENT);
    kn_tracker_destroy(t);
}

static void each_takes_a_session_slot_until_none_is_left(void **state)
{
    kn_out *out;
    kn_sessions *ss;
    assert_int_equal(kn_out_create(1, &out), KN_OK);
    assert_int_equal(kn_sessions_create(out, &ss), KN_OK);
    kn_tracker *t = tracker_new();
    assert_non_null(t);
    kn_match_wire_deps deps = {.relay = &relay_cfg, .tracker = t, .out = out, .sessions = ss};
    kn_match_wire *mw[KN_SESSION_EXT_MAX + 1] = {0};
    for (int i = 0; i < KN_SESSION_EXT_MAX; i++)
        assert_int_equal(kn_match_wire_create(&deps, &mw[i]), KN_OK);
    assert_int_equal(kn_match_wire_create(&deps, &mw[KN_SESSION_EXT_MAX]),
                     KN_ERR_RESOURCE_EXHAUSTED);
    assert_null(mw[KN_SESSION_EXT_MAX]);
    assert_int_equal(kn_match_wire_relayed_count(mw[0]), 0);
    for (int i = 0; i < KN_SESSION_EXT_MAX; i++)
        kn_match_wire_destroy(mw[i]);
    kn_sessions_destroy(ss);
    kn_tracker_destroy(t);
    kn_out_destroy(out);
}

static int create_destroy(void *arg)
{
    kn_tracker *t = tracker_new();
    if (!t) return KN_ERR_NOMEM;
    kn_match_wire_deps deps = {.relay = &relay_cfg, .tracker = t};
    kn_match_wire *mw;
    int rc = kn_match_wire_create(&deps, &mw);
    if (rc == KN_OK) kn_match_wire_destroy(mw);
    kn_tracker_destroy(t);
    return rc;
}

static void create_survives_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(create_destroy, NULL) >= 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_relay_limits_are_refused),
        cmocka_unit_test(each_takes_a_session_slot_until_none_is_left),
        cmocka_unit_test(create_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
