/* Token buckets and failed-login lockouts with a stepped clock. */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_limits.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static void bucket_allows_the_burst_then_the_rate(void **state)
{
    kn_bucket b;
    kn_bucket_init(&b, 10, 5, 1000); /* 10/s, burst 5 */
    for (int i = 0; i < 5; i++) assert_true(kn_bucket_take(&b, 1, 1000));
    assert_false(kn_bucket_take(&b, 1, 1000));
    assert_false(kn_bucket_take(&b, 1, 1050)); /* half a token */
    assert_true(kn_bucket_take(&b, 1, 1100));
    assert_false(kn_bucket_take(&b, 1, 1100));
    assert_true(kn_bucket_take(&b, 5, 10000)); /* refills to the burst, not beyond */
    assert_false(kn_bucket_take(&b, 1, 10000));
    kn_bucket u;
    kn_bucket_init(&u, 0, 0, 0); /* unlimited */
    for (int i = 0; i < 1000; i++) assert_true(kn_bucket_take(&u, 100, 0));
}

static void five_failures_lock_for_a_minute_then_it_expires(void **state)
{
    kn_lockout_config c = {.max_failures = 5, .window_ms = 60000, .lock_ms = 60000,
                           .max_entries = 100};
    kn_lockout *l;
    assert_int_equal(kn_lockout_create(&c, &l), KN_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(kn_lockout_fail(l, "acct:a", 1000 + i), 0);
    assert_int_equal(kn_lockout_check(l, "acct:a", 2000), 0);
    assert_int_equal(kn_lockout_fail(l, "acct:a", 2000), 60000);
    assert_int_equal(kn_lockout_check(l, "acct:a", 32000), 30000);
    assert_int_equal(kn_lockout_check(l, "acct:b", 32000), 0); /* others unaffected */
    assert_int_equal(kn_lockout_check(l, "acct:a", 62000), 0); /* expired */
    assert_int_equal(kn_lockout_fail(l, "acct:a", 62001), 0);  /* counting again from zero */
    kn_lockout_destroy(l);
}

static void old_failures_are_forgotten_and_success_clears(void **state)
{
    kn_lockout_config c = {.max_failures = 3, .window_ms = 1000, .lock_ms = 5000,
                           .max_entries = 100};
    kn_lockout *l;
    assert_int_equal(kn_lockout_create(&c, &l), KN_OK);
    kn_lockout_fail(l, "k", 0);
    kn_lockout_fail(l, "k", 10);
    assert_int_equal(kn_lockout_fail(l, "k", 2000), 0); /* window restarted */
    kn_lockout_fail(l, "k", 2001);
    kn_lockout_success(l, "k");
    assert_int_equal(kn_lockout_size(l), 0);
    assert_int_equal(kn_lockout_fail(l, "k", 2002), 0);
    kn_lockout_destroy(l);
}

static void the_table_is_capped(void **state)
{
    kn_lockout_config c = {.max_failures = 2, .window_ms = 1000, .lock_ms = 5000,
                           .max_entries = 16};
    kn_lockout *l;
    assert_int_equal(kn_lockout_create(&c, &l), KN_OK);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "addr:%d", i);
        kn_lockout_fail(l, key, 0);
    }
    assert_true(kn_lockout_size(l) <= 16);
    kn_lockout_destroy(l);
}

static int fail_a_lot(void *arg)
{
    kn_lockout_config c = {.max_failures = 2, .window_ms = 1000, .lock_ms = 5000,
                           .max_entries = 4};
    kn_lockout *l;
    int rc = kn_lockout_create(&c, &l);
    if (rc) return rc;
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i % 6);
        kn_lockout_fail(l, key, i);
    }
    kn_lockout_destroy(l);
    return KN_OK;
}

static void create_and_fail_survive_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(fail_a_lot, NULL) >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bucket_allows_the_burst_then_the_rate),
        cmocka_unit_test(five_failures_lock_for_a_minute_then_it_expires),
        cmocka_unit_test(old_failures_are_forgotten_and_success_clears),
        cmocka_unit_test(the_table_is_capped),
        cmocka_unit_test(create_and_fail_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
