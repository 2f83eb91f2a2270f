/* End to end: notifications over real UDP with SDK clients — a friend
 * invite pushes a -2 notification live to the invited user and the accept
 * pushes -3 to the inviter; a user offline when invited lists the stored
 * notification after logging in; a list with the cacheable cursor returns
 * only what is new; delete removes one's own; the kaos.notification*
 * functions run through an RPC (tests/e2e/lua/notify_test.lua); a friend removed
 * gets -6; kaos.notification_send_all reaches both users online and waits
 * in the list for one offline. Nothing assumes one network
 * thread: CI runs this file again with KAOS_NET_THREADS=2, where the
 * inviter's and the invited user's connections may sit on different ones. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* What one client saw of notifications: the live pushes and the last list. */
typedef struct seen {
    e2e_client *e;
    int pushes, pushed; /* events, notifications in them */
    int push_codes[8];
    char push_senders[8][40];
    int lists, list_errors, list_error_code;
    size_t listed;
    int list_codes[8];
    char list_ids[8][40], list_senders[8][40], list_subjects[8][64];
    char cursor[128];
} seen;

static void on_push(kaos_client *k, const kaos_notification *n, size_t count, void *ud)
{
    (void)k;
    seen *s = ud;
    s->pushes++;
    for (size_t i = 0; i < count; i++, s->pushed++) {
        if (s->pushed >= 8) continue;
        s->push_codes[s->pushed] = n[i].code;
        snprintf(s->push_senders[s->pushed], sizeof s->push_senders[0], "%s", n[i].sender_id);
    }
}

static void on_list(kaos_client *k, const kaos_result *r, const kaos_notification *n, size_t count,
                    const char *cursor, void *ud)
{
    (void)k;
    seen *s = ud;
    if (r->code) {
        s->list_errors++;
        s->list_error_code = r->code;
        s->lists++;
        return;
    }
    s->listed = count;
    for (size_t i = 0; i < count && i < 8; i++) {
        s->list_codes[i] = n[i].code;
        snprintf(s->list_ids[i], sizeof s->list_ids[0], "%s", n[i].id);
        snprintf(s->list_senders[i], sizeof s->list_senders[0], "%s", n[i].sender_id);
        snprintf(s->list_subjects[i], sizeof s->list_subjects[0], "%s", n[i].subject);
        assert_true(n[i].create_time > 1600000000);
        assert_string_equal(n[i].content, "{}");
    }
    snprintf(s->cursor, sizeof s->cursor, "%s", cursor);
    s->lists++;
}

static seen *watch(e2e_client *e)
{
    seen *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->e = e;
    kaos_client_on_notifications(e->c, on_push, s);
    return s;
}

static void unwatch(seen *s)
{
    e2e_client_free(s->e);
    free(s);
}

static void add(e2e_client *c, const char *id)
{
    int acks = c->acks, errors = c->errors;
    assert_true(kaos_client_friends_add(c->c, &id, 1, NULL, 0, e2e_on_done, c) > 0);
    E2E_WAIT(c->acks > acks || c->errors > errors, 15000);
    assert_int_equal(c->errors, errors);
}

/* Lists s's notifications after cursor; returns the error code (0 = ok). */
static int list(seen *s, uint32_t limit, const char *cursor)
{
    int lists = s->lists, errors = s->list_errors;
    assert_true(kaos_client_notifications_list(s->e->c, limit, cursor, on_list, s) > 0);
    E2E_WAIT(s->lists > lists, 15000);
    return s->list_errors > errors ? s->list_error_code : 0;
}

static void a_friend_invite_and_its_accept_are_pushed_live(void **state)
{
    (void)state;
    seen *a = watch(e2e_player(e2e_group_server.port, 0));
    seen *b = watch(e2e_player(e2e_group_server.port, 0));
    add(a->e, b->e->user_id);
    E2E_WAIT(b->pushes == 1, 15000);
    assert_int_equal(b->pushed, 1);
    assert_int_equal(b->push_codes[0], -2);
    assert_string_equal(b->push_senders[0], a->e->user_id);
    add(b->e, a->e->user_id); /* accepts */
    E2E_WAIT(a->pushes == 1, 15000);
    assert_int_equal(a->push_codes[0], -3);
    assert_string_equal(a->push_senders[0], b->e->user_id);
    e2e_pump_for(200);
    assert_int_equal(b->pushes, 1); /* the acceptor is not told of its own accept */
    /* Both are stored. */
    assert_int_equal(list(b, 0, NULL), 0);
    assert_int_equal(b->listed, 1);
    assert_string_equal(b->list_subjects[0], "friend request received");
    assert_int_equal(list(a, 0, NULL), 0);
    assert_int_equal(a->listed, 1);
    assert_int_equal(a->list_codes[0], -3);
    unwatch(a);
    unwatch(b);
}

