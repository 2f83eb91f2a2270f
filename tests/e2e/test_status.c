/* End to end: the status service and the script streams over real UDP with
 * SDK clients. A follows nobody and B follows A: A appearing online
 * (kaos_client_config.appear_online), setting a status, changing it,
 * disconnecting, reconnecting with a resume (appearing online again) and
 * closing reach B as status presence joins and leaves; a late
 * follower gets A's presence in the follow's answer; a user who blocked B
 * cannot be followed (no presence, no later events) and a block made later
 * ends the blocked user's follow; follow by username;
 * unfollow; refusals with their codes and messages (invalid UTF-8, too
 * many ids, a before hook on status_follow). Streams: RPCs of
 * tests/e2e/lua/stream_test.lua put two clients on a mode-8 stream and
 * send to it (StreamPresenceEvent, StreamData). Nothing assumes one network
 * thread: CI runs this file again with KAOS_NET_THREADS=2. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* What one client saw of status and streams. */
#define MAX_SEEN 16
typedef struct seen {
    e2e_client *e;
    /* follow answers */
    int follows;
    size_t online;
    char online_user[40], online_status[64], online_name[130];
    /* status presence events: "+<user-prefix>:<status>" / "-..." per presence, in order */
    int events;
    char log[2048];
    /* stream events */
    int stream_events, stream_joins, stream_leaves;
    char stream_last[256];
    int stream_data;
    char data_last[256];
} seen;

static seen *watch(e2e_client *e)
{
    seen *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->e = e;
    return s;
}

static void on_follow(kaos_client *k, const kaos_result *r, const kaos_user_presence *p, size_t n,
                      void *ud)
{
    seen *s = ud;
    if (r->code < 0) {
        e2e_on_done(k, r, s->e); /* records the error */
        return;
    }
    s->follows++;
    s->online = n;
    if (!n) return;
    snprintf(s->online_user, sizeof s->online_user, "%s", p[0].user_id);
    snprintf(s->online_status, sizeof s->online_status, "%s", p[0].status);
    snprintf(s->online_name, sizeof s->online_name, "%s", p[0].username);
}

static void log_presences(seen *s, char sign, const kaos_user_presence *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(s->log);
        snprintf(s->log + len, sizeof s->log - len, "%c%.8s:%s;", sign, p[i].user_id, p[i].status);
    }
}

static void on_status_presence(kaos_client *k, const kaos_user_presence *joins, size_t nj,
                               const kaos_user_presence *leaves, size_t nl, void *ud)
{
    (void)k;
    seen *s = ud;
    s->events++;
    log_presences(s, '-', leaves, nl);
    log_presences(s, '+', joins, nj);
}

static void on_stream_presence(kaos_client *k, const kaos_stream *st,
                               const kaos_user_presence *joins, size_t nj,
                               const kaos_user_presence *leaves, size_t nl, void *ud)
{
    (void)k;
    seen *s = ud;
    s->stream_events++;
    s->stream_joins += (int)nj;
    s->stream_leaves += (int)nl;
    const kaos_user_presence *p = nj ? &joins[0] : &leaves[0];
    snprintf(s->stream_last, sizeof s->stream_last, "%u/%s/%s/%s %c%s:%s", st->mode, st->subject,
             st->subcontext, st->label, nj ? '+' : '-', p->username, p->status);
}

static void on_stream_data(kaos_client *k, const kaos_stream *st, const kaos_user_presence *sender,
                           const uint8_t *data, size_t len, bool reliable, void *ud)
{
    (void)k;
    seen *s = ud;
    s->stream_data++;
    snprintf(s->data_last, sizeof s->data_last, "%u/%s %s %.*s %d", st->mode, st->label,
             sender ? sender->username : "(server)", (int)len, (const char *)data, reliable);
}

static void listen_to(seen *s)
{
    kaos_client_on_status_presence(s->e->c, on_status_presence, s);
    kaos_client_on_stream_presence(s->e->c, on_stream_presence, s);
    kaos_client_on_stream_data(s->e->c, on_stream_data, s);
}

static e2e_client *player(void)
{
    return e2e_player(e2e_group_server.port, 0);
}

/* A publisher a and two players b and c listening to status and streams. */
static void three(e2e_client **a, seen **b, seen **c)
{
    *a = player();
    *b = watch(player());
    *c = watch(player());
    listen_to(*b);
    listen_to(*c);
}

