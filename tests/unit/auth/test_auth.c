/* kn_auth without a database: argument validation, token issue through
 * verify_session, and create's cleanup. The database paths are covered end
 * to end in tests/e2e/test_auth.c. */
#include "failalloc.h"
#include "kn_auth.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static const uint8_t skey[32] = "session-key-session-key-session-";
static const uint8_t rkey[32] = "refresh-key-refresh-key-refresh-";

/* One session store for the whole file (its own tests are in
 * tests/unit/session/test_session_store.c). */
static kn_session_store *store;

static kn_auth *make(void)
{
    kn_auth_config c = {store};
    kn_auth *a;
    assert_int_equal(kn_auth_create(&c, &a), KN_OK);
    return a;
}

static void invalid_arguments_are_refused_before_any_database_call(void **state)
{
    kn_auth *a = make();
    kn_session_grant s;
    char msg[256];
    /* db is NULL: reaching it would crash, so these prove validation comes first. */
    assert_int_equal(kn_auth_device(a, NULL, "short", NULL, true, NULL, 0, 100, &s, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "device id must be 10-128"));
    assert_int_equal(kn_auth_device(a, NULL, "device with space", NULL, true, NULL, 0, 100, &s,
                                    msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_auth_device(a, NULL, "good-device-id", "bad name", true, NULL, 0, 100, &s,
                                    msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "username"));
    kn_token_var big = {"k", NULL};
    char value[300];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    big.value = value;
    assert_int_equal(kn_auth_device(a, NULL, "good-device-id", NULL, true, &big, 1, 100, &s, msg,
                                    sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_session_refresh(kn_auth_sessions(a), NULL, "not.a.token", NULL, 0, 100, &s,
                                        msg, sizeof msg),
                     KN_ERR_TOKEN_INVALID);
    assert_string_equal(msg, "refresh token invalid");
    kn_auth_destroy(a);
}

static void a_store_is_required(void **state)
{
    kn_auth *a;
    kn_auth_config none = {NULL};
    assert_int_equal(kn_auth_create(&none, &a), KN_ERR_INVALID_ARGUMENT);
}

static int create_destroy(void *arg)
{
    kn_auth_config c = {store};
    kn_auth *a;
    int rc = kn_auth_create(&c, &a);
    kn_auth_destroy(a);
    return rc;
}

static void create_survives_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(create_destroy, NULL) >= 1);
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    kn_session_store_config sc = {skey, 32, rkey, 32, 60, 3600};
    if (kn_session_store_create(&sc, &store)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(invalid_arguments_are_refused_before_any_database_call),
        cmocka_unit_test(a_store_is_required),
        cmocka_unit_test(create_survives_allocation_failures),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    kn_session_store_destroy(store);
    return failed;
}
