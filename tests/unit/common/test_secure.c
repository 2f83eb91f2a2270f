/* Transport security primitives: cookie, handshake, sealed channels. */
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_secure.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static const uint8_t secret[16] = "cookie-secret-16";

static void cookie_round_trip_and_windows(void **state)
{
    uint8_t req[KN_COOKIE_REQUEST_SIZE], rep[KN_COOKIE_REPLY_SIZE], v, st;
    kn_cookie_request_build(req, 1);
    assert_int_equal(kn_cookie_request_parse(req, sizeof req, &v), KN_OK);
    assert_int_equal(v, 1);
    assert_int_equal(kn_cookie_request_parse(req, sizeof req - 1, &v), KN_ERR_MALFORMED);
    req[30] = 1;
    assert_int_equal(kn_cookie_request_parse(req, sizeof req, &v), KN_ERR_MALFORMED);
    assert_true(KN_COOKIE_REQUEST_SIZE >= 3 * KN_COOKIE_REPLY_SIZE); /* no amplification */

    uint32_t host = 0x0100007f, cookie = kn_cookie_issue(secret, host, 5000, 100000);
    kn_cookie_reply_build(rep, 1, KN_COOKIE_OK, cookie);
    uint32_t got;
    assert_int_equal(kn_cookie_reply_parse(rep, sizeof rep, &v, &st, &got), KN_OK);
    assert_int_equal(got, cookie);
    assert_int_equal(st, KN_COOKIE_OK);
    assert_true(kn_cookie_check(secret, host, 5000, 100000, cookie));
    assert_true(kn_cookie_check(secret, host, 5000, 100000 + KN_COOKIE_WINDOW_MS, cookie));
    assert_false(kn_cookie_check(secret, host, 5000, 100000 + 2 * KN_COOKIE_WINDOW_MS, cookie));
    assert_false(kn_cookie_check(secret, host, 5001, 100000, cookie));     /* other port */
    assert_false(kn_cookie_check(secret, host + 1, 5000, 100000, cookie)); /* other address */
    static const uint8_t other[16] = "another-secret!!";
    assert_false(kn_cookie_check(other, host, 5000, 100000, cookie));
}

static void connect_datagrams_are_recognised(void **state)
{
    uint8_t d[4 + 48] = {0x8f, 0xff, 0x12, 0x34}; /* sent-time flag, peer id 0xFFF */
    d[4] = 0x82;                                   /* CONNECT | ACKNOWLEDGE */
    d[5] = 0xff;
    d[4 + 44] = 0xde, d[4 + 45] = 0xad, d[4 + 46] = 0xbe, d[4 + 47] = 0xef;
    uint32_t data = 0;
    assert_int_equal(kn_enet_connect_data(d, sizeof d, &data), 1);
    assert_int_equal(data, 0xdeadbeef);
    assert_int_equal(kn_enet_connect_data(d, sizeof d - 1, &data), -1);
    d[4] = 0x86; /* SEND_RELIABLE to no peer */
    assert_int_equal(kn_enet_connect_data(d, sizeof d, &data), -1);
    d[0] = 0xcf; /* compressed */
    assert_int_equal(kn_enet_connect_data(d, sizeof d, &data), -1);
    uint8_t to_peer[8] = {0x80, 0x05};
    assert_int_equal(kn_enet_connect_data(to_peer, sizeof to_peer, &data), 0);
    assert_int_equal(kn_enet_connect_data(to_peer, 1, &data), -1);
}

typedef struct pair {
    kn_crypt client, server;
} pair;

static void handshake(pair *p, const uint8_t *pin, const uint8_t s_pk[32], const uint8_t s_sk[32])
{
    kn_hs_client hs;
    uint8_t hello[KN_HELLO_SIZE], welcome[KN_WELCOME_SIZE], seen[32], v;
    bool plain;
    kn_hs_client_start(&hs, pin, 1, hello);
    assert_true(kn_hello_magic(hello, sizeof hello));
    assert_int_equal(kn_hs_server_answer(s_pk, s_sk, 1, false, hello, sizeof hello, welcome,
                                         &p->server),
                     KN_OK);
    assert_int_equal(kn_hs_client_finish(&hs, welcome, sizeof welcome, &p->client, seen, &v, &plain),
                     KN_OK);
    assert_memory_equal(seen, s_pk, 32);
    kn_hs_client_wipe(&hs);
}

