/* End to end: the friends service over real UDP with SDK clients — an
 * invite seen by both sides, its acceptance, lists by state with their
 * cursor, a block and its removal, refusals with their codes, and a before
 * hook on FriendsAdd refusing a request, and the kaos.friends_* functions
 * through an RPC (both in tests/e2e/lua/friends_test.lua); metadata on add,
 * update and list, friends of friends paged (and a before hook on
 * FriendsOfFriendsList refusing one), and kaos.friend_metadata_update and
 * kaos.friends_of_friends_list through an RPC.
 *
 * The runtime path is a directory of links to the .lua files of
 * tests/e2e/lua/. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static e2e_client *player(void)
{
    return e2e_player(e2e_group_server.port, 0);
}

#define LISTED(c, call)                                                                            \
    e2e_answer((c), &(c)->friends_answers, (c)->friends_answers, (c)->errors, (call))

static int add(e2e_client *c, const char *id, const char *username)
{
    return E2E_ACKED(c, kaos_client_friends_add(c->c, id ? &id : NULL, id ? 1 : 0,
                                                username ? &username : NULL, username ? 1 : 0,
                                                e2e_on_done, c));
}

/* Lists c's relationships in `state` (-1 = all); the page lands in c. */
static int list(e2e_client *c, int state, uint32_t limit, const char *cursor)
{
    return LISTED(c, kaos_client_friends_list(c->c, state, limit, cursor, e2e_on_friends, c));
}

/* c's state towards user `id` in a full listing, -1 when none. */
static int state_towards(e2e_client *c, const char *id)
{
    assert_int_equal(list(c, KAOS_FRIEND_ANY, 0, NULL), 0);
    for (size_t i = 0; i < c->friend_count; i++)
        if (!strcmp(c->friend_ids[i], id)) return c->friend_states[i];
    return -1;
}

