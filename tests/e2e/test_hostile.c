/* End to end: hostile and broken input. Every bad packet gets a clear error
 * or a disconnect, and a well-behaved pair of players in a match keeps being
 * served the whole time. */
#include "harness.h"
#include "rawclient.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static e2e_client *good_a, *good_b;
static int64_t next_op = 1000;

static e2e_client *player(uint16_t port)
{
    char dev[40];
    e2e_device_id(dev);
    e2e_client *c = e2e_client_new(port, 0, 0);
    e2e_auth(c, dev);
    return c;
}

static int start(void **state)
{
    e2e_group_setup(state);
    good_a = player(e2e_group_server.port);
    good_b = player(e2e_group_server.port);
    kaos_client_match_create(good_a->c, 0, e2e_on_match, good_a);
    E2E_WAIT(good_a->matches == 1, 5000);
    kaos_client_match_join(good_b->c, good_a->match_id, NULL, e2e_on_match, good_b);
    E2E_WAIT(good_b->matches == 1, 5000);
    return 0;
}

static int stop(void **state)
{
    e2e_client_free(good_a);
    e2e_client_free(good_b);
    return e2e_group_teardown(state);
}

/* The good players still exchange reliable data and get pongs. */
static void assert_good_players_served(void)
{
    int64_t op = next_op++;
    size_t before = good_b->data_count;
    int pongs = good_a->pongs;
    assert_int_equal(kaos_client_match_send(good_a->c, good_a->match_handle, op, "ok", 2, true,
                                            NULL, 0),
                     KAOS_OK);
    kaos_client_ping(good_a->c, e2e_on_pong, good_a);
    E2E_WAIT(good_b->data_count > before && good_a->pongs > pongs, 5000);
    assert_int_equal(good_b->data[good_b->data_count - 1].op_code, op);
    assert_true(good_a->connected && good_b->connected);
}

static void random_bytes_get_invalid_argument(void **state)
{
    e2e_client *h = e2e_client_new(e2e_group_server.port, 0, 0);
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(0xF0 | rand());
    assert_int_equal(kaos_client_send_raw(h->c, 0, junk, sizeof junk, true), KAOS_OK);
    E2E_WAIT(h->errors == 1, 5000);
    assert_int_equal(h->error_code, 3);
    assert_int_equal(h->error_cid, 0);
    assert_string_equal(h->error_message, "malformed envelope");
    assert_good_players_served();
    e2e_client_free(h);
}

static void truncated_envelope_gets_invalid_argument(void **state)
{
    /* Envelope{cid=1, match_join{match_id: 20 bytes}} cut in the middle. */
    const uint8_t cut[] = {0x08, 0x01, 0xaa, 0x01, 0x16, 0x0a, 0x14, 'a', 'b', 'c'};
    e2e_client *h = e2e_client_new(e2e_group_server.port, 0, 0);
    kaos_client_send_raw(h->c, 0, cut, sizeof cut, true);
    E2E_WAIT(h->errors == 1, 5000);
    assert_int_equal(h->error_code, 3);
    assert_good_players_served();
    e2e_client_free(h);
}

static void unknown_and_server_only_message_types_are_unimplemented(void **state)
{
    e2e_client *h = e2e_client_new(e2e_group_server.port, 0, 0);
    const uint8_t unknown[] = {0x08, 0x07, 0x9a, 0x06, 0x00}; /* cid 7, field 99 */
    kaos_client_send_raw(h->c, 0, unknown, sizeof unknown, true);
    E2E_WAIT(h->errors == 1, 5000);
    assert_int_equal(h->error_code, 12); /* UNIMPLEMENTED */
    assert_int_equal(h->error_cid, 7);
    const uint8_t pong[] = {0x08, 0x08, 0x22, 0x00}; /* cid 8, Pong{} */
    kaos_client_send_raw(h->c, 0, pong, sizeof pong, true);
    E2E_WAIT(h->errors == 2, 5000);
    assert_int_equal(h->error_code, 12);
    assert_non_null(strstr(h->error_message, "pong"));
    assert_good_players_served();
    e2e_client_free(h);
}

static void requests_before_auth_are_unauthenticated(void **state)
{
    e2e_client *h = e2e_client_new(e2e_group_server.port, 0, 0);
    kaos_client_match_join(h->c, good_a->match_id, NULL, e2e_on_match, h);
    E2E_WAIT(h->errors == 1, 5000);
    assert_int_equal(h->error_code, 16);
    assert_string_equal(h->error_message, "authenticate first");
    /* Pre-auth data into the good players' match goes nowhere. */
    size_t before = good_b->data_count;
    kaos_client_match_send(h->c, good_a->match_handle, 1, "x", 1, true, NULL, 0);
    E2E_WAIT(h->errors == 2, 5000);
    assert_int_equal(h->error_code, 16);
    assert_int_equal(good_b->data_count, before);
    /* Ping is fine before auth. */
    kaos_client_ping(h->c, e2e_on_pong, h);
    E2E_WAIT(h->pongs == 1, 5000);
    assert_good_players_served();
    e2e_client_free(h);
}