static void removing_a_friend_pushes_friend_removed_to_them_and_stores_it(void **state)
{
    (void)state;
    seen *a = watch(e2e_player(e2e_group_server.port, 0));
    seen *b = watch(e2e_player(e2e_group_server.port, 0));
    add(a->e, b->e->user_id);
    add(b->e, a->e->user_id);
    E2E_WAIT(b->pushes == 1 && a->pushes == 1, 15000);
    const char *bid = b->e->user_id;
    int acks = a->e->acks;
    assert_true(kaos_client_friends_delete(a->e->c, &bid, 1, NULL, 0, e2e_on_done, a->e) > 0);
    E2E_WAIT(a->e->acks > acks, 15000);
    E2E_WAIT(b->pushes == 2, 15000);
    assert_int_equal(b->push_codes[1], -6);
    assert_string_equal(b->push_senders[1], a->e->user_id);
    assert_int_equal(list(b, 0, NULL), 0);
    assert_int_equal(b->listed, 2);
    assert_int_equal(b->list_codes[1], -6);
    assert_string_equal(b->list_subjects[1], "friend removed");
    /* deleting what is no longer a friendship (nothing, or an invite) tells nobody */
    add(a->e, b->e->user_id);
    E2E_WAIT(b->pushes == 3, 15000);
    acks = a->e->acks;
    assert_true(kaos_client_friends_delete(a->e->c, &bid, 1, NULL, 0, e2e_on_done, a->e) > 0);
    E2E_WAIT(a->e->acks > acks, 15000);
    e2e_pump_for(200);
    assert_int_equal(b->pushes, 3);
    assert_int_equal(a->pushes, 1);
    unwatch(a);
    unwatch(b);
}

