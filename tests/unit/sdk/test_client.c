/* SDK client without a server: local argument errors and the
 * fail-every-allocation sweep over create + connect + destroy. */
#include "kaos.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static long fail_at = -1, count, live;

static void *t_alloc(void *ud, size_t size)
{
    if (count++ == fail_at) return NULL;
    void *p = malloc(size ? size : 1);
    if (p) live++;
    return p;
}

static void *t_realloc(void *ud, void *ptr, size_t size)
{
    if (count++ == fail_at) return NULL;
    void *p = realloc(ptr, size ? size : 1);
    if (p && !ptr) live++;
    return p;
}

static void t_free(void *ud, void *ptr)
{
    if (ptr) live--;
    free(ptr);
}

static void requests_fail_locally_when_not_connected_or_too_large(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = 1; /* nobody listens */
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_false(kaos_client_is_connected(c));
    assert_null(kaos_client_session(c));
    assert_int_equal(kaos_client_ping(c), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_session_refresh(c), KAOS_ERR_UNAUTHENTICATED); /* no session yet */
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_ERR_FAILED_PRECONDITION);
    static uint8_t big[KAOS_MAX_MESSAGE_SIZE + 1];
    int rc = kaos_client_match_send(c, 1, 1, big, sizeof big, true, NULL, 0);
    assert_true(rc == KAOS_ERR_TOO_LARGE || rc == KAOS_ERR_CLOSED);
    kaos_client_destroy(c);

    kaos_client_config bad;
    kaos_client_config_default(&bad);
    bad.port = 0;
    assert_int_equal(kaos_client_create(&bad, &c), KAOS_ERR_CONFIG);
    assert_string_equal(kaos_err_text(KAOS_ERR_NOT_FOUND), "not found");
}

static void create_and_connect_survive_allocation_failures(void **state)
{
    kaos_allocator a = {t_alloc, t_realloc, t_free, NULL};
    for (long n = 0;; n++) {
        assert_true(n < 10000);
        fail_at = n;
        count = live = 0;
        kaos_set_allocator(&a);
        kaos_client_config cfg;
        kaos_client_config_default(&cfg);
        cfg.port = 1;
        kaos_client *c = NULL;
        int rc = kaos_client_create(&cfg, &c);
        if (rc == KAOS_OK) rc = kaos_client_connect(c);
        kaos_client_destroy(c);
        long used = count, leaked = live;
        kaos_set_allocator(NULL);
        assert_int_equal(leaked, 0);
        if (rc == KAOS_OK && used <= n) break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_fail_locally_when_not_connected_or_too_large),
        cmocka_unit_test(create_and_connect_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
