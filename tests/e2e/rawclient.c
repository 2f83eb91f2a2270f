/* rawclient: see header. Every byte layout below is docs/protocol.md's,
 * section by section ("Connecting, byte by byte"). */
#include "rawclient.h"
#include "harness.h"
#include "kn_codec.h"
#include "kn_crypto.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define SEAL_OVERHEAD 20 /* 4-byte counter + 16-byte tag */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* --- 1. cookie request and reply ------------------------------------------------------ */

static uint8_t pending_cookie_status = 0xff;
static uint32_t pending_cookie;

/* The reply (16 bytes): "KNCR", version, status, 2 zero, cookie (BE), 4 zero. */
static int ENET_CALLBACK catch_cookie(ENetHost *host, ENetEvent *event)
{
    const uint8_t *d = host->receivedData;
    if (host->receivedDataLength != 16 || memcmp(d, "KNCR", 4)) return 0;
    pending_cookie_status = d[5];
    pending_cookie = (uint32_t)d[8] << 24 | (uint32_t)d[9] << 16 | (uint32_t)d[10] << 8 | d[11];
    return 1;
}

/* --- 4. sealed packets ---------------------------------------------------------------- */

/* nonce: channel, 0, 0, 0, counter (8 bytes LE) */
static void make_nonce(uint8_t nonce[12], uint8_t channel, uint64_t counter)
{
    memset(nonce, 0, 12);
    nonce[0] = channel;
    for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

/* out: low 32 bits of the counter (LE), then ciphertext and tag; key c2s,
 * associated data the channel byte. Returns n + 20. */
static size_t seal(raw_client *rc, uint8_t channel, const uint8_t *plain, size_t n, uint8_t *out)
{
    assert_true(channel < 3);
    uint64_t ctr = rc->tx_next[channel]++;
    uint8_t nonce[12];
    make_nonce(nonce, channel, ctr);
    put_le32(out, (uint32_t)ctr);
    kn_crypto_aead_seal(out + 4, plain, n, &channel, 1, nonce, rc->c2s);
    return n + SEAL_OVERHEAD;
}

/* The full counter from its low 32 bits: the value within 2^31 of `next`
 * (never below 0) with those low bits. */
static uint64_t widen(uint64_t next, uint32_t low)
{
    uint64_t c = (next & ~(uint64_t)0xFFFFFFFF) | low;
    if (c + 0x80000000u < next) c += 0x100000000u;
    else if (c > next + 0x80000000u && c >= 0x100000000u) c -= 0x100000000u;
    return c;
}

/* Opens a packet from the server (key s2c); false when it fails a check. */
static bool open_sealed(raw_client *rc, uint8_t ch, const uint8_t *in, size_t len, uint8_t *out,
                        size_t *out_len)
{
    if (ch > 2 || len < SEAL_OVERHEAD) return false;
    uint64_t next = rc->rx_next[ch], c = widen(next, get_le32(in)), age = 0;
    if (ch < 2 && c != next) return false; /* reliable: exactly the next one */
    if (ch == 2 && c < next) {             /* unreliable: new, within 63 of the newest */
        age = next - 1 - c;
        if (age >= 64 || (rc->rx_seen[2] >> age) & 1) return false;
    }
    uint8_t nonce[12];
    make_nonce(nonce, ch, c);
    if (kn_crypto_aead_open(out, out_len, in + 4, len - 4, &ch, 1, nonce, rc->s2c) != KN_OK)
        return false;
    if (ch < 2) {
        rc->rx_next[ch] = next + 1;
    } else if (c >= next) {
        uint64_t shift = c - next + 1;
        rc->rx_seen[2] = (shift >= 64 ? 0 : rc->rx_seen[2] << shift) | 1;
        rc->rx_next[2] = c + 1;
    } else {
        rc->rx_seen[2] |= (uint64_t)1 << age;
    }
    return true;
}

static void open_host(raw_client *rc, uint16_t port)
{
    memset(rc, 0, sizeof *rc);
    assert_int_equal(kn_crypto_init(), KN_OK);
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
            if (!open_sealed(rc, ev->channelID, bytes, n, plain, &n)) break;
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

/* --- 3. hello and welcome ------------------------------------------------------------ */

/* Checks the 88-byte welcome and derives the keys (the Noise NK pattern of
 * the page). Fails the test on anything but status 0 and a good proof. */
static void finish_handshake(raw_client *rc, const uint8_t e_c[32], const uint8_t e_c_sk[32],
                             const uint8_t *pinned, const uint8_t *w, size_t len)
{
    if (len != 88 || memcmp(w, "KNH2", 4)) {
        kn_envelope *env = NULL; /* a refused hello is answered with a plaintext Error */
        if (kn_envelope_decode(w, len, &env) == KN_OK && env->error)
            fail_msg("hello refused: %s", env->error->message);
        fail_msg("not a welcome (%zu bytes)", len);
    }
    assert_int_equal(w[4], 1); /* the server's protocol version */
    assert_int_equal(w[5], 0); /* status: sealed */
    const uint8_t *s = w + 8, *e_s = w + 40, *proof = w + 72;
    if (pinned) assert_memory_equal(s, pinned, 32);
    uint8_t dh1[32], dh2[32];
    assert_int_equal(kn_crypto_x25519(dh1, e_c_sk, s), KN_OK);
    assert_int_equal(kn_crypto_x25519(dh2, e_c_sk, e_s), KN_OK);
    /* h = BLAKE2b-512("KaosNet handshake v1" (20 bytes, no NUL) || version
     *     || e_c || S || e_s || dh1 || dh2) */
    static const char label[] = "KaosNet handshake v1";
    uint8_t t[20 + 1 + 5 * 32], h[64];
    memcpy(t, label, 20);
    t[20] = 1;
    const uint8_t *parts[5] = {e_c, s, e_s, dh1, dh2};
    for (int i = 0; i < 5; i++) memcpy(t + 21 + 32 * i, parts[i], 32);
    kn_crypto_blake2b(h, sizeof h, t, sizeof t);
    memcpy(rc->c2s, h, 32);
    memcpy(rc->s2c, h + 32, 32);
    /* proof: the tag of an empty plaintext, key s2c, nonce 12 x 0xFF,
     * associated data welcome[0..72) */
    uint8_t nonce[12], none[1];
    memset(nonce, 0xFF, sizeof nonce);
    assert_int_equal(kn_crypto_aead_open(none, NULL, proof, 16, w, 72, nonce, rc->s2c), KN_OK);
}

void raw_connect_unsealed(raw_client *rc, uint16_t port)
{
    open_host(rc, port);
    /* 1. cookie request (48 bytes): "KNCQ", version 1, 43 zero; resent
     * every 250 ms until a reply with status OK */
    uint8_t req[48] = {'K', 'N', 'C', 'Q', 1};
    ENetBuffer b = {.data = req, .dataLength = sizeof req};
    pending_cookie_status = 0xff;
    for (int i = 0; i < 20 && pending_cookie_status != 0; i++) {
        pending_cookie_status = 0xff;
        enet_socket_send(rc->host->socket, &rc->server, &b, 1);
        ENetEvent ev;
        for (int k = 0; k < 25 && pending_cookie_status == 0xff; k++)
            if (enet_host_service(rc->host, &ev, 10) > 0) handle(rc, &ev);
    }
    assert_int_equal(pending_cookie_status, 0);
    /* 2. ENet connect, 3 channels, the cookie as connect data */
    rc->peer = enet_host_connect(rc->host, &rc->server, 3, pending_cookie);
    assert_non_null(rc->peer);
    enet_peer_timeout(rc->peer, 8, 2000, 5000);
    int64_t deadline = e2e_now_ms() + 5000;
    while (!rc->connected && !rc->disconnected && e2e_now_ms() < deadline) raw_pump(rc, 5);
    assert_true(rc->connected);
}

void raw_connect(raw_client *rc, uint16_t port, const uint8_t *server_pk)
{
    raw_connect_unsealed(rc, port);
    /* 3. hello (40 bytes): "KNH1", version 1, 3 zero, e_c */
    uint8_t e_c[32], e_c_sk[32], hello[40] = {'K', 'N', 'H', '1', 1};
    kn_crypto_x25519_keypair(e_c, e_c_sk);
    memcpy(hello + 8, e_c, 32);
    raw_send_bytes(rc, 0, hello, sizeof hello, true);
    int64_t deadline = e2e_now_ms() + 5000;
    bool done = false;
    while (!done && e2e_now_ms() < deadline) {
        ENetEvent ev;
        if (enet_host_service(rc->host, &ev, 5) <= 0) continue;
        if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
            finish_handshake(rc, e_c, e_c_sk, server_pk, ev.packet->data, ev.packet->dataLength);
            enet_packet_destroy(ev.packet);
            done = true;
        } else {
            handle(rc, &ev);
        }
    }
    assert_true(done);
    rc->sealed = true;
    kn_crypto_wipe(e_c_sk, sizeof e_c_sk);
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
    assert_true(cap >= n + SEAL_OVERHEAD);
    return seal(rc, 0, plain, n, out);
}

size_t raw_seal_env(raw_client *rc, uint8_t channel, const void *envp, uint8_t *out, size_t cap)
{
    const kn_envelope *env = envp;
    size_t n = kn_envelope_packed_size(env);
    uint8_t *plain = malloc(n + 1);
    assert_non_null(plain);
    assert_true(rc->sealed && cap >= n + SEAL_OVERHEAD);
    kn_envelope_pack(env, plain);
    seal(rc, channel, plain, n, out);
    free(plain);
    return n + SEAL_OVERHEAD;
}

void raw_send_env(raw_client *rc, const void *envp)
{
    const kn_envelope *env = envp;
    size_t n = kn_envelope_packed_size(env);
    uint8_t *plain = malloc(n + 1), *sealed = malloc(n + SEAL_OVERHEAD);
    assert_non_null(plain);
    assert_non_null(sealed);
    kn_envelope_pack(env, plain);
    if (rc->sealed) {
        raw_send_bytes(rc, 0, sealed, seal(rc, 0, plain, n, sealed), true);
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
