/* End to end under impairment: clients reach the server through a UDP relay
 * that drops 10% of datagrams each way and delays them 40 ms ± 30 ms (so
 * they also arrive out of order). Every reliable message must arrive exactly
 * once and in order, unreliable ones at most once, and the session must
 * survive. Then a bad link — 25 % loss each way, 100 ± 50 ms — carrying
 * reliable messages both ways for 12 s: both players stay connected and get
 * every message once and in order (before the retransmission cap of
 * kn_enet_rto.h, ENet ended such connections within about a minute).
 * Bounded: the waits below give up after 90 s. */
#include "harness.h"
#include "lossy_proxy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define RELIABLE   200
#define UNRELIABLE 200

/* A server, a proxy with this impairment in front of it, and two players
 * logged in through the proxy in one relayed match (a created it). */
static lossy_proxy *pair_through_proxy(e2e_server *srv, double loss, int delay_ms, int jitter_ms,
                                       e2e_client **a, e2e_client **b)
{
    e2e_server_init(srv);
    e2e_server_start(srv, NULL);
    uint16_t port;
    lossy_proxy *proxy = lossy_start(srv->port, loss, delay_ms, jitter_ms, &port);
    assert_non_null(proxy);
    *a = e2e_client_new_with_key(port, srv->key_hex, false);
    *b = e2e_client_new_with_key(port, srv->key_hex, false);
    E2E_WAIT((*a)->connected && (*b)->connected, 60000);
    char da[40], db[40];
    e2e_device_id(da);
    e2e_device_id(db);
    e2e_auth(*a, da);
    e2e_auth(*b, db);
    kaos_client_match_create((*a)->c, 0, e2e_on_match, *a);
    E2E_WAIT((*a)->matches == 1, 30000);
    kaos_client_match_join((*b)->c, (*a)->match_id, NULL, e2e_on_match, *b);
    E2E_WAIT((*b)->matches == 1, 30000);
    return proxy;
}

