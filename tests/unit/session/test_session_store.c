/* The session store without a database: key checks, token verification
 * (a token signed with the session key verifies, a refresh token or a
 * tampered one does not), session vars rules, and create's cleanup after
 * allocation failures. Its Postgres side (issue, refresh rotation, logout,
 * liveness) is covered with real rows by tests/unit/account/test_account.c
 * and end to end by tests/e2e/test_auth.c. */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_session.h"

#include <setjmp.h>
#include "kn_crypto.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static const uint8_t skey[32] = "session-key-session-key-session-";
static const uint8_t rkey[32] = "refresh-key-refresh-key-refresh-";

static void keys_are_validated(void **state)
{
    kn_session_store *s;
    kn_session_store_config empty = {skey, 0, rkey, 32, 60, 3600};
    assert_int_equal(kn_session_store_create(&empty, &s), KN_ERR_INVALID_ARGUMENT);
    assert_null(s);
    kn_session_store_config huge = {skey, 65, rkey, 32, 60, 3600};
    assert_int_equal(kn_session_store_create(&huge, &s), KN_ERR_INVALID_ARGUMENT);
    kn_session_store_config no_refresh = {skey, 32, rkey, 0, 60, 3600};
    assert_int_equal(kn_session_store_create(&no_refresh, &s), KN_ERR_INVALID_ARGUMENT);
}

static void only_a_session_token_of_this_store_verifies(void **state)
{
    kn_session_store_config c = {skey, 32, rkey, 32, 60, 3600};
    kn_session_store *s;
    assert_int_equal(kn_session_store_create(&c, &s), KN_OK);
    kn_token_claims claims = {.user_id = "8f4d52c7-bf28-4fcf-8af2-1d4fcf685592",
                              .username = "alice",
                              .session_id = "0b8f0f34-5d0e-4c1e-9f5e-3b1f3d3b9a11",
                              .issued_at = 1000,
                              .expires_at = 2000};
    char *session = NULL, *refresh = NULL;
    assert_int_equal(kn_token_sign(&claims, skey, 32, &session), KN_OK);
    assert_int_equal(kn_token_sign(&claims, rkey, 32, &refresh), KN_OK);
    kn_token_claims out;
    assert_int_equal(kn_session_verify(s, session, 1500, &out), KN_OK);
    assert_string_equal(out.username, "alice");
    kn_token_claims_deinit(&out);
    assert_int_equal(kn_session_verify(s, session, 2000, &out), KN_ERR_TOKEN_EXPIRED);
    assert_int_equal(kn_session_verify(s, refresh, 1500, &out), KN_ERR_TOKEN_INVALID);
    session[strlen(session) - 2] ^= 1; /* the signature no longer matches */
    assert_int_equal(kn_session_verify(s, session, 1500, &out), KN_ERR_TOKEN_INVALID);
    kn_free(session);
    kn_free(refresh);
    kn_session_store_destroy(s);
}

static void session_vars_have_limits(void **state)
{
    char msg[128];
    kn_token_var ok[2] = {{"k", "v"}, {"mode", "ranked"}};
    assert_int_equal(kn_session_check_vars(ok, 2, msg, sizeof msg), KN_OK);
    kn_token_var empty_key = {"", "v"};
    assert_int_equal(kn_session_check_vars(&empty_key, 1, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    char value[KN_SESSION_VAR_VALUE_MAX + 2];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    kn_token_var long_value = {"k", value};
    assert_int_equal(kn_session_check_vars(&long_value, 1, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "session var keys must be"));
    assert_int_equal(kn_session_check_vars(ok, KN_TOKEN_MAX_VARS + 1, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "at most"));
}

static int create_destroy(void *arg)
{
    kn_session_store_config c = {skey, 32, rkey, 32, 60, 3600};
    kn_session_store *s;
    int rc = kn_session_store_create(&c, &s);
    kn_session_store_destroy(s);
    return rc;
}

static void create_survives_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(create_destroy, NULL) >= 1);
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_validated),
        cmocka_unit_test(only_a_session_token_of_this_store_verifies),
        cmocka_unit_test(session_vars_have_limits),
        cmocka_unit_test(create_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
