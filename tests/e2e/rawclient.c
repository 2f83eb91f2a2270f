/* rawclient: see header. */
#include "rawclient.h"
#include "harness.h"
#include "kn_codec.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static uint8_t pending_cookie_status = 0xff;
static uint32_t pending_cookie;

static int ENET_CALLBACK catch_cookie(ENetHost *host, ENetEvent *event)
{
    uint8_t v, st;
    uint32_t cookie;
    if (kn_cookie_reply_parse(host->receivedData, host->receivedDataLength, &v, &st, &cookie) ==
        KN_OK) {
        pending_cookie_status = st;
        pending_cookie = cookie;
        return 1;
    }
    return 0;
}

static void open_host(raw_client *rc, uint16_t port)
{
    memset(rc, 0, sizeof *rc);
    rc->host = enet_host_create(NULL, 1, 3, 0, 0);
    assert_non_null(rc->host);
    rc->host->intercept = catch_cookie;
    enet_address_set_host_ip(&rc->server, "127.0.0.1");
    rc->server.port = port;
}

static void handle(raw_client *rc, ENetEvent *ev)
{
    switch (ev->type) {
    case ENET_EVENT_TYPE_CONNECT: rc->connected = true; break;
    case ENET_EVENT_TYPE_DISCONNECT:
        rc->disconnected = true;
        rc->connected = false;
        rc->disconnect_reason = ev->data;
        break;
    case ENET_EVENT_TYPE_RECEIVE: {
        uint8_t plain[20000];
        size_t n = ev->packet->dataLength;
        const uint8_t *bytes = ev->packet->data;
        if (rc->sealed) {
            if (kn_crypt_open(&rc->crypt, ev->channelID, bytes, n, plain, &n) != KN_OK) break;
            bytes = plain;
        }
        kn_envelope *env;
        if (kn_envelope_decode(bytes, n, &env) == KN_OK) {
            rc->received++;
            rc->last_type = env->message_case;
            rc->last_cid = env->cid;
            if (env->message_case == KAOS__V1__ENVELOPE__MESSAGE_SESSION) rc->sessions++;
            if (env->message_case == KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA) rc->match_data++;
            if (env->message_case == KAOS__V1__ENVELOPE__MESSAGE_MATCH) {
                rc->matches++;
                rc->match_handle = env->match->match;
            }
            if (env->message_case == KAOS__V1__ENVELOPE__MESSAGE_ERROR) {
                rc->last_error_code = env->error->code;
                snprintf(rc->last_error, sizeof rc->last_error, "%s", env->error->message);
            }
            kn_envelope_free(env);
        }
        break;
    }
    case ENET_EVENT_TYPE_NONE: break;
    }
    if (ev->type == ENET_EVENT_TYPE_RECEIVE) enet_packet_destroy(ev->packet);
}

void raw_pump(raw_client *rc, int ms)
{
    int64_t end = e2e_now_ms() + ms;
    do {
        ENetEvent ev;
        while (enet_host_service(rc->host, &ev, 1) > 0) handle(rc, &ev);
        e2e_pump();
    } while (e2e_now_ms() < end);
}

void raw_connect(raw_client *rc, uint16_t port, const uint8_t *server_pk)
{
    open_host(rc, port);
    /* 1. cookie */
    uint8_t req[KN_COOKIE_REQUEST_SIZE];
    kn_cookie_request_build(req, 1);
    ENetBuffer b = {.data = req, .dataLength = sizeof req};
    pending_cookie_status = 0xff;
    for (int i = 0; i < 20 && pending_cookie_status == 0xff; i++) {
        enet_socket_send(rc->host->socket, &rc->server, &b, 1);
        ENetEvent ev;
        for (int k = 0; k < 10 && pending_cookie_status == 0xff; k++)
            if (enet_host_service(rc->host, &ev, 10) > 0) handle(rc, &ev);
    }
    assert_int_equal(pending_cookie_status, KN_COOKIE_OK);
    /* 2. ENet connect with the cookie as connect data */
    rc->peer = enet_host_connect(rc->host, &rc->server, 3, pending_cookie);
    assert_non_null(rc->peer);
    enet_peer_timeout(rc->peer, 8, 2000, 5000);
    int64_t deadline = e2e_now_ms() + 5000;
    while (!rc->connected && !rc->disconnected && e2e_now_ms() < deadline) raw_pump(rc, 5);
    assert_true(rc->connected);
    /* 3. hello / welcome */
    kn_hs_client hs;
    uint8_t hello[KN_HELLO_SIZE];
    kn_hs_client_start(&hs, server_pk, 1, hello);
    raw_send_bytes(rc, 0, hello, sizeof hello, true);
    deadline = e2e_now_ms() + 5000;
    bool done = false;
    while (!done && e2e_now_ms() < deadline) {
        ENetEvent ev;
        if (enet_host_service(rc->host, &ev, 5) <= 0) continue;
        if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
            uint8_t spk[32], v;
            bool plain;
            assert_int_equal(kn_hs_client_finish(&hs, ev.packet->data, ev.packet->dataLength,
                                                 &rc->crypt, spk, &v, &plain),
                             KN_OK);
            enet_packet_destroy(ev.packet);
            done = true;
        } else {
            handle(rc, &ev);
        }
    }
    assert_true(done);
    rc->sealed = true;
    kn_hs_client_wipe(&hs);
}

