/* End to end: device authentication, refresh, resume, token checks and
 * identity surviving a server restart — real server, real Postgres, SDK. */
#include "harness.h"
#include "kn_codec.h"
#include "rawclient.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>


static void device_auth_creates_user_then_finds_it(void **state)
{
    char dev[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(a, dev);
    assert_true(a->created);
    assert_int_equal(strlen(a->user_id), 36);
    assert_int_equal(strlen(a->username), 10); /* generated */
    assert_true(kaos_client_session(a->c) != NULL);

    e2e_client *b = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(b, dev);
    assert_false(b->created);
    assert_string_equal(b->user_id, a->user_id);
    assert_string_equal(b->username, a->username);
    assert_string_not_equal(b->session_id, a->session_id);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void unknown_device_without_create_is_not_found(void **state)
{
    char dev[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    int cid = kaos_client_auth_device(a->c, dev, NULL, false, NULL, e2e_on_session, a);
    E2E_WAIT(a->errors == 1, 5000);
    assert_int_equal(a->error_cid, (uint32_t)cid);
    assert_int_equal(a->error_code, 5); /* NOT_FOUND */
    assert_string_equal(a->error_message, "device not found");
    assert_int_equal(a->sessions, 0);
    e2e_client_free(a);
}

static void taken_username_and_bad_device_ids_are_refused(void **state)
{
    char dev1[40], dev2[40], name[64];
    e2e_device_id(dev1);
    e2e_device_id(dev2);
    snprintf(name, sizeof name, "player_%s", dev1 + 4);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    assert_true(kaos_client_auth_device(a->c, dev1, name, true, NULL, e2e_on_session, a) > 0);
    E2E_WAIT(a->sessions == 1, 5000);
    assert_string_equal(a->username, name);

    assert_true(kaos_client_auth_device(a->c, dev2, name, true, NULL, e2e_on_session, a) > 0);
    E2E_WAIT(a->errors == 1, 5000);
    assert_int_equal(a->error_code, 6); /* ALREADY_EXISTS */

    assert_true(kaos_client_auth_device(a->c, "short", NULL, true, NULL, e2e_on_session, a) > 0);
    E2E_WAIT(a->errors == 2, 5000);
    assert_int_equal(a->error_code, 3); /* INVALID_ARGUMENT */
    assert_non_null(strstr(a->error_message, "device id must be"));

    assert_true(
        kaos_client_auth_device(a->c, "has spaces in it", NULL, true, NULL, e2e_on_session, a) > 0);
    E2E_WAIT(a->errors == 3, 5000);
    assert_int_equal(a->error_code, 3);
    e2e_client_free(a);
}

static void refresh_rotates_tokens_and_keeps_the_user(void **state)
{
    char dev[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    const char *vars[] = {"region", "eu", NULL};
    assert_true(kaos_client_auth_device(a->c, dev, NULL, true, vars, e2e_on_session, a) > 0);
    E2E_WAIT(a->sessions == 1, 5000);
    char user[40], token[4096], refresh[4096], sid[40];
    strcpy(user, a->user_id);
    strcpy(token, a->token);
    strcpy(refresh, a->refresh_token);
    strcpy(sid, a->session_id);

    int cid = kaos_client_session_refresh(a->c, e2e_on_session, a);
    assert_true(cid > 0);
    E2E_WAIT(a->sessions == 2, 5000);
    assert_string_equal(a->user_id, user);
    assert_string_not_equal(a->session_id, sid);
    assert_string_not_equal(a->token, token);
    assert_string_not_equal(a->refresh_token, refresh);
    assert_string_not_equal(a->refresh_token, "");
    e2e_client_free(a);
}

/* Sends SessionRefresh{token} from a hand-rolled client; returns its error code (0 = session). */
static int raw_refresh(const char *refresh_token, char *msg, size_t cap)
{
    raw_client r;
    raw_connect(&r, e2e_group_server.port, e2e_group_server.key);
    Kaos__V1__SessionRefresh req = KAOS__V1__SESSION_REFRESH__INIT;
    req.refresh_token = (char *)refresh_token;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = 5;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_SESSION_REFRESH;
    env.session_refresh = &req;
    raw_send_env(&r, &env);
    for (int i = 0; i < 400 && r.received == 0; i++) raw_pump(&r, 5);
    assert_true(r.received > 0);
    int code = r.sessions ? 0 : r.last_error_code;
    snprintf(msg, cap, "%s", r.last_error);
    raw_close(&r);
    return code;
}

static void an_old_refresh_token_is_refused_after_rotation(void **state)
{
    char dev[40], first[4096], msg[256];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(a, dev);
    strcpy(first, a->refresh_token);
    assert_true(kaos_client_session_refresh(a->c, e2e_on_session, a) > 0);
    E2E_WAIT(a->sessions == 2, 5000);
    assert_int_equal(raw_refresh(first, msg, sizeof msg), 16);
    assert_string_equal(msg, "refresh token already used or revoked");
    assert_int_equal(raw_refresh(a->refresh_token, msg, sizeof msg), 0); /* the new one works once */
    e2e_client_free(a);
}

static void logout_kills_the_refresh_token_and_resume(void **state)
{
    char dev[40], token[4096];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(a, dev);
    strcpy(token, a->token);
    char refresh[4096], msg[256];
    strcpy(refresh, a->refresh_token);
    assert_true(kaos_client_session_logout(a->c, e2e_on_done, a) > 0);
    E2E_WAIT(a->acks == 1, 5000);
    assert_null(kaos_client_session(a->c));
    kaos_client_match_create(a->c, 0, e2e_on_match,
                             a); /* the connection is no longer authenticated */
    E2E_WAIT(a->errors == 1, 5000);
    assert_int_equal(a->error_code, 16);
    e2e_client *b = e2e_client_new(e2e_group_server.port, 0, 0);
    kaos_client_session_resume(b->c, token, e2e_on_session, b);
    E2E_WAIT(b->errors == 1, 5000);
    assert_int_equal(b->error_code, 16);
    assert_string_equal(b->error_message, "session token revoked (logged out)");
    assert_int_equal(raw_refresh(refresh, msg, sizeof msg), 16);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void resume_binds_a_new_connection_to_the_session(void **state)
{
    char dev[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(a, dev);
    e2e_client *b = e2e_client_new(e2e_group_server.port, 0, 0);
    /* Before authentication, match requests are refused. */
    assert_true(kaos_client_match_create(b->c, 0, e2e_on_match, b) > 0);
    E2E_WAIT(b->errors == 1, 5000);
    assert_int_equal(b->error_code, 16); /* UNAUTHENTICATED */
    assert_true(kaos_client_session_resume(b->c, a->token, e2e_on_session, b) > 0);
    E2E_WAIT(b->sessions == 1, 5000);
    assert_string_equal(b->user_id, a->user_id);
    assert_string_equal(b->session_id, a->session_id);
    assert_true(kaos_client_match_create(b->c, 0, e2e_on_match, b) > 0);
    E2E_WAIT(b->matches == 1, 5000);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void tampered_or_wrong_kind_of_token_is_unauthenticated(void **state)
{
    char dev[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(a, dev);
    char bad[4096];
    strcpy(bad, a->token);
    char *payload = strchr(bad, '.') + 3;
    *payload = *payload == 'x' ? 'y' : 'x';
    e2e_client *b = e2e_client_new(e2e_group_server.port, 0, 0);
    assert_true(kaos_client_session_resume(b->c, bad, e2e_on_session, b) > 0);
    E2E_WAIT(b->errors == 1, 5000);
    assert_int_equal(b->error_code, 16);
    assert_string_equal(b->error_message, "session token invalid");
    /* A refresh token is signed with the other key: not a session token. */
    assert_true(kaos_client_session_resume(b->c, a->refresh_token, e2e_on_session, b) > 0);
    E2E_WAIT(b->errors == 2, 5000);
    assert_int_equal(b->error_code, 16);
    assert_int_equal(b->sessions, 0);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void expired_session_token_is_refused(void **state)
{
    e2e_server short_srv;
    e2e_server_init(&short_srv);
    const char *extra[] = {"--session-expiry-sec", "1", NULL};
    e2e_server_start(&short_srv, extra);
    char dev[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(short_srv.port, 0, 0);
    e2e_auth(a, dev);
    e2e_pump_for(2100);
    e2e_client *b = e2e_client_new(short_srv.port, 0, 0);
    assert_true(kaos_client_session_resume(b->c, a->token, e2e_on_session, b) > 0);
    E2E_WAIT(b->errors == 1, 5000);
    assert_int_equal(b->error_code, 16);
    assert_string_equal(b->error_message, "session token expired");
    /* The refresh token lives longer and still works. */
    assert_true(kaos_client_session_refresh(a->c, e2e_on_session, a) > 0);
    E2E_WAIT(a->sessions == 2, 5000);
    e2e_client_free(a);
    e2e_client_free(b);
    assert_int_equal(e2e_server_stop(&short_srv), 0);
    e2e_server_cleanup(&short_srv);
}

static void same_device_gets_same_user_after_restart(void **state)
{
    char dev[40], user[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(a, dev);
    strcpy(user, a->user_id);
    e2e_client_free(a);

    assert_int_equal(e2e_server_stop(&e2e_group_server), 0);
    e2e_server_start(&e2e_group_server, NULL);
    e2e_client *b = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(b, dev);
    assert_false(b->created);
    assert_string_equal(b->user_id, user);
    e2e_client_free(b);
}

static void email_login_creates_then_checks_the_password(void **state)
{
    char dev[40], email[80];
    e2e_device_id(dev);
    snprintf(email, sizeof email, "Player.%s@Example.com", dev + 4);
    e2e_client *c = e2e_client_new(e2e_group_server.port, 0, 0);
    kaos_client_auth_email(c->c, email, "correct horse", NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->sessions == 1 || c->errors, 10000);
    assert_int_equal(c->sessions, 1);
    assert_true(c->created);
    char user[40];
    strcpy(user, c->user_id);

    /* same account, other case: emails compare case-insensitively */
    for (char *p = email; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    kaos_client_auth_email(c->c, email, "correct horse", NULL, false, NULL, e2e_on_session, c);
    E2E_WAIT(c->sessions == 2 || c->errors, 10000);
    assert_int_equal(c->sessions, 2);
    assert_false(c->created);
    assert_string_equal(c->user_id, user);

    kaos_client_auth_email(c->c, email, "wrong horse", NULL, false, NULL, e2e_on_session, c);
    E2E_WAIT(c->errors == 1, 10000);
    assert_int_equal(c->error_code, 16);
    assert_string_equal(c->error_message, "invalid credentials");

    kaos_client_auth_email(c->c, "nobody.here@example.com", "whatever1", NULL, false, NULL,
                           e2e_on_session, c);
    E2E_WAIT(c->errors == 2, 10000);
    assert_int_equal(c->error_code, 5);

    kaos_client_auth_email(c->c, "bad-email", "short", NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->errors == 3, 10000);
    assert_int_equal(c->error_code, 3);
    e2e_client_free(c);
}

static void custom_id_login_finds_the_same_user(void **state)
{
    char dev[40], id[64];
    e2e_device_id(dev);
    snprintf(id, sizeof id, "steam-%s", dev + 4);
    e2e_client *c = e2e_client_new(e2e_group_server.port, 0, 0);
    kaos_client_auth_custom(c->c, id, NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->sessions == 1 || c->errors, 10000);
    assert_int_equal(c->sessions, 1);
    assert_true(c->created);
    char user[40];
    strcpy(user, c->user_id);
    kaos_client_auth_custom(c->c, id, NULL, false, NULL, e2e_on_session, c);
    E2E_WAIT(c->sessions == 2, 10000);
    assert_string_equal(c->user_id, user);
    kaos_client_auth_custom(c->c, "tiny", NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->errors == 1, 10000);
    assert_int_equal(c->error_code, 3);
    e2e_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(device_auth_creates_user_then_finds_it),
        cmocka_unit_test(unknown_device_without_create_is_not_found),
        cmocka_unit_test(taken_username_and_bad_device_ids_are_refused),
        cmocka_unit_test(refresh_rotates_tokens_and_keeps_the_user),
        cmocka_unit_test(an_old_refresh_token_is_refused_after_rotation),
        cmocka_unit_test(logout_kills_the_refresh_token_and_resume),
        cmocka_unit_test(resume_binds_a_new_connection_to_the_session),
        cmocka_unit_test(tampered_or_wrong_kind_of_token_is_unauthenticated),
        cmocka_unit_test(expired_session_token_is_refused),
        cmocka_unit_test(email_login_creates_then_checks_the_password),
        cmocka_unit_test(custom_id_login_finds_the_same_user),
        cmocka_unit_test(same_device_gets_same_user_after_restart),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