static void an_offline_user_lists_the_invite_later_and_the_cursor_shows_only_news(void **state)
{
    (void)state;
    char device[40];
    e2e_device_id(device);
    e2e_client *c0 = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(c0, device);
    char c_id[40];
    snprintf(c_id, sizeof c_id, "%s", c0->user_id);
    e2e_client_free(c0);

    seen *a = watch(e2e_player(e2e_group_server.port, 0));
    seen *b = watch(e2e_player(e2e_group_server.port, 0));
    add(a->e, c_id);

    e2e_client *c1 = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(c1, device);
    assert_string_equal(c1->user_id, c_id);
    seen *c = watch(c1);
    assert_int_equal(list(c, 0, NULL), 0);
    assert_int_equal(c->listed, 1);
    assert_int_equal(c->list_codes[0], -2);
    assert_string_equal(c->list_senders[0], a->e->user_id);
    assert_string_not_equal(c->cursor, "");
    char cursor[128];
    snprintf(cursor, sizeof cursor, "%s", c->cursor);

    /* Nothing new: an empty page and the same cursor back. */
    assert_int_equal(list(c, 0, cursor), 0);
    assert_int_equal(c->listed, 0);
    assert_string_equal(c->cursor, cursor);

    /* A second invite, this time live; the cached cursor lists only it. */
    add(b->e, c_id);
    E2E_WAIT(c->pushes == 1, 15000);
    assert_int_equal(list(c, 0, cursor), 0);
    assert_int_equal(c->listed, 1);
    assert_string_equal(c->list_senders[0], b->e->user_id);

    /* A garbled cursor and a limit over 100 are refused. */
    assert_int_equal(list(c, 0, "garbage"), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(list(c, 101, NULL), KAOS_ERR_INVALID_ARGUMENT);

    /* Delete: b's id is ignored for a, c's own goes. */
    assert_int_equal(list(c, 0, NULL), 0);
    assert_int_equal(c->listed, 2);
    const char *first = c->list_ids[0];
    int acks = a->e->acks;
    assert_true(kaos_client_notifications_delete(a->e->c, &first, 1, e2e_on_done, a->e) > 0);
    E2E_WAIT(a->e->acks > acks, 15000);
    acks = c->e->acks;
    assert_true(kaos_client_notifications_delete(c->e->c, &first, 1, e2e_on_done, c->e) > 0);
    E2E_WAIT(c->e->acks > acks, 15000);
    assert_int_equal(list(c, 0, NULL), 0);
    assert_int_equal(c->listed, 1);
    assert_string_equal(c->list_senders[0], b->e->user_id);
    unwatch(a);
    unwatch(b);
    unwatch(c);
}

static void lua_functions_send_list_and_delete(void **state)
{
    (void)state;
    seen *a = watch(e2e_player(e2e_group_server.port, 0));
    seen *b = watch(e2e_player(e2e_group_server.port, 0));
    int before = a->e->rpcs;
    assert_true(kaos_client_rpc_call(a->e->c, "notify_lua", b->e->user_id, e2e_on_rpc, a->e) > 0);
    E2E_WAIT(a->e->rpcs > before || a->e->errors > 0, 15000);
    assert_int_equal(a->e->errors, 0);
    char first[160];
    snprintf(first, sizeof first, "\"first\":\"hi 7 %s 1 true\"", a->e->user_id);
    const char *expect[] = {
        "\"send\":\"ok\"",    "\"send_many\":\"ok\"",
        "\"listed\":1",       first,
        "\"after_cursor\":0", "\"reserved\":\"3 notification 0: negative codes are reserved",
        "\"delete\":\"ok\"",  "\"after_delete\":0"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (!strstr(a->e->rpc_payload, expect[i]))
            fail_msg("%s not in %s", expect[i], a->e->rpc_payload);
    /* Both were pushed live to b, in two envelopes (two sends). */
    E2E_WAIT(b->pushes == 2, 15000);
    assert_int_equal(b->push_codes[0], 7);
    assert_int_equal(b->push_codes[1], 8);
    unwatch(a);
    unwatch(b);
}

/* Runs kaos.notification_send_all through caller's RPC ("persistent" or "live"). */
static void send_all(seen *caller, const char *kind)
{
    int before = caller->e->rpcs;
    assert_true(kaos_client_rpc_call(caller->e->c, "notify_all", kind, e2e_on_rpc, caller->e) > 0);
    E2E_WAIT(caller->e->rpcs > before || caller->e->errors > 0, 15000);
    assert_int_equal(caller->e->errors, 0);
    assert_string_equal(caller->e->rpc_payload, "ok");
}

/* Last in the group: what it stores reaches every user made before it. */
static void send_all_reaches_everyone_online_and_waits_for_whoever_is_not(void **state)
{
    (void)state;
    char device[40];
    e2e_device_id(device);
    e2e_client *c0 = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(c0, device);
    e2e_client_free(c0); /* offline from here */
    seen *a = watch(e2e_player(e2e_group_server.port, 0));
    seen *b = watch(e2e_player(e2e_group_server.port, 0));
    send_all(a, "persistent");
    E2E_WAIT(a->pushes == 1 && b->pushes == 1, 15000);
    assert_int_equal(a->push_codes[0], 9);
    assert_int_equal(b->push_codes[0], 9);
    assert_string_equal(b->push_senders[0], "");
    assert_int_equal(list(b, 0, NULL), 0);
    assert_int_equal(b->listed, 1);
    assert_string_equal(b->list_subjects[0], "to everyone persistent");
    /* live only: pushed to both, stored for nobody */
    send_all(b, "live");
    E2E_WAIT(a->pushes == 2 && b->pushes == 2, 15000);
    assert_int_equal(list(a, 0, NULL), 0);
    assert_int_equal(a->listed, 1);
    /* the offline user finds the persistent one on its next login */
    e2e_client *c1 = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(c1, device);
    seen *c = watch(c1);
    assert_int_equal(list(c, 0, NULL), 0);
    assert_int_equal(c->listed, 1);
    assert_int_equal(c->list_codes[0], 9);
    assert_string_equal(c->list_subjects[0], "to everyone persistent");
    assert_int_equal(c->pushes, 0);
    unwatch(a);
    unwatch(b);
    unwatch(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_friend_invite_and_its_accept_are_pushed_live),
        cmocka_unit_test(removing_a_friend_pushes_friend_removed_to_them_and_stores_it),
        cmocka_unit_test(an_offline_user_lists_the_invite_later_and_the_cursor_shows_only_news),
        cmocka_unit_test(lua_functions_send_list_and_delete),
        cmocka_unit_test(send_all_reaches_everyone_online_and_waits_for_whoever_is_not),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_test_modules,
                                  e2e_group_teardown_with_test_modules);
}
