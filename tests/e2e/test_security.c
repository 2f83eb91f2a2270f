/* End to end: transport security and abuse limits against the real server.
 * Tampered and replayed packets (dropped, never held against the player),
 * a wrong server key, a plaintext client, a
 * spoofed-CONNECT flood, message floods, and failed-login lockouts. */
#include "harness.h"
#include "kn_codec.h"
#include "rawclient.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>


static void sealed_ping_round_trips_with_a_hand_rolled_client(void **state)
{
    raw_client rc;
    raw_connect(&rc, e2e_group_server.port, e2e_group_server.key);
    raw_send_ping(&rc, 11);
    for (int i = 0; i < 200 && rc.received == 0; i++) raw_pump(&rc, 5);
    assert_int_equal(rc.last_type, KAOS__V1__ENVELOPE__MESSAGE_PONG);
    assert_int_equal(rc.last_cid, 11);
    raw_close(&rc);
}

static void tampered_packets_are_dropped_and_do_not_close_the_connection(void **state)
{
    raw_client rc;
    raw_connect(&rc, e2e_group_server.port, e2e_group_server.key);
    uint8_t sealed[128];
    size_t n = raw_seal_ping(&rc, 1, sealed, sizeof sealed);
    sealed[n - 3] ^= 0x40; /* inside the tag */
    for (int i = 0; i < 20; i++) { /* more than max_violations (8) */
        raw_send_bytes(&rc, 0, sealed, n, true);
        raw_pump(&rc, 5);
    }
    raw_pump(&rc, 100);
    assert_int_equal(rc.received, 0); /* never delivered, so never answered */
    assert_false(rc.disconnected);
    /* The real packet, which the forgeries imitated, still opens. */
    sealed[n - 3] ^= 0x40;
    raw_send_bytes(&rc, 0, sealed, n, true);
    for (int i = 0; i < 200 && rc.received == 0; i++) raw_pump(&rc, 5);
    assert_int_equal(rc.last_cid, 1);
    assert_false(rc.disconnected);
    raw_close(&rc);
}

/* Sends env and pumps until *count moves on. */
static void send_and_await(raw_client *r, const kn_envelope *env, const int *count)
{
    int before = *count;
    raw_send_env(r, env);
    for (int i = 0; i < 400 && *count == before; i++) raw_pump(r, 5);
    assert_int_equal(*count, before + 1);
}

/* A raw client that authenticates with device `dev` and joins `match_id`. */
static void raw_auth_and_join(raw_client *r, const e2e_server *s, char *dev, char *match_id)
{
    raw_connect(r, s->port, s->key);
    Kaos__V1__AuthenticateDevice a = KAOS__V1__AUTHENTICATE_DEVICE__INIT;
    a.device_id = dev;
    a.create = true;
    kn_envelope auth = KN_ENVELOPE_INIT;
    auth.cid = 1;
    auth.message_case = KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE;
    auth.authenticate_device = &a;
    send_and_await(r, &auth, &r->sessions);
    Kaos__V1__MatchJoin j = KAOS__V1__MATCH_JOIN__INIT;
    j.match_id = match_id;
    kn_envelope join = KN_ENVELOPE_INIT;
    join.cid = 2;
    join.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_JOIN;
    join.match_join = &j;
    send_and_await(r, &join, &r->matches);
}

/* One packet of the player, sealed for channel (i % 3): a ping on the
 * control channel, match data with op code `op` on the two match channels. */
static size_t seal_play(raw_client *p, int i, int64_t op, uint8_t *out, size_t cap)
{
    uint8_t ch = (uint8_t)(i % 3);
    kn_envelope env = KN_ENVELOPE_INIT;
    Kaos__V1__Ping ping = KAOS__V1__PING__INIT;
    Kaos__V1__MatchDataSend d = KAOS__V1__MATCH_DATA_SEND__INIT;
    if (ch == 0) {
        env.cid = 1000 + (uint32_t)i;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PING;
        env.ping = &ping;
    } else {
        d.match = p->match_handle;
        d.op_code = op;
        d.data = (ProtobufCBinaryData){4, (uint8_t *)"play"};
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA_SEND;
        env.match_data_send = &d;
    }
    return raw_seal_env(p, ch, &env, out, cap);
}

static size_t reliable_data(const e2e_client *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->data_count; i++) n += c->data[i].reliable;
    return n;
}