static void reliable_data_arrives_once_and_in_order_through_loss_and_jitter(void **state)
{
    e2e_server srv;
    e2e_client *a, *b;
    lossy_proxy *proxy = pair_through_proxy(&srv, 0.10, 40, 30, &a, &b);

    /* Interleave reliable (op 1, seq in payload) and unreliable (op 2), one
     * of each per 33 ms tick: a 30 Hz game, well inside the rate limits. */
    for (uint32_t i = 0; i < RELIABLE; i++) {
        uint8_t msg[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        assert_int_equal(kaos_client_match_send(a->c, a->match_handle, 1, msg, 4, true, NULL, 0),
                         KAOS_OK);
        assert_int_equal(kaos_client_match_send(a->c, a->match_handle, 2, msg, 4, false, NULL, 0),
                         KAOS_OK);
        e2e_pump_for(33);
    }
    size_t reliable_seen;
    int64_t deadline = e2e_now_ms() + 90000;
    do {
        e2e_pump();
        reliable_seen = 0;
        for (size_t k = 0; k < b->data_count; k++)
            if (b->data[k].op_code == 1) reliable_seen++;
    } while (reliable_seen < RELIABLE && e2e_now_ms() < deadline);

    /* Exactly once, in order: the n-th reliable message carries n. */
    uint32_t expect = 0;
    size_t unreliable_seen = 0;
    uint32_t last_unreliable = 0;
    bool first_unreliable = true;
    for (size_t k = 0; k < b->data_count; k++) {
        const e2e_data *d = &b->data[k];
        uint32_t v = (uint32_t)d->bytes[0] << 24 | (uint32_t)d->bytes[1] << 16 |
                     (uint32_t)d->bytes[2] << 8 | d->bytes[3];
        if (d->op_code == 1) {
            assert_true(d->reliable);
            assert_int_equal(v, expect);
            expect++;
        } else {
            /* sequenced: never a duplicate, never older than the last one */
            assert_true(first_unreliable || v > last_unreliable);
            first_unreliable = false;
            last_unreliable = v;
            unreliable_seen++;
        }
    }
    if (expect != RELIABLE)
        fail_msg("%u of %d reliable messages arrived in order (a %s/%u, b %s/%u)", expect, RELIABLE,
                 a->connected ? "connected" : "disconnected", a->disconnect_reason,
                 b->connected ? "connected" : "disconnected", b->disconnect_reason);
    assert_true(unreliable_seen <= UNRELIABLE);

    /* The session survived: a request still round-trips. */
    int pongs = a->pongs, errors = a->errors;
    int cid = kaos_client_ping(a->c, e2e_on_pong, a);
    assert_true(cid > 0);
    E2E_WAIT(a->pongs > pongs || a->errors > errors, 20000);
    if (a->pongs == pongs) /* say what came instead of the Pong */
        fail_msg("ping %d answered by error %d \"%s\" (a %s/%u)", cid, a->error_code,
                 a->error_message, a->connected ? "connected" : "disconnected",
                 a->disconnect_reason);
    assert_true(a->connected && b->connected);

    lossy_stats st;
    e2e_client_free(a);
    e2e_client_free(b);
    lossy_stop(proxy, &st);
    printf(
        "impairment: %llu forwarded, %llu dropped, %llu reordered; unreliable delivered %zu/%d\n",
        (unsigned long long)st.forwarded, (unsigned long long)st.dropped,
        (unsigned long long)st.reordered, unreliable_seen, UNRELIABLE);
    assert_true(st.dropped > 0 && st.reordered > 0); /* the impairment really happened */
    assert_int_equal(e2e_server_stop(&srv), 0);
    e2e_server_cleanup(&srv);
}

/* The reliable messages (op 1) `to` received carry 0, 1, 2, ...: how many. */
static uint32_t reliable_in_order(const e2e_client *to)
{
    uint32_t expect = 0;
    for (size_t k = 0; k < to->data_count; k++) {
        const e2e_data *d = &to->data[k];
        if (d->op_code != 1) continue;
        uint32_t v = (uint32_t)d->bytes[0] << 24 | (uint32_t)d->bytes[1] << 16 |
                     (uint32_t)d->bytes[2] << 8 | d->bytes[3];
        assert_true(d->reliable);
        if (v != expect) fail_msg("reliable message %u arrived where %u was due", v, expect);
        expect++;
    }
    return expect;
}

#define BAD_LINK_MESSAGES 300 /* each way, 25 a second for 12 s */

static void a_bad_link_keeps_its_players_and_every_reliable_message(void **state)
{
    e2e_server srv;
    e2e_client *a, *b;
    lossy_proxy *proxy = pair_through_proxy(&srv, 0.25, 100, 50, &a, &b);

    for (uint32_t i = 0; i < BAD_LINK_MESSAGES; i++) {
        uint8_t msg[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        assert_int_equal(kaos_client_match_send(a->c, a->match_handle, 1, msg, 4, true, NULL, 0),
                         KAOS_OK);
        assert_int_equal(kaos_client_match_send(b->c, b->match_handle, 1, msg, 4, true, NULL, 0),
                         KAOS_OK);
        e2e_pump_for(40);
    }
    int64_t deadline = e2e_now_ms() + 90000;
    while ((reliable_in_order(a) < BAD_LINK_MESSAGES || reliable_in_order(b) < BAD_LINK_MESSAGES) &&
           a->connected && b->connected && e2e_now_ms() < deadline)
        e2e_pump();
    uint32_t to_a = reliable_in_order(a), to_b = reliable_in_order(b);
    if (!a->connected || !b->connected || to_a != BAD_LINK_MESSAGES || to_b != BAD_LINK_MESSAGES)
        fail_msg("bad link: %u and %u of %d reliable messages arrived (a %s/%u, b %s/%u)", to_a,
                 to_b, BAD_LINK_MESSAGES, a->connected ? "connected" : "disconnected",
                 a->disconnect_reason, b->connected ? "connected" : "disconnected",
                 b->disconnect_reason);

    lossy_stats st;
    e2e_client_free(a);
    e2e_client_free(b);
    lossy_stop(proxy, &st);
    printf("bad link: %llu forwarded, %llu dropped; %d reliable messages each way, all in order, "
           "both players connected\n",
           (unsigned long long)st.forwarded, (unsigned long long)st.dropped, BAD_LINK_MESSAGES);
    assert_true(st.dropped > st.forwarded / 5); /* about a quarter really was lost */
    assert_int_equal(e2e_server_stop(&srv), 0);
    e2e_server_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reliable_data_arrives_once_and_in_order_through_loss_and_jitter),
        cmocka_unit_test(a_bad_link_keeps_its_players_and_every_reliable_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