static void handshake_derives_matching_keys_and_sealed_data_flows(void **state)
{
    uint8_t s_pk[32], s_sk[32];
    kn_crypto_x25519_keypair(s_pk, s_sk);
    pair p;
    handshake(&p, s_pk, s_pk, s_sk);
    assert_memory_equal(p.client.tx_key, p.server.rx_key, 32);
    assert_memory_equal(p.client.rx_key, p.server.tx_key, 32);
    assert_memory_not_equal(p.client.tx_key, p.client.rx_key, 32);

    for (uint8_t ch = 0; ch < 3; ch++) {
        for (int i = 0; i < 5; i++) {
            uint8_t msg[32], sealed[32 + KN_SEAL_OVERHEAD], opened[32];
            memset(msg, 'a' + i, sizeof msg);
            size_t n;
            assert_int_equal(kn_crypt_seal(&p.client, ch, msg, sizeof msg, sealed), KN_OK);
            assert_int_equal(kn_crypt_open(&p.server, ch, sealed, sizeof sealed, opened, &n), KN_OK);
            assert_int_equal(n, sizeof msg);
            assert_memory_equal(opened, msg, sizeof msg);
        }
    }
    /* A second connection with the same server key gets other keys. */
    pair q;
    handshake(&q, s_pk, s_pk, s_sk);
    assert_memory_not_equal(q.client.tx_key, p.client.tx_key, 32);
}

static void wrong_pinned_key_is_refused(void **state)
{
    uint8_t s_pk[32], s_sk[32], other_pk[32], other_sk[32];
    kn_crypto_x25519_keypair(s_pk, s_sk);
    kn_crypto_x25519_keypair(other_pk, other_sk);
    kn_hs_client hs;
    kn_crypt server, client;
    uint8_t hello[KN_HELLO_SIZE], welcome[KN_WELCOME_SIZE], seen[32], v;
    bool plain;
    kn_hs_client_start(&hs, other_pk, 1, hello);
    assert_int_equal(kn_hs_server_answer(s_pk, s_sk, 1, false, hello, sizeof hello, welcome, &server),
                     KN_OK);
    assert_int_equal(kn_hs_client_finish(&hs, welcome, sizeof welcome, &client, seen, &v, &plain),
                     KN_ERR_PERMISSION_DENIED);

    /* An impostor that claims the real public key but lacks its secret key. */
    kn_hs_client_start(&hs, s_pk, 1, hello);
    assert_int_equal(kn_hs_server_answer(s_pk, other_sk, 1, false, hello, sizeof hello, welcome,
                                         &server),
                     KN_OK);
    assert_int_equal(kn_hs_client_finish(&hs, welcome, sizeof welcome, &client, seen, &v, &plain),
                     KN_ERR_PERMISSION_DENIED);
}

static void version_mismatch_and_plaintext_servers_are_reported(void **state)
{
    uint8_t s_pk[32], s_sk[32];
    kn_crypto_x25519_keypair(s_pk, s_sk);
    kn_hs_client hs;
    kn_crypt server, client;
    uint8_t hello[KN_HELLO_SIZE], welcome[KN_WELCOME_SIZE], seen[32], v;
    bool plain;
    kn_hs_client_start(&hs, s_pk, 9, hello);
    assert_int_equal(kn_hs_server_answer(s_pk, s_sk, 1, false, hello, sizeof hello, welcome, &server),
                     KN_ERR_VERSION);
    assert_int_equal(kn_hs_client_finish(&hs, welcome, sizeof welcome, &client, seen, &v, &plain),
                     KN_ERR_VERSION);
    assert_int_equal(v, 1);

    kn_hs_client_start(&hs, NULL, 1, hello);
    assert_int_equal(kn_hs_server_answer(s_pk, s_sk, 1, true, hello, sizeof hello, welcome, &server),
                     KN_OK);
    assert_int_equal(kn_hs_client_finish(&hs, welcome, sizeof welcome, &client, seen, &v, &plain),
                     KN_ERR_FAILED_PRECONDITION);
    assert_true(plain);
    assert_int_equal(kn_hs_server_answer(s_pk, s_sk, 1, false, hello, sizeof hello - 1, welcome,
                                         &server),
                     KN_ERR_MALFORMED);
}

