/* End to end: single session (--single-session). A second login of the
 * same user tells the first connection "another session took over" (-7,
 * live only) and then closes it with DISCONNECT_SESSION_REPLACED; the first
 * session's token no longer resumes and its refresh token no longer
 * refreshes; a resume of the surviving session
 * elsewhere moves it there. Two logins racing leave exactly one connection.
 * Nothing assumes one network thread: CI runs this file again with
 * KAOS_NET_THREADS=2. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int setup(void **state)
{
    (void)state;
    e2e_server_init(&e2e_group_server);
    const char *extra[] = {"--single-session", NULL};
    e2e_server_start(&e2e_group_server, extra);
    return 0;
}

/* What one client was told before it went. */
typedef struct told {
    e2e_client *e;
    int notices, code;
    char subject[64];
    bool disconnected_first; /* the disconnect came before the notice */
} told;

static void on_push(kaos_client *k, const kaos_notification *n, size_t count, void *ud)
{
    (void)k;
    told *t = ud;
    for (size_t i = 0; i < count; i++) {
        t->notices++;
        t->code = n[i].code;
        snprintf(t->subject, sizeof t->subject, "%s", n[i].subject);
        assert_false(n[i].persistent);
        if (t->e->disconnected) t->disconnected_first = true;
    }
}

static told *client(void)
{
    told *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->e = e2e_client_new(e2e_group_server.port, 0, 0);
    kaos_client_on_notifications(t->e->c, on_push, t);
    return t;
}

static void drop(told *t)
{
    e2e_client_free(t->e);
    free(t);
}

static void a_second_login_tells_the_first_then_closes_it_and_its_token_dies(void **state)
{
    (void)state;
    char dev[40];
    e2e_device_id(dev);
    told *a = client(), *b = client();
    e2e_auth(a->e, dev);
    e2e_auth(b->e, dev);
    assert_string_equal(a->e->user_id, b->e->user_id);
    E2E_WAIT(a->e->disconnected, 10000);
    assert_int_equal(a->e->disconnect_reason, KAOS_DISCONNECT_SESSION_REPLACED);
    assert_int_equal(a->notices, 1);
    assert_int_equal(a->code, -7);
    assert_string_equal(a->subject, "another session took over");
    assert_false(a->disconnected_first);
    assert_int_equal(b->notices, 0);
    assert_false(b->e->disconnected);
    /* A's token is revoked: a resume elsewhere is refused with why */
    told *c = client();
    assert_true(kaos_client_session_resume(c->e->c, a->e->token, e2e_on_session, c->e) > 0);
    E2E_WAIT(c->e->errors == 1 || c->e->sessions == 1, 10000);
    assert_int_equal(c->e->sessions, 0);
    assert_int_equal(c->e->error_code, 16); /* UNAUTHENTICATED */
    assert_string_equal(c->e->error_message, "session token revoked (another session took over)");
    /* and its refresh token: A reconnects with the session it kept and tries it */
    assert_int_equal(kaos_client_connect(a->e->c), KAOS_OK);
    E2E_WAIT(a->e->connected, 10000);
    int errors = a->e->errors;
    assert_true(kaos_client_session_refresh(a->e->c, e2e_on_session, a->e) > 0);
    E2E_WAIT(a->e->errors > errors || a->e->sessions > 1, 10000);
    assert_int_equal(a->e->sessions, 1);
    assert_int_equal(a->e->error_code, 16);
    assert_string_equal(a->e->error_message, "refresh token already used or revoked");
    /* B's session resumed on another connection moves there; it stays valid */
    told *d = client();
    assert_true(kaos_client_session_resume(d->e->c, b->e->token, e2e_on_session, d->e) > 0);
    E2E_WAIT(d->e->sessions == 1 || d->e->errors == 1, 10000);
    assert_int_equal(d->e->sessions, 1);
    E2E_WAIT(b->e->disconnected, 10000);
    assert_int_equal(b->e->disconnect_reason, KAOS_DISCONNECT_SESSION_REPLACED);
    assert_int_equal(b->notices, 1);
    e2e_pump_for(200);
    assert_false(d->e->disconnected);
    drop(a);
    drop(b);
    drop(c);
    drop(d);
}

static void two_logins_racing_leave_exactly_one_connection(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        char dev[40];
        e2e_device_id(dev);
        told *a = client(), *b = client();
        /* both requests out before either answer is read */
        assert_true(kaos_client_auth_device(a->e->c, dev, NULL, true, NULL, e2e_on_session, a->e) >
                    0);
        assert_true(kaos_client_auth_device(b->e->c, dev, NULL, true, NULL, e2e_on_session, b->e) >
                    0);
        E2E_WAIT(a->e->disconnected || b->e->disconnected, 10000);
        e2e_pump_for(300);
        assert_true(a->e->disconnected != b->e->disconnected);
        told *gone = a->e->disconnected ? a : b, *kept = a->e->disconnected ? b : a;
        assert_int_equal(gone->e->disconnect_reason, KAOS_DISCONNECT_SESSION_REPLACED);
        assert_int_equal(gone->notices, 1);
        assert_int_equal(kept->notices, 0);
        assert_int_equal(kept->e->sessions, 1);
        /* the survivor is served */
        int acks = kept->e->acks;
        assert_true(kaos_client_notifications_delete(kept->e->c, NULL, 0, e2e_on_done, kept->e) >
                    0);
        E2E_WAIT(kept->e->acks > acks, 10000);
        drop(a);
        drop(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_second_login_tells_the_first_then_closes_it_and_its_token_dies),
        cmocka_unit_test(two_logins_racing_leave_exactly_one_connection),
    };
    return cmocka_run_group_tests(tests, setup, e2e_group_teardown);
}