/* An attacker on the path captures a live player's sealed packets and
 * injects them into the player's ENet session again: 100 verbatim and 100
 * with one bit flipped, on all three channels. ENet delivers every one
 * (they travel as new ENet commands), so each reaches the opener — the
 * hardest case for the server. They are dropped and counted; the player is
 * not closed and its match data keeps flowing both ways, none twice. */
static void replayed_and_forged_packets_cost_the_attacker_not_the_player(void **state)
{
    const e2e_server *s = &e2e_group_server;
    char dev[40], dev2[40];
    e2e_device_id(dev);
    e2e_device_id(dev2);
    e2e_client *peer = e2e_client_new(s->port, 0, 0);
    e2e_auth(peer, dev);
    kaos_client_match_create(peer->c, 0, e2e_on_match, peer);
    E2E_WAIT(peer->matches == 1, 5000);
    raw_client p;
    raw_auth_and_join(&p, s, dev2, peer->match_id);

    enum { CAPTURED = 120, ATTACK = 100, AFTER = 30 };
    static uint8_t cap[CAPTURED][128];
    size_t cap_len[CAPTURED];
    for (int i = 0; i < CAPTURED; i++) { /* play, and capture what goes out */
        cap_len[i] = seal_play(&p, i, i, cap[i], sizeof cap[i]);
        raw_send_bytes(&p, (uint8_t)(i % 3), cap[i], cap_len[i], i % 3 != 2);
        if (i % 10 == 9) raw_pump(&p, 5);
    }
    E2E_WAIT(reliable_data(peer) == CAPTURED / 3, 5000);
    long long rejected = e2e_metric(s->http_port, "kaos_packets_rejected_total");
    long long replayed = e2e_metric(s->http_port, "kaos_packets_replayed_total");
    long long violations = e2e_metric(s->http_port, "kaos_violations_total");

    /* The attack, while both keep playing. Injected packets go reliable so
     * that every one is known to arrive. */
    size_t before = reliable_data(peer);
    int got = p.match_data;
    for (int i = 0; i < ATTACK; i++) {
        int k = (i * 7) % CAPTURED;
        raw_send_bytes(&p, (uint8_t)(k % 3), cap[k], cap_len[k], true);
        uint8_t forged[128];
        memcpy(forged, cap[k], cap_len[k]);
        size_t bit = (size_t)rand() % (cap_len[k] * 8);
        forged[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        raw_send_bytes(&p, (uint8_t)(k % 3), forged, cap_len[k], true);
        if (i % 10 == 9) {
            uint8_t fresh[128];
            size_t n = seal_play(&p, 1, 5000 + i, fresh, sizeof fresh); /* reliable data */
            raw_send_bytes(&p, 1, fresh, n, true);
            kaos_client_match_send(peer->c, peer->match_handle, 6000 + i, "back", 4, true, NULL, 0);
            raw_pump(&p, 5);
        }
    }
    for (int i = 0; i < AFTER; i++) {
        uint8_t fresh[128];
        size_t n = seal_play(&p, 1, 7000 + i, fresh, sizeof fresh);
        raw_send_bytes(&p, 1, fresh, n, true);
    }
    int64_t deadline = e2e_now_ms() + 10000;
    while (e2e_now_ms() < deadline &&
           (reliable_data(peer) - before < ATTACK / 10 + AFTER || p.match_data - got < ATTACK / 10))
        raw_pump(&p, 5);
    raw_pump(&p, 100);

    /* Still connected and playing: every fresh message arrived once, in
     * order, and nothing injected was delivered. */
    assert_false(p.disconnected);
    assert_true(p.connected);
    assert_int_equal(reliable_data(peer) - before, ATTACK / 10 + AFTER);
    size_t k = 0; /* the fresh reliable messages, in the order sent */
    for (size_t i = 0; i < peer->data_count; i++) {
        if (!peer->data[i].reliable || peer->data[i].op_code < 5000) continue;
        int64_t want = k < ATTACK / 10 ? 5009 + 10 * (int64_t)k : 7000 + (int64_t)(k - ATTACK / 10);
        assert_int_equal(peer->data[i].op_code, want);
        k++;
    }
    assert_int_equal(k, ATTACK / 10 + AFTER);
    assert_int_equal(p.match_data - got, ATTACK / 10);
    /* Each injected packet was dropped and counted; none was a violation. */
    long long d_rejected = e2e_metric(s->http_port, "kaos_packets_rejected_total") - rejected;
    long long d_replayed = e2e_metric(s->http_port, "kaos_packets_replayed_total") - replayed;
    print_message("replay test: %lld injected packets rejected (%lld as replays), "
                  "player connected, %zu fresh messages delivered\n",
                  d_rejected, d_replayed, k);
    assert_int_equal(d_rejected, 2 * ATTACK);
    assert_true(d_replayed >= ATTACK);
    assert_int_equal(e2e_metric(s->http_port, "kaos_violations_total"), violations);
    raw_close(&p);
    e2e_client_free(peer);
}

static void a_replayed_packet_is_delivered_once(void **state)
{
    raw_client rc;
    raw_connect(&rc, e2e_group_server.port, e2e_group_server.key);
    uint8_t sealed[128];
    size_t n = raw_seal_ping(&rc, 21, sealed, sizeof sealed);
    raw_send_bytes(&rc, 0, sealed, n, true);
    raw_send_bytes(&rc, 0, sealed, n, true); /* the same bytes again */
    raw_send_ping(&rc, 22);                  /* the counter moved past it */
    for (int i = 0; i < 200 && rc.received < 2; i++) raw_pump(&rc, 5);
    raw_pump(&rc, 100);
    assert_int_equal(rc.received, 2); /* pongs for 21 and 22, not 21 twice */
    assert_int_equal(rc.last_cid, 22);
    raw_close(&rc);
}

static void a_wrong_server_key_is_refused_by_the_sdk(void **state)
{
    char wrong[65];
    memset(wrong, 'a', 64);
    wrong[64] = '\0';
    e2e_client *c = e2e_client_new_with_key(e2e_group_server.port, wrong, false);
    E2E_WAIT(c->disconnected, 10000);
    assert_false(c->connected);
    assert_int_equal(c->disconnect_reason, KAOS_DISCONNECT_HANDSHAKE_FAILED);
    assert_int_equal(c->error_code, 7); /* PERMISSION_DENIED */
    assert_non_null(strstr(c->error_message, "server key mismatch"));
    e2e_client_free(c);
}

static void a_plaintext_client_is_refused_with_a_clear_error(void **state)
{
    /* Plain ENet (no cookie) never even gets a connection... */
    raw_client rc;
    assert_false(raw_connect_without_cookie(&rc, e2e_group_server.port, KAOS_PROTOCOL_VERSION, 1000));
    raw_close(&rc);
    /* ...and a client that skips the handshake is told why and dropped. */
    e2e_client *c = e2e_client_new_plaintext(e2e_group_server.port);
    E2E_WAIT(c->connected || c->disconnected, 10000);
    kaos_client_ping(c->c, e2e_on_pong, c); /* its first packet is an envelope, not a hello */
    E2E_WAIT(c->disconnected, 10000);
    assert_int_equal(c->disconnect_reason, KAOS_DISCONNECT_HANDSHAKE_FAILED);
    assert_int_equal(c->error_code, 9); /* FAILED_PRECONDITION */
    assert_non_null(strstr(c->error_message, "transport security is required"));
    e2e_client_free(c);
}

/* docs/protocol.md, "Hello and welcome": what a secure server answers in
 * place of the welcome, in plaintext, before the connection closes. */
static void a_request_before_the_hello_is_answered_in_plaintext_with_cid_0(void **state)
{
    raw_client rc;
    raw_connect_unsealed(&rc, e2e_group_server.port);
    raw_send_ping(&rc, 5); /* a plaintext envelope with cid 5 */
    for (int i = 0; i < 400 && !rc.disconnected; i++) raw_pump(&rc, 5);
    assert_int_equal(rc.last_type, KAOS__V1__ENVELOPE__MESSAGE_ERROR);
    assert_int_equal(rc.last_cid, 0);
    assert_int_equal(rc.last_error_code, 9); /* FAILED_PRECONDITION */
    assert_non_null(strstr(rc.last_error, "start with the handshake hello"));
    assert_true(rc.disconnected);
    assert_int_equal(rc.disconnect_reason, KAOS_DISCONNECT_HANDSHAKE_FAILED);
    raw_close(&rc);
}

static void a_refused_hello_is_answered_with_a_plaintext_error(void **state)
{
    raw_client rc;
    raw_connect_unsealed(&rc, e2e_group_server.port);
    uint8_t hello[40] = {'K', 'N', 'H', '1', 1, 1}; /* byte 5 must be zero */
    raw_send_bytes(&rc, 0, hello, sizeof hello, true);
    for (int i = 0; i < 400 && !rc.disconnected; i++) raw_pump(&rc, 5);
    assert_int_equal(rc.last_type, KAOS__V1__ENVELOPE__MESSAGE_ERROR);
    assert_int_equal(rc.last_cid, 0);
    assert_int_equal(rc.last_error_code, 3); /* INVALID_ARGUMENT */
    assert_string_equal(rc.last_error, "malformed hello");
    assert_true(rc.disconnected);
    assert_int_equal(rc.disconnect_reason, KAOS_DISCONNECT_HANDSHAKE_FAILED);
    raw_close(&rc);
}

/* 2,000 CONNECT datagrams with made-up cookies get no peer and no answer at
 * all: not a VERIFY_CONNECT, not a cookie reply, not a BUSY (BUSY answers
 * only cookie requests, docs/security.md). Its own server: the group's has
 * peers left by the raw clients before, which it keeps pinging until they
 * time out, and the flooder's port may be one of theirs. The flooder's
 * socket is connected to the server, so the kernel passes it only what the
 * server sends: on a shared machine any other process sending to a port the
 * flooder happened to get would otherwise count as an answer. */
static void connects_without_a_cookie_get_no_peer_and_no_reply(void **state)
{
    e2e_server t;
    e2e_server_init(&t);
    e2e_server_start(&t, NULL);
    /* one socket (a spoofer's would come from many addresses: the cookie
     * check is the same) */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(t.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    uint8_t d[4 + 48] = {0x8f, 0xff, 0x00, 0x01, 0x82, 0xff};
    for (int i = 0; i < 2000; i++) {
        uint32_t fake = (uint32_t)rand();
        memcpy(d + 4 + 44, &fake, 4);
        d[4 + 40] = (uint8_t)i; /* connectID varies too */
        send(fd, d, sizeof d, 0);
    }
    /* Meanwhile a legitimate client connects and is served. */
    char dev[40];
    e2e_device_id(dev);
    e2e_client *c = e2e_client_new(t.port, 0, 0);
    e2e_auth(c, dev);
    /* Nothing came back to the flooder: no VERIFY_CONNECT, no amplification.
     * Whatever did is shown decoded. */
    uint8_t buf[256];
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n >= 0) {
        char hex[3 * 32 + 1] = "";
        for (ssize_t i = 0; i < n && i < 32; i++)
            snprintf(hex + 3 * i, sizeof hex - 3 * (size_t)i, "%02x ", buf[i]);
        fail_msg("the server answered a CONNECT without a cookie: %zd bytes, %s(peer id 0x%03x, "
                 "command %d)",
                 n, hex, n >= 2 ? (buf[0] << 8 | buf[1]) & 0xfff : -1,
                 n >= 5 ? buf[(buf[0] & 0x80) ? 4 : 2] & 0x0f : -1);
    }
    close(fd);
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&t), 0);
    e2e_server_cleanup(&t);
}