static void an_invite_is_seen_by_both_and_a_second_add_accepts_it(void **state)
{
    (void)state;
    e2e_client *a = player(), *b = player();
    assert_int_equal(add(a, b->user_id, NULL), 0);
    assert_int_equal(list(b, KAOS_FRIEND_INVITE_RECEIVED, 10, NULL), 0);
    assert_int_equal(b->friend_count, 1);
    assert_string_equal(b->friend_ids[0], a->user_id);
    assert_string_equal(b->friend_names[0], a->username);
    assert_true(b->friend_times[0] > 1600000000);
    assert_string_equal(b->friends_cursor, "");
    assert_int_equal(state_towards(a, b->user_id), KAOS_FRIEND_INVITE_SENT);
    /* B accepts by naming A's username */
    assert_int_equal(add(b, NULL, a->username), 0);
    assert_int_equal(state_towards(a, b->user_id), KAOS_FRIEND_MUTUAL);
    assert_int_equal(state_towards(b, a->user_id), KAOS_FRIEND_MUTUAL);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void lists_page_with_their_cursor(void **state)
{
    (void)state;
    e2e_client *me = player(), *others[3];
    for (int i = 0; i < 3; i++) {
        others[i] = player();
        assert_int_equal(add(me, others[i]->user_id, NULL), 0);
    }
    assert_int_equal(list(me, KAOS_FRIEND_INVITE_SENT, 2, NULL), 0);
    assert_int_equal(me->friend_count, 2);
    assert_string_not_equal(me->friends_cursor, "");
    char cursor[512], first[2][40];
    snprintf(cursor, sizeof cursor, "%s", me->friends_cursor);
    memcpy(first, me->friend_ids, sizeof first);
    assert_int_equal(list(me, KAOS_FRIEND_INVITE_SENT, 2, cursor), 0);
    assert_int_equal(me->friend_count, 1);
    assert_string_equal(me->friends_cursor, "");
    assert_string_not_equal(me->friend_ids[0], first[0]);
    assert_string_not_equal(me->friend_ids[0], first[1]);
    /* the cursor of one state's listing is refused for another */
    assert_int_equal(list(me, KAOS_FRIEND_ANY, 2, cursor), -KAOS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(me->error_message, "another state"));
    assert_int_equal(list(me, KAOS_FRIEND_ANY, 2, "garbage"), -KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(list(me, KAOS_FRIEND_ANY, 1001, NULL), -KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(list(me, 7, 0, NULL), -KAOS_ERR_INVALID_ARGUMENT);
    e2e_client_free(me);
    for (int i = 0; i < 3; i++)
        e2e_client_free(others[i]);
}

static void a_block_hides_the_blocker_until_it_is_deleted(void **state)
{
    (void)state;
    e2e_client *a = player(), *b = player();
    assert_int_equal(add(a, b->user_id, NULL), 0);
    const char *bid = b->user_id, *aid = a->user_id;
    assert_int_equal(
        E2E_ACKED(a, kaos_client_friends_block(a->c, &bid, 1, NULL, 0, e2e_on_done, a)), 0);
    assert_int_equal(state_towards(a, b->user_id), KAOS_FRIEND_BLOCKED);
    assert_int_equal(state_towards(b, a->user_id), -1);
    /* B's add is ignored silently; A's add is refused until A deletes the block */
    assert_int_equal(add(b, a->user_id, NULL), 0);
    assert_int_equal(state_towards(b, a->user_id), -1);
    assert_int_equal(add(a, b->user_id, NULL), -KAOS_ERR_FAILED_PRECONDITION);
    assert_int_equal(
        E2E_ACKED(a, kaos_client_friends_delete(a->c, &bid, 1, NULL, 0, e2e_on_done, a)), 0);
    assert_int_equal(state_towards(a, b->user_id), -1);
    assert_int_equal(add(b, aid, NULL), 0);
    assert_int_equal(state_towards(a, b->user_id), KAOS_FRIEND_INVITE_RECEIVED);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void refusals_carry_their_codes(void **state)
{
    (void)state;
    e2e_client *a = player();
    assert_int_equal(add(a, a->user_id, NULL), -KAOS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(a->error_message, "yourself"));
    assert_int_equal(add(a, "not-a-uuid", NULL), -KAOS_ERR_INVALID_ARGUMENT);
    /* unknown users are skipped */
    assert_int_equal(add(a, "f0000000-0000-4000-8000-0000000000ff", "nobody-by-that-name"), 0);
    assert_int_equal(list(a, KAOS_FRIEND_ANY, 0, NULL), 0);
    assert_int_equal(a->friend_count, 0);
    e2e_client_free(a);
}

static void a_before_hook_can_refuse_an_add(void **state)
{
    (void)state;
    e2e_client *a = player();
    assert_int_equal(add(a, NULL, "hooked_someone"), -KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(a->error_message, "friend requests to hooked_someone are closed");
    e2e_client_free(a);
}

static void metadata_travels_with_the_add_the_update_and_the_list(void **state)
{
    (void)state;
    e2e_client *a = player(), *b = player(), *c = player();
    const char *bid = b->user_id;
    assert_int_equal(E2E_ACKED(a, kaos_client_friends_add_metadata(
                                      a->c, &bid, 1, NULL, 0, "{\"since\":1}", e2e_on_done, a)),
                     0);
    assert_int_equal(list(a, KAOS_FRIEND_ANY, 0, NULL), 0);
    assert_int_equal(a->friend_count, 1);
    assert_string_equal(a->friend_metadata[0], "{\"since\": 1}"); /* as jsonb prints it */
    assert_int_equal(list(b, KAOS_FRIEND_ANY, 0, NULL), 0);
    assert_string_equal(b->friend_metadata[0], "{}"); /* only the caller's edge */
    assert_int_equal(
        E2E_ACKED(a, kaos_client_friends_metadata_update(a->c, bid, "{\"n\":2}", e2e_on_done, a)),
        0);
    assert_int_equal(list(a, KAOS_FRIEND_ANY, 0, NULL), 0);
    assert_string_equal(a->friend_metadata[0], "{\"n\": 2}");
    /* refusals: no relationship, not an object */
    assert_int_equal(
        E2E_ACKED(a, kaos_client_friends_metadata_update(a->c, c->user_id, "{}", e2e_on_done, a)),
        -KAOS_ERR_NOT_FOUND);
    assert_non_null(strstr(a->error_message, "no relationship with user"));
    assert_int_equal(
        E2E_ACKED(a, kaos_client_friends_metadata_update(a->c, bid, "[]", e2e_on_done, a)),
        -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "metadata must be a JSON object");
    e2e_client_free(a);
    e2e_client_free(b);
    e2e_client_free(c);
}

/* A page of friends of friends as "referrer>user" lines. */
typedef struct fof_page {
    int answers, code; /* code: the last answer's (0 or a KAOS_ERR_*) */
    size_t n;
    char lines[8][80];
    char cursor[128], message[128];
} fof_page;

static void on_fof(kaos_client *k, const kaos_result *r, const kaos_friend_of_friend *entries,
                   size_t n, const char *cursor, void *ud)
{
    (void)k;
    fof_page *p = ud;
    p->code = r->code;
    snprintf(p->message, sizeof p->message, "%s", r->message);
    p->n = n;
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(p->lines[i], sizeof p->lines[i], "%s>%s", entries[i].referrer, entries[i].user.id);
    snprintf(p->cursor, sizeof p->cursor, "%s", cursor);
    p->answers++;
}

static void friends_of_friends_page_over_the_wire(void **state)
{
    (void)state;
    e2e_client *me = player(), *f = player(), *x = player(), *y = player();
    assert_int_equal(add(me, f->user_id, NULL), 0);
    assert_int_equal(add(f, me->user_id, NULL), 0);
    e2e_client *theirs[] = {x, y};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(add(f, theirs[i]->user_id, NULL), 0);
        assert_int_equal(add(theirs[i], f->user_id, NULL), 0);
    }
    fof_page p = {0};
    char seen_users[2][40], cursor[128] = "";
    for (int page = 0; page < 2; page++) {
        int before = p.answers;
        assert_true(kaos_client_friends_of_friends_list(me->c, 1, cursor, on_fof, &p) > 0);
        E2E_WAIT(p.answers > before, 15000);
        assert_int_equal(p.code, 0);
        assert_int_equal(p.n, 1);
        char want[48];
        snprintf(want, sizeof want, "%s>", f->user_id);
        assert_memory_equal(p.lines[0], want, strlen(want));
        snprintf(seen_users[page], sizeof seen_users[page], "%s", p.lines[0] + strlen(want));
        snprintf(cursor, sizeof cursor, "%s", p.cursor);
        if (page == 0) assert_string_not_equal(cursor, "");
    }
    assert_string_equal(cursor, ""); /* the second page was the last */
    assert_string_not_equal(seen_users[0], seen_users[1]);
    for (int i = 0; i < 2; i++)
        assert_true(!strcmp(seen_users[i], x->user_id) || !strcmp(seen_users[i], y->user_id));
    /* a before hook on FriendsOfFriendsList (tests/e2e/lua/friends_test.lua) */
    assert_true(kaos_client_friends_of_friends_list(me->c, 13, NULL, on_fof, &p) > 0);
    E2E_WAIT(p.answers > 2, 15000);
    assert_int_equal(p.code, KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(p.message, "unlucky page size");
    e2e_client_free(me);
    e2e_client_free(f);
    e2e_client_free(x);
    e2e_client_free(y);
}

static void lua_functions_act_for_the_user_they_name(void **state)
{
    (void)state;
    e2e_client *a = player(), *b = player();
    int before = a->rpcs;
    assert_true(kaos_client_rpc_call(a->c, "friends_lua", b->user_id, e2e_on_rpc, a) > 0);
    E2E_WAIT(a->rpcs > before || a->errors > 0, 15000);
    assert_int_equal(a->errors, 0);
    const char *expect[] = {"\"add\":\"ok\"",
                            "\"invited\":true",
                            "\"cursor\":true",
                            "\"block\":\"ok\"",
                            "\"blocked\":true",
                            "\"delete\":\"ok\"",
                            "\"empty\":true",
                            "\"self\":\"3 you cannot befriend, delete or block yourself\"",
                            "\"bad_cursor\":\"3 cursor is not valid\""};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (!strstr(a->rpc_payload, expect[i])) fail_msg("%s not in %s", expect[i], a->rpc_payload);
    /* the block was deleted: B sees nothing of A */
    assert_int_equal(state_towards(b, a->user_id), -1);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void lua_metadata_and_friends_of_friends(void **state)
{
    (void)state;
    e2e_client *a = player(), *b = player(), *c = player();
    assert_int_equal(add(b, c->user_id, NULL), 0); /* b and c are friends */
    assert_int_equal(add(c, b->user_id, NULL), 0);
    char payload[80];
    snprintf(payload, sizeof payload, "%s %s", b->user_id, c->user_id);
    int before = a->rpcs;
    assert_true(kaos_client_rpc_call(a->c, "friends_lua_more", payload, e2e_on_rpc, a) > 0);
    E2E_WAIT(a->rpcs > before || a->errors > 0, 15000);
    assert_int_equal(a->errors, 0);
    char via[120];
    snprintf(via, sizeof via, "\"fof\":\"%s>%s\"", b->user_id, c->user_id);
    const char *expect[] = {"\"add\":\"ok\"",
                            "\"listed_metadata\":\"met\"",
                            "\"update\":\"ok\"",
                            "\"updated_metadata\":\"again\"",
                            "\"stranger\":\"5 you have no relationship with user",
                            "\"bad_metadata\":\"lua error:",
                            via,
                            "\"fof_cursor\":true",
                            "\"fof_bad_cursor\":\"3 cursor is not valid\""};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (!strstr(a->rpc_payload, expect[i])) fail_msg("%s not in %s", expect[i], a->rpc_payload);
    e2e_client_free(a);
    e2e_client_free(b);
    e2e_client_free(c);
}

static void the_configured_max_friends_holds_for_the_wire_and_lua(void **state)
{
    (void)state;
    e2e_server small;
    e2e_server_init(&small);
    const char *extra[] = {"--runtime-path", e2e_test_modules_dir, "--max-friends", "1", NULL};
    e2e_server_start(&small, extra);
    e2e_client *a = e2e_player(small.port, 0), *b = e2e_player(small.port, 0),
               *c = e2e_player(small.port, 0);
    assert_int_equal(add(a, b->user_id, NULL), 0);
    assert_int_equal(add(a, c->user_id, NULL), -KAOS_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(a->error_message, "you have 1 friends and invites; the limit is 1");
    /* kaos.friends_add: the same limit (the RPC's first step adds c) */
    int before = a->rpcs, errors = a->errors;
    assert_true(kaos_client_rpc_call(a->c, "friends_lua", c->user_id, e2e_on_rpc, a) > 0);
    E2E_WAIT(a->rpcs > before || a->errors > errors, 15000);
    if (!strstr(a->rpc_payload, "\"add\":\"8 you have 1 friends and invites; the limit is 1\""))
        fail_msg("no limit in %s", a->rpc_payload);
    e2e_client_free(a);
    e2e_client_free(b);
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&small), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_invite_is_seen_by_both_and_a_second_add_accepts_it),
        cmocka_unit_test(lists_page_with_their_cursor),
        cmocka_unit_test(a_block_hides_the_blocker_until_it_is_deleted),
        cmocka_unit_test(refusals_carry_their_codes),
        cmocka_unit_test(a_before_hook_can_refuse_an_add),
        cmocka_unit_test(lua_functions_act_for_the_user_they_name),
        cmocka_unit_test(metadata_travels_with_the_add_the_update_and_the_list),
        cmocka_unit_test(friends_of_friends_page_over_the_wire),
        cmocka_unit_test(lua_metadata_and_friends_of_friends),
        cmocka_unit_test(the_configured_max_friends_holds_for_the_wire_and_lua),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_test_modules,
                                  e2e_group_teardown_with_test_modules);
}
