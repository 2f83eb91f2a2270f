/* kn_map against a reference array under random inserts and deletes. */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_map.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#define N 3000

static void map_matches_reference_under_churn(void **state)
{
    static void *ref[N];
    kn_map m;
    kn_map_init(&m);
    srand(7);
    size_t live = 0;
    for (int step = 0; step < 200000; step++) {
        uint64_t k = (uint64_t)(rand() % N);
        uintptr_t v = (uintptr_t)rand() | 1;
        if (rand() % 3) {
            if (!ref[k]) live++;
            assert_int_equal(kn_map_put(&m, k + 1, (void *)v), KN_OK);
            ref[k] = (void *)v;
        } else {
            void *got = kn_map_del(&m, k + 1);
            assert_ptr_equal(got, ref[k]);
            if (ref[k]) live--;
            ref[k] = NULL;
        }
        if (step % 1000 == 0)
            for (uint64_t i = 0; i < N; i++) assert_ptr_equal(kn_map_get(&m, i + 1), ref[i]);
    }
    assert_int_equal(m.count, live);
    kn_map_deinit(&m);
    assert_null(kn_map_get(&m, 1));
}

static int grow_map(void *arg)
{
    kn_map m;
    kn_map_init(&m);
    int rc = KN_OK;
    for (uint64_t k = 1; k <= 40 && rc == KN_OK; k++) rc = kn_map_put(&m, k, &m);
    /* A failed put leaves the map intact and usable. */
    for (uint64_t k = 1; k <= m.count; k++) assert_ptr_equal(kn_map_get(&m, k), &m);
    kn_map_deinit(&m);
    return rc;
}

static void put_survives_allocation_failure(void **state)
{
    assert_true(failalloc_sweep(grow_map, NULL) >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_matches_reference_under_churn),
        cmocka_unit_test(put_survives_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
