/* End to end: relayed matches between SDK clients — create, join by id,
 * presence events, data on the reliable and unreliable channels, targeted
 * data, leave, and the match vanishing when empty. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>


static e2e_client *player(void)
{
    return e2e_player(e2e_group_server.port, 0);
}

static const e2e_data *find_data(const e2e_client *c, int64_t op)
{
    for (size_t i = 0; i < c->data_count; i++)
        if (c->data[i].op_code == op) return &c->data[i];
    return NULL;
}

static void two_players_meet_and_exchange_data_on_both_channels(void **state)
{
    e2e_client *a = player(), *b = player();
    int cid = kaos_client_match_create(a->c, 0, e2e_on_match, a);
    E2E_WAIT(a->matches == 1, 5000);
    assert_int_equal(a->match_cid, (uint32_t)cid);
    assert_int_equal(a->match_size, 1);
    assert_non_null(strstr(a->match_id, ".kaos1"));

    assert_true(kaos_client_match_join(b->c, a->match_id, NULL, e2e_on_match, b) > 0);
    E2E_WAIT(b->matches == 1, 5000);
    assert_int_equal(b->match_handle, a->match_handle);
    assert_int_equal(b->match_size, 2);
    assert_int_equal(b->match_others, 1);
    assert_int_equal(b->other_slots[0], a->self_slot);
    E2E_WAIT(a->joins == 1, 5000); /* a hears that b joined */
    assert_int_equal(a->last_join_slot, b->self_slot);

    uint32_t h = a->match_handle;
    assert_int_equal(kaos_client_match_send(a->c, h, 1, "hello", 5, true, NULL, 0), KAOS_OK);
    E2E_WAIT(find_data(b, 1) != NULL, 5000);
    const e2e_data *d = find_data(b, 1);
    assert_int_equal(d->sender, a->self_slot);
    assert_int_equal(d->len, 5);
    assert_memory_equal(d->bytes, "hello", 5);
    assert_true(d->reliable);

    /* Unreliable on loopback: send a few, at least one must arrive. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(kaos_client_match_send(b->c, h, 2, "pos", 3, false, NULL, 0), KAOS_OK);
    E2E_WAIT(find_data(a, 2) != NULL, 5000);
    assert_false(find_data(a, 2)->reliable);
    assert_int_equal(find_data(a, 2)->sender, b->self_slot);
    /* The sender never gets its own data back. */
    assert_null(find_data(a, 1));
    assert_null(find_data(b, 2));
    e2e_client_free(a);
    e2e_client_free(b);
}

static void targeted_data_reaches_only_the_listed_players(void **state)
{
    e2e_client *a = player(), *b = player(), *c = player();
    kaos_client_match_create(a->c, 0, e2e_on_match, a);
    E2E_WAIT(a->matches == 1, 5000);
    kaos_client_match_join(b->c, a->match_id, NULL, e2e_on_match, b);
    kaos_client_match_join(c->c, a->match_id, NULL, e2e_on_match, c);
    E2E_WAIT(b->matches == 1 && c->matches == 1, 5000);
    uint32_t h = a->match_handle, target = c->self_slot;
    assert_int_equal(kaos_client_match_send(a->c, h, 7, "psst", 4, true, &target, 1), KAOS_OK);
    /* A broadcast after it proves b is receiving: b sees 8 but never 7. */
    assert_int_equal(kaos_client_match_send(a->c, h, 8, "all", 3, true, NULL, 0), KAOS_OK);
    E2E_WAIT(find_data(c, 7) && find_data(c, 8) && find_data(b, 8), 5000);
    assert_null(find_data(b, 7));
    e2e_client_free(a);
    e2e_client_free(b);
    e2e_client_free(c);
}

static void leave_and_disconnect_notify_the_rest_and_empty_match_disappears(void **state)
{
    e2e_client *a = player(), *b = player(), *c = player();
    kaos_client_match_create(a->c, 0, e2e_on_match, a);
    E2E_WAIT(a->matches == 1, 5000);
    char id[128];
    strcpy(id, a->match_id);
    kaos_client_match_join(b->c, id, NULL, e2e_on_match, b);
    E2E_WAIT(b->matches == 1 && a->joins == 1, 5000);

    assert_true(kaos_client_match_leave(b->c, b->match_handle, e2e_on_done, b) > 0);
    E2E_WAIT(b->acks == 1 && a->leaves == 1, 5000);
    assert_int_equal(a->last_leave_slot, b->self_slot);
    /* Data to a match you left is refused. */
    kaos_client_match_send(b->c, a->match_handle, 1, "x", 1, true, NULL, 0);
    E2E_WAIT(b->errors == 1, 5000);
    assert_int_equal(b->error_code, 5);

    /* The last member's connection drops: the match is gone. */
    e2e_client_free(a);
    e2e_pump_for(300);
    kaos_client_match_join(c->c, id, NULL, e2e_on_match, c);
    E2E_WAIT(c->errors == 1, 5000);
    assert_int_equal(c->error_code, 5); /* NOT_FOUND */
    assert_string_equal(c->error_message, "match not found");
    e2e_client_free(b);
    e2e_client_free(c);
}

static void full_match_refuses_with_a_reason(void **state)
{
    e2e_client *a = player(), *b = player(), *c = player();
    kaos_client_match_create(a->c, 2, e2e_on_match, a);
    E2E_WAIT(a->matches == 1, 5000);
    kaos_client_match_join(b->c, a->match_id, NULL, e2e_on_match, b);
    E2E_WAIT(b->matches == 1, 5000);
    kaos_client_match_join(c->c, a->match_id, NULL, e2e_on_match, c);
    E2E_WAIT(c->errors == 1, 5000);
    assert_int_equal(c->error_code, 8); /* RESOURCE_EXHAUSTED */
    assert_string_equal(c->error_message, "match is full");
    kaos_client_match_create(c->c, 100000, e2e_on_match, c);
    E2E_WAIT(c->errors == 2, 5000);
    assert_int_equal(c->error_code, 3);
    e2e_client_free(a);
    e2e_client_free(b);
    e2e_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_players_meet_and_exchange_data_on_both_channels),
        cmocka_unit_test(targeted_data_reaches_only_the_listed_players),
        cmocka_unit_test(leave_and_disconnect_notify_the_rest_and_empty_match_disappears),
        cmocka_unit_test(full_match_refuses_with_a_reason),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
