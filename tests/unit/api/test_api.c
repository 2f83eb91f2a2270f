/* API worker pool against the Postgres named by the PG* environment (the
 * suite runs inside pg_virtualenv): every job runs once on a worker with its
 * own connection, a full queue and a closed intake refuse with clear codes,
 * and create cleans up after every allocation failure. */
#include "apigate.h"
#include "failalloc.h"
#include "kn_api.h"
#include "kn_db.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

static const kn_db_stmt select_one = {"test_select_one", "SELECT $1::int + 1", 1};

typedef struct counter {
    atomic_int ran, db_ok;
    atomic_int seen_worker[2];
} counter;

static void job_query(kn_api_worker *w, void *arg)
{
    counter *c = arg;
    const char *p[] = {"41"};
    kn_db_rows *rows;
    if (kn_db_query(w->db, &select_one, p, &rows) == KN_OK) {
        if (atoi(kn_db_rows_get(rows, 0, 0)) == 42) atomic_fetch_add(&c->db_ok, 1);
        kn_db_rows_free(rows);
    }
    atomic_fetch_add(&c->seen_worker[w->index], 1);
    atomic_fetch_add(&c->ran, 1);
}

static void every_job_runs_once_with_a_working_connection(void **state)
{
    kn_api_config cfg = {.workers = 2, .queue_size = 1000, .database_url = ""};
    kn_api *api;
    assert_int_equal(kn_api_create(&cfg, &api), KN_OK);
    static counter c;
    for (int i = 0; i < 500; i++) assert_int_equal(kn_api_submit(api, job_query, &c), KN_OK);
    kn_api_destroy(api); /* drains the queue before joining */
    assert_int_equal(atomic_load(&c.ran), 500);
    assert_int_equal(atomic_load(&c.db_ok), 500);
    assert_int_equal(atomic_load(&c.seen_worker[0]) + atomic_load(&c.seen_worker[1]), 500);
}

static void full_queue_and_closed_intake_are_refused(void **state)
{
    kn_api_config cfg = {.workers = 1, .queue_size = 2, .database_url = ""};
    kn_api *api;
    assert_int_equal(kn_api_create(&cfg, &api), KN_OK);
    static apigate g = APIGATE_INIT;
    assert_int_equal(kn_api_submit(api, apigate_job, &g), KN_OK);
    apigate_wait_entered(&g, 1); /* the worker is now busy */
    assert_int_equal(kn_api_submit(api, apigate_job, &g), KN_OK);
    assert_int_equal(kn_api_submit(api, apigate_job, &g), KN_OK);
    assert_int_equal(kn_api_submit(api, apigate_job, &g), KN_ERR_RESOURCE_EXHAUSTED);
    assert_int_equal(kn_api_pending(api), 3);
    kn_api_close_intake(api);
    assert_int_equal(kn_api_submit(api, apigate_job, &g), KN_ERR_UNAVAILABLE);
    apigate_open(&g);
    kn_api_destroy(api);
    assert_int_equal(atomic_load(&g.entered), 3);
}

static void unreachable_database_fails_create(void **state)
{
    kn_api_config cfg = {.workers = 1, .queue_size = 4,
                         .database_url = "postgresql://nobody@127.0.0.1:1/none"};
    kn_api *api = (kn_api *)1;
    assert_int_equal(kn_api_create(&cfg, &api), KN_ERR_DB);
    assert_null(api);
}

static int create_destroy(void *arg)
{
    kn_api_config cfg = {.workers = 2, .queue_size = 8, .database_url = ""};
    kn_api *api;
    int rc = kn_api_create(&cfg, &api);
    kn_api_destroy(rc ? NULL : api);
    return rc;
}

static void create_survives_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(create_destroy, NULL) >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_job_runs_once_with_a_working_connection),
        cmocka_unit_test(full_queue_and_closed_intake_are_refused),
        cmocka_unit_test(unreachable_database_fails_create),
        cmocka_unit_test(create_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