bool raw_connect_without_cookie(raw_client *rc, uint16_t port, uint32_t data, int wait_ms)
{
    open_host(rc, port);
    rc->peer = enet_host_connect(rc->host, &rc->server, 3, data);
    assert_non_null(rc->peer);
    int64_t deadline = e2e_now_ms() + wait_ms;
    while (!rc->connected && e2e_now_ms() < deadline) raw_pump(rc, 5);
    return rc->connected;
}

static size_t pack_ping(uint32_t cid, uint8_t *out)
{
    Kaos__V1__Ping ping = KAOS__V1__PING__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = cid;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PING;
    env.ping = &ping;
    return kn_envelope_pack(&env, out);
}

size_t raw_seal_ping(raw_client *rc, uint32_t cid, uint8_t *out, size_t cap)
{
    uint8_t plain[64];
    size_t n = pack_ping(cid, plain);
    assert_true(cap >= n + KN_SEAL_OVERHEAD);
    kn_crypt_seal(&rc->crypt, 0, plain, n, out);
    return n + KN_SEAL_OVERHEAD;
}

size_t raw_seal_env(raw_client *rc, uint8_t channel, const void *envp, uint8_t *out, size_t cap)
{
    const kn_envelope *env = envp;
    size_t n = kn_envelope_packed_size(env);
    uint8_t *plain = malloc(n + 1);
    assert_non_null(plain);
    assert_true(rc->sealed && cap >= n + KN_SEAL_OVERHEAD);
    kn_envelope_pack(env, plain);
    kn_crypt_seal(&rc->crypt, channel, plain, n, out);
    free(plain);
    return n + KN_SEAL_OVERHEAD;
}

void raw_send_env(raw_client *rc, const void *envp)
{
    const kn_envelope *env = envp;
    size_t n = kn_envelope_packed_size(env);
    uint8_t *plain = malloc(n + 1), *sealed = malloc(n + KN_SEAL_OVERHEAD);
    assert_non_null(plain);
    assert_non_null(sealed);
    kn_envelope_pack(env, plain);
    if (rc->sealed) {
        kn_crypt_seal(&rc->crypt, 0, plain, n, sealed);
        raw_send_bytes(rc, 0, sealed, n + KN_SEAL_OVERHEAD, true);
    } else {
        raw_send_bytes(rc, 0, plain, n, true);
    }
    free(plain);
    free(sealed);
}

void raw_send_ping(raw_client *rc, uint32_t cid)
{
    uint8_t buf[128];
    if (rc->sealed) {
        size_t n = raw_seal_ping(rc, cid, buf, sizeof buf);
        raw_send_bytes(rc, 0, buf, n, true);
    } else {
        size_t n = pack_ping(cid, buf);
        raw_send_bytes(rc, 0, buf, n, true);
    }
}

void raw_send_bytes(raw_client *rc, uint8_t channel, const void *data, size_t len, bool reliable)
{
    ENetPacket *p = enet_packet_create(data, len, reliable ? ENET_PACKET_FLAG_RELIABLE : 0);
    assert_non_null(p);
    if (enet_peer_send(rc->peer, channel, p) != 0) enet_packet_destroy(p);
    enet_host_flush(rc->host);
}

void raw_close(raw_client *rc)
{
    if (rc->host) enet_host_destroy(rc->host);
    rc->host = NULL;
}