static void a_message_flood_is_limited_then_disconnected(void **state)
{
    e2e_server t;
    e2e_server_init(&t);
    const char *extra[] = {"--rate-control-msgs", "10", "--rate-max-drops", "30", NULL};
    e2e_server_start(&t, extra);
    e2e_client *c = e2e_client_new(t.port, 0, 0);
    e2e_client *calm = e2e_client_new(t.port, 0, 0);
    for (int i = 0; i < 25; i++)
        kaos_client_ping(c->c, e2e_on_pong, c);
    E2E_WAIT(c->errors >= 1, 5000);
    assert_int_equal(c->error_code, 8); /* RESOURCE_EXHAUSTED */
    assert_non_null(strstr(c->error_message, "rate limited"));
    assert_true(c->pongs >= 10 && c->pongs < 25);
    assert_true(c->connected);
    for (int i = 0; i < 100 && c->connected; i++) {
        kaos_client_ping(c->c, e2e_on_pong, c);
        e2e_pump();
    }
    E2E_WAIT(c->disconnected, 5000);
    assert_int_equal(c->disconnect_reason, KAOS_DISCONNECT_RATE_LIMITED);
    kaos_client_ping(calm->c, e2e_on_pong, calm); /* another connection is not affected */
    E2E_WAIT(calm->pongs == 1, 5000);
    e2e_client_free(c);
    e2e_client_free(calm);
    assert_int_equal(e2e_server_stop(&t), 0);
    e2e_server_cleanup(&t);
}

