/* The console's access rules against real Postgres (support/pgtest.h):
 * console users and their argon2id passwords, sessions and their expiry,
 * CSRF tokens, roles, the audit log, and the first start's admin. */
#include "pgtest.h"
#include "kn_console.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static pgtest pg;
static kn_db *db;
static char msg[256];

static int setup(void **state)
{
    (void)state;
    if (kn_crypto_init()) return -1;
    return pgtest_create(&pg, "kaos_console", &db);
}

static int teardown(void **state)
{
    (void)state;
    kn_db_close(db);
    return pgtest_drop(&pg);
}

/* kn_db keeps a statement per descriptor: one lasting descriptor per query. */
static long long count(const char *sql)
{
    static kn_db_stmt stmts[16];
    static char names[16][32];
    static int n;
    assert_true(n < 16);
    snprintf(names[n], sizeof names[n], "console_test_%d", n);
    stmts[n] = (kn_db_stmt){names[n], sql, 0};
    kn_db_rows *rows = NULL;
    assert_int_equal(kn_db_query(db, &stmts[n++], NULL, &rows), KN_OK);
    long long v = atoll(kn_db_rows_get(rows, 0, 0));
    kn_db_rows_free(rows);
    return v;
}

static void first_start_creates_one_admin_with_a_generated_password(void **state)
{
    (void)state;
    char generated[64] = "";
    bool created = false;
    assert_int_equal(
        kn_console_bootstrap(db, "", generated, sizeof generated, &created, msg, sizeof msg),
        KN_OK);
    assert_true(created);
    assert_true(strlen(generated) >= 20);
    char token[KN_CONSOLE_TOKEN_LEN + 1];
    kn_console_who who;
    assert_int_equal(kn_console_login(db, "admin", generated, 60, token, &who, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(who.role, KN_CONSOLE_ADMIN);
    /* A second start changes nothing. */
    char again[64] = "";
    assert_int_equal(kn_console_bootstrap(db, "", again, sizeof again, &created, msg, sizeof msg),
                     KN_OK);
    assert_false(created);
    assert_string_equal(again, "");
}

static void passwords_are_stored_as_argon2id_never_in_clear(void **state)
{
    (void)state;
    assert_int_equal(
        kn_console_user_add(db, "dev1", "dev-password-1", KN_CONSOLE_DEVELOPER, msg, sizeof msg),
        KN_OK);
    assert_int_equal(
        count("SELECT count(*) FROM console_user WHERE username = 'dev1'"
              " AND password LIKE '$argon2id$%' AND password NOT LIKE '%dev-password-1%'"),
        1);
    assert_int_equal(
        kn_console_user_add(db, "dev1", "another-pass", KN_CONSOLE_ADMIN, msg, sizeof msg),
        KN_ERR_ALREADY_EXISTS);
    assert_int_equal(kn_console_user_add(db, "short", "1234567", KN_CONSOLE_ADMIN, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        kn_console_user_add(db, "bad name", "long-enough", KN_CONSOLE_ADMIN, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
}

static void a_wrong_password_and_an_unknown_user_get_the_same_answer(void **state)
{
    (void)state;
    char token[KN_CONSOLE_TOKEN_LEN + 1], m1[256], m2[256];
    kn_console_who who;
    assert_int_equal(
        kn_console_user_add(db, "ops1", "ops-password", KN_CONSOLE_MAINTAINER, msg, sizeof msg),
        KN_OK);
    assert_int_equal(kn_console_login(db, "ops1", "wrong-password", 60, token, &who, m1, sizeof m1),
                     KN_ERR_UNAUTHENTICATED);
    assert_int_equal(
        kn_console_login(db, "nobody", "wrong-password", 60, token, &who, m2, sizeof m2),
        KN_ERR_UNAUTHENTICATED);
    assert_string_equal(m1, m2);
}

static void a_session_is_found_by_its_token_and_stored_only_as_a_hash(void **state)
{
    (void)state;
    char token[KN_CONSOLE_TOKEN_LEN + 1];
    kn_console_who who, again;
    assert_int_equal(
        kn_console_user_add(db, "ro1", "read-only-pw", KN_CONSOLE_READ_ONLY, msg, sizeof msg),
        KN_OK);
    assert_int_equal(kn_console_login(db, "ro1", "read-only-pw", 60, token, &who, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(strlen(token), KN_CONSOLE_TOKEN_LEN);
    assert_int_equal(kn_console_session_get(db, token, &again), KN_OK);
    assert_string_equal(again.username, "ro1");
    assert_int_equal(again.role, KN_CONSOLE_READ_ONLY);
    assert_string_equal(again.csrf, who.csrf);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM console_session WHERE token_hash = '%s'",
             token);
    assert_int_equal(count(sql), 0);
    /* A token one character off is no session. */
    token[0] = token[0] == 'A' ? 'B' : 'A';
    assert_int_equal(kn_console_session_get(db, token, &again), KN_ERR_UNAUTHENTICATED);
    assert_int_equal(kn_console_session_get(db, "short", &again), KN_ERR_UNAUTHENTICATED);
}

static void an_expired_session_is_refused(void **state)
{
    (void)state;
    char token[KN_CONSOLE_TOKEN_LEN + 1];
    kn_console_who who;
    assert_int_equal(kn_console_login(db, "ro1", "read-only-pw", 60, token, &who, msg, sizeof msg),
                     KN_OK);
    pgtest_sql(db, "UPDATE console_session SET expire_time = now() - interval '1 second'");
    assert_int_equal(kn_console_session_get(db, token, &who), KN_ERR_UNAUTHENTICATED);
}

static void logout_and_a_new_password_end_sessions(void **state)
{
    (void)state;
    char t1[KN_CONSOLE_TOKEN_LEN + 1], t2[KN_CONSOLE_TOKEN_LEN + 1];
    kn_console_who who;
    assert_int_equal(kn_console_login(db, "ops1", "ops-password", 60, t1, &who, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(kn_console_login(db, "ops1", "ops-password", 60, t2, &who, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(kn_console_logout(db, t1), KN_OK);
    assert_int_equal(kn_console_session_get(db, t1, &who), KN_ERR_UNAUTHENTICATED);
    assert_int_equal(kn_console_session_get(db, t2, &who), KN_OK);
    assert_int_equal(kn_console_user_passwd(db, "ops1", "new-ops-password", msg, sizeof msg),
                     KN_OK);
    assert_int_equal(kn_console_session_get(db, t2, &who), KN_ERR_UNAUTHENTICATED);
    assert_int_equal(kn_console_login(db, "ops1", "ops-password", 60, t1, &who, msg, sizeof msg),
                     KN_ERR_UNAUTHENTICATED);
    assert_int_equal(
        kn_console_login(db, "ops1", "new-ops-password", 60, t1, &who, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_console_user_passwd(db, "ghost", "new-ops-password", msg, sizeof msg),
                     KN_ERR_NOT_FOUND);
}

static void removing_a_user_ends_its_sessions(void **state)
{
    (void)state;
    char token[KN_CONSOLE_TOKEN_LEN + 1];
    kn_console_who who;
    assert_int_equal(
        kn_console_user_add(db, "temp", "temp-password", KN_CONSOLE_DEVELOPER, msg, sizeof msg),
        KN_OK);
    assert_int_equal(
        kn_console_login(db, "temp", "temp-password", 60, token, &who, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_console_user_remove(db, "temp", msg, sizeof msg), KN_OK);
    assert_int_equal(kn_console_session_get(db, token, &who), KN_ERR_UNAUTHENTICATED);
    assert_int_equal(kn_console_user_remove(db, "temp", msg, sizeof msg), KN_ERR_NOT_FOUND);
}

static void csrf_must_match_the_session_exactly(void **state)
{
    (void)state;
    kn_console_who who = {0};
    snprintf(who.csrf, sizeof who.csrf, "abcDEF123");
    assert_true(kn_console_csrf_ok(&who, "abcDEF123"));
    assert_false(kn_console_csrf_ok(&who, NULL));
    assert_false(kn_console_csrf_ok(&who, ""));
    assert_false(kn_console_csrf_ok(&who, "abcDEF12"));
    assert_false(kn_console_csrf_ok(&who, "abcDEF1234"));
    assert_false(kn_console_csrf_ok(&who, "abcdef123"));
    who.csrf[0] = '\0'; /* a session without a token accepts nothing */
    assert_false(kn_console_csrf_ok(&who, ""));
}

static void each_role_may_do_what_the_ones_below_it_may(void **state)
{
    (void)state;
    static const char *const names[] = {"read-only", "maintainer", "developer", "admin"};
    for (int r = 0; r < 4; r++) {
        kn_console_role parsed;
        assert_int_equal(kn_console_role_parse(names[r], &parsed), KN_OK);
        assert_int_equal(parsed, r);
        assert_string_equal(kn_console_role_name(parsed), names[r]);
        for (int need = 0; need < 4; need++)
            assert_int_equal(kn_console_role_check(parsed, (kn_console_role)need),
                             r >= need ? KN_OK : KN_ERR_PERMISSION_DENIED);
    }
    kn_console_role parsed;
    assert_int_equal(kn_console_role_parse("readonly", &parsed), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_console_role_parse("Admin", &parsed), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_console_role_parse(NULL, &parsed), KN_ERR_INVALID_ARGUMENT);
}

static void the_session_cookie_is_read_from_the_cookie_header(void **state)
{
    (void)state;
    char v[64];
    assert_int_equal(
        kn_console_cookie_get("a=1; kaos_console=tok-EN_9; b=2", "kaos_console", v, sizeof v),
        KN_OK);
    assert_string_equal(v, "tok-EN_9");
    assert_int_equal(kn_console_cookie_get("kaos_console=\"q\"", "kaos_console", v, sizeof v),
                     KN_OK);
    assert_string_equal(v, "q");
    assert_int_equal(kn_console_cookie_get("xkaos_console=1", "kaos_console", v, sizeof v),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_console_cookie_get("kaos_console=a b", "kaos_console", v, sizeof v),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_console_cookie_get("kaos_console=abcdef", "kaos_console", v, 4),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_console_cookie_get(NULL, "kaos_console", v, sizeof v), KN_ERR_NOT_FOUND);
    assert_int_equal(kn_console_cookie_get(";;; ;", "kaos_console", v, sizeof v), KN_ERR_NOT_FOUND);
}

static void every_audit_row_names_who_what_and_the_result(void **state)
{
    (void)state;
    kn_console_who who = {.role = KN_CONSOLE_MAINTAINER};
    snprintf(who.username, sizeof who.username, "ops1");
    assert_int_equal(kn_console_audit(db, &who, "account/ban", "user x", "", KN_OK, "10.0.0.1"),
                     KN_OK);
    assert_int_equal(kn_console_audit(db, &who, "storage/write", "a/b", "no",
                                      KN_ERR_PERMISSION_DENIED, "10.0.0.1"),
                     KN_OK);
    assert_int_equal(count("SELECT count(*) FROM console_audit WHERE username = 'ops1'"
                           " AND role = 'maintainer' AND action = 'account/ban' AND result = 0"
                           " AND address = '10.0.0.1'"),
                     1);
    assert_int_equal(count("SELECT count(*) FROM console_audit WHERE action = 'storage/write'"
                           " AND result = 7"),
                     1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_start_creates_one_admin_with_a_generated_password),
        cmocka_unit_test(passwords_are_stored_as_argon2id_never_in_clear),
        cmocka_unit_test(a_wrong_password_and_an_unknown_user_get_the_same_answer),
        cmocka_unit_test(a_session_is_found_by_its_token_and_stored_only_as_a_hash),
        cmocka_unit_test(an_expired_session_is_refused),
        cmocka_unit_test(logout_and_a_new_password_end_sessions),
        cmocka_unit_test(removing_a_user_ends_its_sessions),
        cmocka_unit_test(csrf_must_match_the_session_exactly),
        cmocka_unit_test(each_role_may_do_what_the_ones_below_it_may),
        cmocka_unit_test(the_session_cookie_is_read_from_the_cookie_header),
        cmocka_unit_test(every_audit_row_names_who_what_and_the_result),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
