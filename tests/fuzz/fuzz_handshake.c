/* libFuzzer target: everything a peer can send before keys exist — cookie
 * requests and replies, raw ENet datagrams classified by the receive
 * intercept, hellos (server side) and welcomes (client side). */
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_secure.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t s_pk[32], s_sk[32];
    static int ready;
    if (!ready) {
        if (kn_crypto_init() != 0) abort();
        kn_crypto_x25519_keypair(s_pk, s_sk);
        ready = 1;
    }
    uint8_t v, st;
    uint32_t cookie, connect;
    if (kn_cookie_request_parse(data, size, &v) == KN_OK && size != KN_COOKIE_REQUEST_SIZE) abort();
    if (kn_cookie_reply_parse(data, size, &v, &st, &cookie) == KN_OK && size != KN_COOKIE_REPLY_SIZE)
        abort();
    int c = kn_enet_connect_data(data, size, &connect);
    if (c < -1 || c > 1) abort();

    uint8_t welcome[KN_WELCOME_SIZE];
    kn_crypt server;
    int rc = kn_hs_server_answer(s_pk, s_sk, 1, false, data, size, welcome, &server);
    if (rc == KN_OK && size != KN_HELLO_SIZE) abort();

    /* Client side: a fresh hello, then the fuzzer's bytes as the welcome. */
    kn_hs_client hs;
    uint8_t hello[KN_HELLO_SIZE], seen[32];
    bool plain;
    kn_crypt client;
    kn_hs_client_start(&hs, (size && data[0] & 1) ? s_pk : NULL, 1, hello);
    rc = kn_hs_client_finish(&hs, data, size, &client, seen, &v, &plain);
    /* Without the server's secret key nobody can forge a welcome that verifies. */
    if (rc == KN_OK) abort();
    return 0;
}
