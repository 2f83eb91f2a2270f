/* End to end: the friends service over real UDP with SDK clients — an
 * invite seen by both sides, its acceptance, lists by state with their
 * cursor, a block and its removal, refusals with their codes, and a before
 * hook on FriendsAdd refusing a request, and the kaos.friends_* functions
 * through an RPC (both in tests/e2e/lua/friends_test.lua).
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_invite_is_seen_by_both_and_a_second_add_accepts_it),
        cmocka_unit_test(lists_page_with_their_cursor),
        cmocka_unit_test(a_block_hides_the_blocker_until_it_is_deleted),
        cmocka_unit_test(refusals_carry_their_codes),
        cmocka_unit_test(a_before_hook_can_refuse_an_add),
        cmocka_unit_test(lua_functions_act_for_the_user_they_name),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_test_modules,
                                  e2e_group_teardown_with_test_modules);
}