static void free_three(e2e_client *a, seen *b, seen *c)
{
    e2e_client_free(a);
    e2e_client_free(b->e);
    e2e_client_free(c->e);
    free(b);
    free(c);
}

static int follow(seen *s, const char *id, const char *username)
{
    e2e_client *c = s->e;
    return e2e_answer(c, &s->follows, s->follows, c->errors,
                      kaos_client_status_follow(c->c, id ? &id : NULL, id ? 1 : 0,
                                                username ? &username : NULL, username ? 1 : 0,
                                                on_follow, s));
}

static int update(e2e_client *c, const char *status)
{
    return E2E_ACKED(c, kaos_client_status_update(c->c, status, e2e_on_done, c));
}

/* Waits until s's event log reads `want`. */
#define LOG_IS(s, want) E2E_WAIT(!strcmp((s)->log, (want)), 15000)

/* "+<first 8 of id>:<status>;" */
static void entry(char *out, size_t cap, char sign, const char *id, const char *status)
{
    snprintf(out, cap, "%c%.8s:%s;", sign, id, status);
}

static void a_follower_sees_its_user_come_online_change_status_and_leave(void **state)
{
    (void)state;
    /* A's account exists (a first login), then A goes away. */
    char device[40];
    e2e_device_id(device);
    e2e_client *first = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(first, device);
    char a_id[40];
    snprintf(a_id, sizeof a_id, "%s", first->user_id);
    e2e_client_free(first);

    seen *b = watch(player());
    listen_to(b);
    assert_int_equal(follow(b, a_id, NULL), 0);
    assert_int_equal(b->online, 0); /* A is offline */

    /* A logs in with appear_online: B sees A come online without a status. */
    e2e_client *a = e2e_client_new_appear_online(e2e_group_server.port);
    e2e_auth(a, device);
    assert_string_equal(a->user_id, a_id);
    char want[512], e1[64], e2[64];
    entry(e1, sizeof e1, '+', a_id, "");
    LOG_IS(b, e1);

    /* A sets a status: a leave of the old presence and a join of the new. */
    assert_int_equal(update(a, "playing"), 0);
    entry(e2, sizeof e2, '-', a_id, "");
    snprintf(want, sizeof want, "%s%s", e1, e2);
    entry(e1, sizeof e1, '+', a_id, "playing");
    strncat(want, e1, sizeof want - strlen(want) - 1);
    LOG_IS(b, want);

    /* A late follower gets A's presence, status included, in the answer. */
    seen *c = watch(player());
    listen_to(c);
    assert_int_equal(follow(c, a_id, NULL), 0);
    assert_int_equal(c->online, 1);
    assert_string_equal(c->online_user, a_id);
    assert_string_equal(c->online_status, "playing");
    assert_string_equal(c->online_name, a->username);

    /* A changes status: both followers see the leave and the join, and
     * followers never hear of each other. */
    assert_int_equal(update(a, "away"), 0);
    entry(e2, sizeof e2, '-', a_id, "playing");
    entry(e1, sizeof e1, '+', a_id, "away");
    strncat(want, e2, sizeof want - strlen(want) - 1);
    strncat(want, e1, sizeof want - strlen(want) - 1);
    LOG_IS(b, want);
    char c_want[256];
    snprintf(c_want, sizeof c_want, "%s%s", e2, e1);
    LOG_IS(c, c_want);

    /* A disconnects: a leave. */
    assert_int_equal(kaos_client_disconnect(a->c), KAOS_OK);
    E2E_WAIT(a->disconnected, 15000);
    entry(e2, sizeof e2, '-', a_id, "away");
    strncat(want, e2, sizeof want - strlen(want) - 1);
    LOG_IS(b, want);
    strncat(c_want, e2, sizeof c_want - strlen(c_want) - 1);
    LOG_IS(c, c_want);

    /* A reconnects and resumes its session: appear_online publishes again. */
    a->disconnected = false;
    assert_int_equal(kaos_client_connect(a->c), KAOS_OK);
    E2E_WAIT(a->connected, 15000);
    int sessions = a->sessions;
    assert_true(kaos_client_session_resume(a->c, a->token, e2e_on_session, a) > 0);
    E2E_WAIT(a->sessions > sessions, 15000);
    entry(e1, sizeof e1, '+', a_id, "");
    strncat(want, e1, sizeof want - strlen(want) - 1);
    LOG_IS(b, want);

    /* A's connection closes: a leave again. */
    e2e_client_free(a);
    entry(e2, sizeof e2, '-', a_id, "");
    strncat(want, e2, sizeof want - strlen(want) - 1);
    LOG_IS(b, want);
    free_three(NULL, b, c);
}