static void match_data_on_the_control_channel_is_refused(void **state)
{
    e2e_client *h = player(e2e_group_server.port);
    /* Envelope{match_data_send{match=1, op=1}} on channel 0. */
    const uint8_t bytes[] = {0xca, 0x01, 0x04, 0x08, 0x01, 0x10, 0x01};
    kaos_client_send_raw(h->c, 0, bytes, sizeof bytes, true);
    E2E_WAIT(h->errors == 1, 5000);
    assert_int_equal(h->error_code, 3);
    assert_non_null(strstr(h->error_message, "channel 0"));
    e2e_client_free(h);
}

static void a_peer_that_keeps_sending_garbage_is_disconnected(void **state)
{
    e2e_client *h = e2e_client_new(e2e_group_server.port, 0, 0);
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    for (int i = 0; i < 20 && h->connected; i++) {
        kaos_client_send_raw(h->c, 0, junk, sizeof junk, true);
        e2e_pump();
    }
    E2E_WAIT(h->disconnected, 5000);
    assert_int_equal(h->disconnect_reason, KAOS_DISCONNECT_PROTOCOL_VIOLATION);
    assert_good_players_served();
    e2e_client_free(h);
}

static void oversize_packet_is_never_delivered_and_others_are_unaffected(void **state)
{
    /* A hand-rolled client: the SDK refuses to send this much. */
    raw_client rc;
    raw_connect(&rc, e2e_group_server.port, e2e_group_server.key);
    static uint8_t big[256 * 1024];
    raw_send_bytes(&rc, 0, big, sizeof big, true);
    for (int i = 0; i < 2000 && !rc.disconnected; i++) raw_pump(&rc, 5);
    /* The server refuses the fragments, so the sender's reliable queue stalls
     * and its connection times out; the server never saw a message. */
    assert_true(rc.disconnected);
    assert_int_equal(rc.received, 0);
    raw_close(&rc);
    assert_good_players_served();
}

static void unsupported_protocol_version_gets_a_clear_error(void **state)
{
    e2e_client *h = e2e_client_new_nowait(e2e_group_server.port, 99);
    E2E_WAIT(h->disconnected, 5000);
    assert_int_equal(h->disconnect_reason, KAOS_DISCONNECT_UNSUPPORTED_VERSION);
    assert_int_equal(h->errors, 1);
    assert_int_equal(h->error_code, 9); /* FAILED_PRECONDITION */
    assert_non_null(strstr(h->error_message, "unsupported protocol version 99"));
    e2e_client_free(h);
}

static void silent_connections_are_dropped_by_the_auth_and_idle_timeouts(void **state)
{
    e2e_server t;
    e2e_server_init(&t);
    const char *extra[] = {"--auth-timeout-ms", "500", "--idle-timeout-ms", "1000", NULL};
    e2e_server_start(&t, extra);
    e2e_client *unauth = e2e_client_new(t.port, 0, 0);
    e2e_client *idle = player(t.port);
    char dev[40];
    e2e_device_id(dev);
    e2e_client *alive = e2e_client_new(t.port, 0, 200); /* keepalive every 200 ms */
    e2e_auth(alive, dev);
    E2E_WAIT(unauth->disconnected, 5000);
    assert_int_equal(unauth->disconnect_reason, KAOS_DISCONNECT_AUTH_TIMEOUT);
    E2E_WAIT(idle->disconnected, 5000);
    assert_int_equal(idle->disconnect_reason, KAOS_DISCONNECT_IDLE_TIMEOUT);
    e2e_pump_for(1500);
    assert_true(alive->connected);
    e2e_client_free(unauth);
    e2e_client_free(idle);
    e2e_client_free(alive);
    assert_int_equal(e2e_server_stop(&t), 0);
    e2e_server_cleanup(&t);
}

int main(void)
{
    if (enet_initialize() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_bytes_get_invalid_argument),
        cmocka_unit_test(truncated_envelope_gets_invalid_argument),
        cmocka_unit_test(unknown_and_server_only_message_types_are_unimplemented),
        cmocka_unit_test(requests_before_auth_are_unauthenticated),
        cmocka_unit_test(match_data_on_the_control_channel_is_refused),
        cmocka_unit_test(a_peer_that_keeps_sending_garbage_is_disconnected),
        cmocka_unit_test(oversize_packet_is_never_delivered_and_others_are_unaffected),
        cmocka_unit_test(unsupported_protocol_version_gets_a_clear_error),
        cmocka_unit_test(silent_connections_are_dropped_by_the_auth_and_idle_timeouts),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