static void failed_logins_lock_the_account_and_the_address_until_expiry(void **state)
{
    e2e_server t;
    e2e_server_init(&t);
    const char *extra[] = {"--lockout-account-failures", "2", "--lockout-account-ms", "1500",
                           "--lockout-address-failures", "4", "--lockout-address-ms", "1500",
                           NULL};
    e2e_server_start(&t, extra);
    e2e_client *c = e2e_client_new(t.port, 0, 0);
    char ghost[40], other[40], real[40];
    e2e_device_id(ghost);
    e2e_device_id(other);
    e2e_device_id(real);
    /* account: two misses on one device lock that device */
    for (int i = 1; i <= 2; i++) {
        kaos_client_auth_device(c->c, ghost, NULL, false, NULL, e2e_on_session, c);
        E2E_WAIT(c->errors == i, 5000);
        assert_int_equal(c->error_code, 5);
    }
    kaos_client_auth_device(c->c, ghost, NULL, false, NULL, e2e_on_session, c);
    E2E_WAIT(c->errors == 3, 5000);
    assert_int_equal(c->error_code, 8);
    assert_non_null(strstr(c->error_message, "too many failed logins"));
    /* address: two more misses elsewhere reach 4 for this address */
    for (int i = 4; i <= 5; i++) {
        kaos_client_auth_device(c->c, other, NULL, false, NULL, e2e_on_session, c);
        E2E_WAIT(c->errors == i, 5000);
    }
    kaos_client_auth_device(c->c, real, NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->errors == 6, 5000);
    assert_int_equal(c->error_code, 8); /* even a good login waits out the lock */
    assert_int_equal(c->sessions, 0);
    e2e_pump_for(1600);
    kaos_client_auth_device(c->c, real, NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->sessions == 1, 5000);
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&t), 0);
    e2e_server_cleanup(&t);
}