static void appearing_offline_is_a_leave_and_unfollowing_stops_the_events(void **state)
{
    (void)state;
    e2e_client *a;
    seen *b, *c;
    three(&a, &b, &c);
    assert_int_equal(follow(b, a->user_id, NULL), 0);
    assert_int_equal(follow(c, NULL, a->username), 0); /* by username */
    assert_int_equal(update(a, "hi"), 0);
    char e1[64], e2[64], want[256];
    entry(e1, sizeof e1, '+', a->user_id, "hi");
    LOG_IS(b, e1);
    LOG_IS(c, e1);
    assert_int_equal(update(a, NULL), 0); /* appear offline */
    entry(e2, sizeof e2, '-', a->user_id, "hi");
    snprintf(want, sizeof want, "%s%s", e1, e2);
    LOG_IS(b, want);
    LOG_IS(c, want);

    const char *aid = a->user_id;
    assert_int_equal(
        E2E_ACKED(b->e, kaos_client_status_unfollow(b->e->c, &aid, 1, e2e_on_done, b->e)), 0);
    assert_int_equal(update(a, "again"), 0);
    entry(e1, sizeof e1, '+', a->user_id, "again");
    strncat(want, e1, sizeof want - strlen(want) - 1);
    LOG_IS(c, want); /* c still follows; b no longer hears */
    e2e_pump_for(300);
    assert_int_equal(b->events, 2);
    free_three(a, b, c);
}

static void a_user_who_blocked_the_follower_cannot_be_followed(void **state)
{
    (void)state;
    e2e_client *a;
    seen *b, *c;
    three(&a, &b, &c);
    const char *bid = b->e->user_id;
    assert_int_equal(
        E2E_ACKED(a, kaos_client_friends_block(a->c, &bid, 1, NULL, 0, e2e_on_done, a)), 0);
    assert_int_equal(update(a, "busy"), 0);
    /* By id or by username: no presence, no error (the block stays secret). */
    assert_int_equal(follow(b, a->user_id, NULL), 0);
    assert_int_equal(b->online, 0);
    assert_int_equal(follow(b, NULL, a->username), 0);
    assert_int_equal(b->online, 0);
    assert_int_equal(follow(c, a->user_id, NULL), 0);
    assert_int_equal(c->online, 1);
    assert_string_equal(c->online_status, "busy");
    /* Later changes reach c, never b. */
    assert_int_equal(update(a, "free"), 0);
    char e1[64], e2[64], want[256];
    entry(e2, sizeof e2, '-', a->user_id, "busy");
    entry(e1, sizeof e1, '+', a->user_id, "free");
    snprintf(want, sizeof want, "%s%s", e2, e1);
    LOG_IS(c, want);
    e2e_pump_for(300);
    assert_int_equal(b->events, 0);
    free_three(a, b, c);
}

/* A block made while B follows A ends B's follow: A's next change reaches
 * only C. */
static void a_later_block_ends_the_blocked_users_follow(void **state)
{
    (void)state;
    e2e_client *a;
    seen *b, *c;
    three(&a, &b, &c);
    assert_int_equal(follow(b, a->user_id, NULL), 0);
    assert_int_equal(follow(c, a->user_id, NULL), 0);
    assert_int_equal(update(a, "one"), 0);
    char e1[64], e2[64], want[256];
    entry(e1, sizeof e1, '+', a->user_id, "one");
    LOG_IS(b, e1);
    LOG_IS(c, e1);
    const char *bname = b->e->username;
    assert_int_equal(
        E2E_ACKED(a, kaos_client_friends_block(a->c, NULL, 0, &bname, 1, e2e_on_done, a)), 0);
    assert_int_equal(update(a, "two"), 0);
    entry(e2, sizeof e2, '-', a->user_id, "one");
    snprintf(want, sizeof want, "%s%s", e1, e2);
    entry(e1, sizeof e1, '+', a->user_id, "two");
    strncat(want, e1, sizeof want - strlen(want) - 1);
    LOG_IS(c, want);
    e2e_pump_for(300);
    assert_int_equal(b->events, 1); /* only the first join */
    free_three(a, b, c);
}