static void tampered_replayed_and_reordered_packets_are_refused(void **state)
{
    uint8_t s_pk[32], s_sk[32];
    kn_crypto_x25519_keypair(s_pk, s_sk);
    pair p;
    handshake(&p, s_pk, s_pk, s_sk);
    uint8_t m[8] = "payload", a[8 + KN_SEAL_OVERHEAD], b[8 + KN_SEAL_OVERHEAD], out[8];
    size_t n;
    /* tamper: every byte position */
    kn_crypt_seal(&p.client, 0, m, 8, a);
    for (size_t i = 0; i < sizeof a; i++) {
        uint8_t t[sizeof a];
        memcpy(t, a, sizeof a);
        t[i] ^= 0x01;
        assert_int_not_equal(kn_crypt_open(&p.server, 0, t, sizeof t, out, &n), KN_OK);
    }
    /* the right channel is part of the authentication */
    assert_int_not_equal(kn_crypt_open(&p.server, 1, a, sizeof a, out, &n), KN_OK);
    assert_int_equal(kn_crypt_open(&p.server, 0, a, sizeof a, out, &n), KN_OK);
    /* replay on an ordered channel */
    assert_int_equal(kn_crypt_open(&p.server, 0, a, sizeof a, out, &n), KN_ERR_DATA_LOSS);
    /* skipping ahead on an ordered channel */
    kn_crypt_seal(&p.client, 0, m, 8, a);
    kn_crypt_seal(&p.client, 0, m, 8, b);
    assert_int_equal(kn_crypt_open(&p.server, 0, b, sizeof b, out, &n), KN_ERR_DATA_LOSS);
    assert_int_equal(kn_crypt_open(&p.server, 0, a, sizeof a, out, &n), KN_OK);
    assert_int_equal(kn_crypt_open(&p.server, 0, b, sizeof b, out, &n), KN_OK);
    /* too short */
    assert_int_equal(kn_crypt_open(&p.server, 0, a, KN_SEAL_OVERHEAD - 1, out, &n), KN_ERR_MALFORMED);
}

static void unreliable_channel_accepts_late_packets_once_inside_the_window(void **state)
{
    uint8_t s_pk[32], s_sk[32];
    kn_crypto_x25519_keypair(s_pk, s_sk);
    pair p;
    handshake(&p, s_pk, s_pk, s_sk);
    enum { N = 100 };
    static uint8_t sealed[N][4 + KN_SEAL_OVERHEAD];
    uint8_t m[4] = "xyz", out[4];
    size_t n;
    for (int i = 0; i < N; i++) kn_crypt_seal(&p.client, 2, m, 4, sealed[i]);
    assert_int_equal(kn_crypt_open(&p.server, 2, sealed[90], sizeof sealed[0], out, &n), KN_OK);
    assert_int_equal(kn_crypt_open(&p.server, 2, sealed[50], sizeof sealed[0], out, &n), KN_OK);
    assert_int_equal(kn_crypt_open(&p.server, 2, sealed[50], sizeof sealed[0], out, &n),
                     KN_ERR_DATA_LOSS); /* twice */
    assert_int_equal(kn_crypt_open(&p.server, 2, sealed[90], sizeof sealed[0], out, &n),
                     KN_ERR_DATA_LOSS);
    assert_int_equal(kn_crypt_open(&p.server, 2, sealed[10], sizeof sealed[0], out, &n),
                     KN_ERR_DATA_LOSS); /* 80 behind: outside the window */
    assert_int_equal(kn_crypt_open(&p.server, 2, sealed[99], sizeof sealed[0], out, &n), KN_OK);
    assert_int_equal(kn_crypt_open(&p.server, 2, sealed[91], sizeof sealed[0], out, &n), KN_OK);
}

static void counters_survive_the_32_bit_wrap(void **state)
{
    uint8_t s_pk[32], s_sk[32];
    kn_crypto_x25519_keypair(s_pk, s_sk);
    pair p;
    handshake(&p, s_pk, s_pk, s_sk);
    p.client.tx_next[0] = p.server.rx_next[0] = 0xfffffffeULL;
    p.client.tx_next[2] = p.server.rx_next[2] = 0xfffffff0ULL;
    uint8_t m[1] = {7}, s[1 + KN_SEAL_OVERHEAD], out[1];
    size_t n;
    for (int i = 0; i < 4; i++) {
        kn_crypt_seal(&p.client, 0, m, 1, s);
        assert_int_equal(kn_crypt_open(&p.server, 0, s, sizeof s, out, &n), KN_OK);
        kn_crypt_seal(&p.client, 2, m, 1, s);
        p.client.tx_next[2] += 8; /* and skip some */
        assert_int_equal(kn_crypt_open(&p.server, 2, s, sizeof s, out, &n), KN_OK);
    }
    assert_int_equal(p.server.rx_next[0], 0x100000002ULL);
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cookie_round_trip_and_windows),
        cmocka_unit_test(connect_datagrams_are_recognised),
        cmocka_unit_test(handshake_derives_matching_keys_and_sealed_data_flows),
        cmocka_unit_test(wrong_pinned_key_is_refused),
        cmocka_unit_test(version_mismatch_and_plaintext_servers_are_reported),
        cmocka_unit_test(tampered_replayed_and_reordered_packets_are_refused),
        cmocka_unit_test(unreliable_channel_accepts_late_packets_once_inside_the_window),
        cmocka_unit_test(counters_survive_the_32_bit_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