static void a_reader_that_stops_is_closed_and_the_sender_is_not(void **state)
{
    e2e_server t;
    e2e_server_init(&t);
    const char *extra[] = {"--max-send-queue", "32", "--rate-match-msgs", "0",
                           "--rate-match-bytes", "0", NULL};
    e2e_server_start(&t, extra);
    char dev[40], dev2[40];
    e2e_device_id(dev);
    e2e_device_id(dev2);
    e2e_client *sender = e2e_client_new(t.port, 0, 0);
    e2e_auth(sender, dev);
    kaos_client_match_create(sender->c, 0, e2e_on_match, sender);
    E2E_WAIT(sender->matches == 1, 5000);

    /* The reader: a raw client that authenticates, joins, then stops reading. */
    raw_client r;
    raw_auth_and_join(&r, &t, dev2, sender->match_id);

    /* Reliable data the reader never acknowledges piles up on the server. */
    static uint8_t chunk[1200];
    for (int i = 0; i < 400; i++) {
        kaos_client_match_send(sender->c, sender->match_handle, 1, chunk, sizeof chunk, true,
                               NULL, 0);
        if (i % 20 == 0) e2e_pump();
    }
    E2E_WAIT(sender->leaves == 1, 10000); /* the server dropped the reader */
    /* Reading again, the reader learns why. */
    for (int i = 0; i < 1000 && !r.disconnected; i++) raw_pump(&r, 5);
    assert_true(r.disconnected);
    assert_int_equal(r.disconnect_reason, KAOS_DISCONNECT_SEND_QUEUE_FULL);
    /* The sender is fine. */
    kaos_client_ping(sender->c, e2e_on_pong, sender);
    E2E_WAIT(sender->pongs == 1, 5000);
    raw_close(&r);
    e2e_client_free(sender);
    assert_int_equal(e2e_server_stop(&t), 0);
    e2e_server_cleanup(&t);
}

int main(void)
{
    if (enet_initialize() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sealed_ping_round_trips_with_a_hand_rolled_client),
        cmocka_unit_test(tampered_packets_are_dropped_and_do_not_close_the_connection),
        cmocka_unit_test(replayed_and_forged_packets_cost_the_attacker_not_the_player),
        cmocka_unit_test(a_replayed_packet_is_delivered_once),
        cmocka_unit_test(a_wrong_server_key_is_refused_by_the_sdk),
        cmocka_unit_test(a_plaintext_client_is_refused_with_a_clear_error),
        cmocka_unit_test(a_request_before_the_hello_is_answered_in_plaintext_with_cid_0),
        cmocka_unit_test(a_refused_hello_is_answered_with_a_plaintext_error),
        cmocka_unit_test(connects_without_a_cookie_get_no_peer_and_no_reply),
        cmocka_unit_test(a_message_flood_is_limited_then_disconnected),
        cmocka_unit_test(failed_logins_lock_the_account_and_the_address_until_expiry),
        cmocka_unit_test(a_reader_that_stops_is_closed_and_the_sender_is_not),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