static void bad_requests_are_refused_with_their_code_and_message(void **state)
{
    (void)state;
    e2e_client *a = player();
    seen *s = watch(a);
    assert_int_equal(update(a, "bad \xff byte"), -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message,
                        "status must be at most 2048 bytes of UTF-8 without control characters");
    assert_int_equal(follow(s, NULL, "forbidden_x"), -KAOS_ERR_PERMISSION_DENIED); /* the hook */
    assert_string_equal(a->error_message, "following forbidden_x is not allowed here");
    assert_int_equal(follow(s, "not-a-uuid", NULL), -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "id 0 is not a UUID");
    static const char *many[101];
    for (int i = 0; i < 101; i++)
        many[i] = a->user_id;
    assert_int_equal(e2e_answer(a, &s->follows, s->follows, a->errors,
                                kaos_client_status_follow(a->c, many, 101, NULL, 0, on_follow, s)),
                     -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "at most 100 ids and 100 usernames per call");
    assert_int_equal(E2E_ACKED(a, kaos_client_status_unfollow(a->c, many, 101, e2e_on_done, a)),
                     -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "at most 100 ids per call");
    /* Following oneself or nobody: an empty answer. */
    assert_int_equal(follow(s, a->user_id, NULL), 0);
    assert_int_equal(s->online, 0);
    e2e_client_free(a);
    free(s);
}

static int rpc(e2e_client *c, const char *id, const char *payload)
{
    int before = c->rpcs, errors = c->errors;
    assert_true(kaos_client_rpc_call(c->c, id, payload, e2e_on_rpc, c) > 0);
    E2E_WAIT(c->rpcs > before || c->errors > errors, 15000);
    if (c->errors > errors) fail_msg("%s: %d %s", id, c->error_code, c->error_message);
    return atoi(c->rpc_payload);
}

static void scripts_put_sessions_on_a_stream_and_send_to_it(void **state)
{
    (void)state;
    seen *x = watch(player()), *y = watch(player());
    listen_to(x);
    listen_to(y);
    assert_int_equal(rpc(x->e, "stream_test_join", "lobby"), 1);
    assert_int_equal(rpc(y->e, "stream_test_join", "lobby"), 2);
    char want[256];
    snprintf(want, sizeof want, "8/e2e-room//lobby +%s:here", y->e->username);
    E2E_WAIT(x->stream_joins == 1, 15000);
    assert_string_equal(x->stream_last, want);
    assert_int_equal(y->stream_events, 0); /* a joiner hears of later joins only */

    assert_int_equal(rpc(y->e, "stream_test_send", "lobby"), 2);
    snprintf(want, sizeof want, "8/lobby (server) lobby:%s 1", y->e->username);
    E2E_WAIT(x->stream_data == 1 && y->stream_data == 1, 15000);
    assert_string_equal(x->data_last, want);
    assert_string_equal(y->data_last, want);

    /* y leaves by script, then x leaves by disconnecting: each time the
     * other hears a leave. */
    assert_int_equal(rpc(y->e, "stream_test_leave", "lobby"), 1);
    E2E_WAIT(x->stream_leaves == 1, 15000);
    snprintf(want, sizeof want, "8/e2e-room//lobby -%s:here", y->e->username);
    assert_string_equal(x->stream_last, want);
    assert_int_equal(rpc(y->e, "stream_test_join", "lobby"), 2);
    E2E_WAIT(x->stream_joins == 2, 15000);
    e2e_client_free(x->e);
    E2E_WAIT(y->stream_leaves == 1, 15000);
    assert_int_equal(rpc(y->e, "stream_test_send", "lobby"), 1);
    E2E_WAIT(y->stream_data == 2, 15000);
    e2e_client_free(y->e);
    free(x);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_follower_sees_its_user_come_online_change_status_and_leave),
        cmocka_unit_test(appearing_offline_is_a_leave_and_unfollowing_stops_the_events),
        cmocka_unit_test(a_user_who_blocked_the_follower_cannot_be_followed),
        cmocka_unit_test(a_later_block_ends_the_blocked_users_follow),
        cmocka_unit_test(bad_requests_are_refused_with_their_code_and_message),
        cmocka_unit_test(scripts_put_sessions_on_a_stream_and_send_to_it),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_test_modules,
                                  e2e_group_teardown_with_test_modules);
}
