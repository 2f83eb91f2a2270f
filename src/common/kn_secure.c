/* kn_secure: cookie, handshake and channel crypto; layouts in docs/protocol.md. */
#include "kn_secure.h"
#include "kn_crypto.h"
#include "kn_error.h"

#include <string.h>

static const uint8_t cookie_req_magic[4] = {'K', 'N', 'C', 'Q'};
static const uint8_t cookie_rep_magic[4] = {'K', 'N', 'C', 'R'};
static const uint8_t hello_magic[4] = {'K', 'N', 'H', '1'};
static const uint8_t welcome_magic[4] = {'K', 'N', 'H', '2'};
static const char kdf_label[] = "KaosNet handshake v1"; /* 20 bytes, no NUL */

/* ENet wire constants (protocol.h), repeated here so this layer needs no ENet. */
#define ENET_PEER_ID_NONE 0x0FFF
#define ENET_FLAG_COMPRESSED 0x4000
#define ENET_FLAG_SENT_TIME 0x8000
#define ENET_COMMAND_MASK 0x0F
#define ENET_COMMAND_CONNECT 2
#define ENET_CONNECT_SIZE 48
#define ENET_CONNECT_DATA_OFFSET 44

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= p[i];
    return acc == 0;
}

/* --- cookie ------------------------------------------------------------------ */

void kn_cookie_request_build(uint8_t out[KN_COOKIE_REQUEST_SIZE], uint8_t version)
{
    memset(out, 0, KN_COOKIE_REQUEST_SIZE);
    memcpy(out, cookie_req_magic, 4);
    out[4] = version;
}

int kn_cookie_request_parse(const uint8_t *buf, size_t len, uint8_t *version)
{
    if (len != KN_COOKIE_REQUEST_SIZE || memcmp(buf, cookie_req_magic, 4) ||
        !all_zero(buf + 5, KN_COOKIE_REQUEST_SIZE - 5))
        return KN_ERR_MALFORMED;
    *version = buf[4];
    return KN_OK;
}

void kn_cookie_reply_build(uint8_t out[KN_COOKIE_REPLY_SIZE], uint8_t server_version,
                           uint8_t status, uint32_t cookie)
{
    memset(out, 0, KN_COOKIE_REPLY_SIZE);
    memcpy(out, cookie_rep_magic, 4);
    out[4] = server_version;
    out[5] = status;
    put_be32(out + 8, cookie);
}

int kn_cookie_reply_parse(const uint8_t *buf, size_t len, uint8_t *server_version,
                          uint8_t *status, uint32_t *cookie)
{
    if (len != KN_COOKIE_REPLY_SIZE || memcmp(buf, cookie_rep_magic, 4)) return KN_ERR_MALFORMED;
    *server_version = buf[4];
    *status = buf[5];
    *cookie = get_be32(buf + 8);
    return KN_OK;
}

uint32_t kn_cookie_compute(const uint8_t secret[KN_COOKIE_SECRET_SIZE], uint32_t host,
                           uint16_t port, uint64_t window)
{
    uint8_t in[3 + 4 + 2 + 8] = {'k', 'c', '1'};
    memcpy(in + 3, &host, 4); /* network order as ENet keeps it */
    in[7] = (uint8_t)(port >> 8);
    in[8] = (uint8_t)port;
    for (int i = 0; i < 8; i++) in[9 + i] = (uint8_t)(window >> (56 - 8 * i));
    uint8_t h[KN_CRYPTO_SHORTHASH_SIZE];
    kn_crypto_shorthash(h, in, sizeof in, secret);
    return get_be32(h);
}

uint32_t kn_cookie_issue(const uint8_t secret[KN_COOKIE_SECRET_SIZE], uint32_t host,
                         uint16_t port, int64_t now_ms)
{
    return kn_cookie_compute(secret, host, port, (uint64_t)now_ms / KN_COOKIE_WINDOW_MS);
}

bool kn_cookie_check(const uint8_t secret[KN_COOKIE_SECRET_SIZE], uint32_t host, uint16_t port,
                     int64_t now_ms, uint32_t cookie)
{
    uint64_t w = (uint64_t)now_ms / KN_COOKIE_WINDOW_MS;
    return kn_cookie_compute(secret, host, port, w) == cookie ||
           (w > 0 && kn_cookie_compute(secret, host, port, w - 1) == cookie);
}

int kn_enet_connect_data(const uint8_t *d, size_t len, uint32_t *connect_data)
{
    if (len < 2) return -1;
    uint16_t peer = (uint16_t)(d[0] << 8 | d[1]);
    if ((peer & ENET_PEER_ID_NONE) != ENET_PEER_ID_NONE) return 0;
    /* To no slot: only a lone, uncompressed CONNECT is legitimate. */
    if (peer & ENET_FLAG_COMPRESSED) return -1;
    size_t header = (peer & ENET_FLAG_SENT_TIME) ? 4 : 2;
    if (len != header + ENET_CONNECT_SIZE) return -1;
    const uint8_t *cmd = d + header;
    if ((cmd[0] & ENET_COMMAND_MASK) != ENET_COMMAND_CONNECT) return -1;
    *connect_data = get_be32(cmd + ENET_CONNECT_DATA_OFFSET);
    return 1;
}

/* --- handshake ------------------------------------------------------------------ */

bool kn_hello_magic(const uint8_t *buf, size_t len)
{
    return len >= 4 && memcmp(buf, hello_magic, 4) == 0;
}

static const uint8_t proof_nonce[KN_CRYPTO_AEAD_NONCE_SIZE] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                               0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* Both sides: keys from the transcript and the two DH results. */
static void derive(uint8_t version, const uint8_t e_c[32], const uint8_t s[32],
                   const uint8_t e_s[32], const uint8_t dh1[32], const uint8_t dh2[32],
                   kn_crypt *out)
{
    /* BLAKE2b over the concatenation, the same bytes a streaming hash sees. */
    uint8_t t[sizeof kdf_label - 1 + 1 + 5 * 32];
    uint8_t *p = t;
    memcpy(p, kdf_label, sizeof kdf_label - 1);
    p += sizeof kdf_label - 1;
    *p++ = version;
    const uint8_t *parts[5] = {e_c, s, e_s, dh1, dh2};
    for (int i = 0; i < 5; i++, p += 32)
        memcpy(p, parts[i], 32);
    uint8_t h[64];
    kn_crypto_blake2b(h, sizeof h, t, sizeof t);
    memset(out, 0, sizeof *out);
    /* c2s then s2c; each side maps them to tx/rx below. */
    memcpy(out->tx_key, h, 32);
    memcpy(out->rx_key, h + 32, 32);
    kn_crypto_wipe(h, sizeof h);
    kn_crypto_wipe(t, sizeof t);
}

static void swap_keys(kn_crypt *c)
{
    uint8_t t[32];
    memcpy(t, c->tx_key, 32);
    memcpy(c->tx_key, c->rx_key, 32);
    memcpy(c->rx_key, t, 32);
    kn_crypto_wipe(t, sizeof t);
}

void kn_hs_client_start(kn_hs_client *hs, const uint8_t *pinned, uint8_t version,
                        uint8_t hello[KN_HELLO_SIZE])
{
    memset(hs, 0, sizeof *hs);
    kn_crypto_x25519_keypair(hs->e_pk, hs->e_sk); /* X25519 key pair */
    hs->version = version;
    if (pinned) {
        memcpy(hs->pinned, pinned, 32);
        hs->has_pin = true;
    }
    memset(hello, 0, KN_HELLO_SIZE);
    memcpy(hello, hello_magic, 4);
    hello[4] = version;
    memcpy(hello + 8, hs->e_pk, 32);
}

void kn_hs_client_wipe(kn_hs_client *hs)
{
    kn_crypto_wipe(hs, sizeof *hs);
}

int kn_hs_client_finish(kn_hs_client *hs, const uint8_t *w, size_t len, kn_crypt *out,
                        uint8_t server_pk[KN_KEY_SIZE], uint8_t *server_version, bool *plaintext)
{
    *plaintext = false;
    if (len != KN_WELCOME_SIZE || memcmp(w, welcome_magic, 4)) return KN_ERR_MALFORMED;
    *server_version = w[4];
    memcpy(server_pk, w + 8, 32);
    if (w[5] == KN_WELCOME_BAD_VERSION) return KN_ERR_VERSION;
    if (hs->has_pin && !kn_crypto_equal(server_pk, hs->pinned, 32)) return KN_ERR_PERMISSION_DENIED;
    if (w[5] == KN_WELCOME_PLAINTEXT) {
        *plaintext = true;
        return KN_ERR_FAILED_PRECONDITION;
    }
    if (w[5] != KN_WELCOME_SEALED || w[4] != hs->version) return KN_ERR_MALFORMED;
    const uint8_t *e_s = w + 40, *tag = w + 72;
    uint8_t dh1[32], dh2[32];
    int rc = KN_OK;
    if (kn_crypto_x25519(dh1, hs->e_sk, server_pk) != 0 ||
        kn_crypto_x25519(dh2, hs->e_sk, e_s) != 0) {
        rc = KN_ERR_PERMISSION_DENIED; /* low-order point: not a real key */
    } else {
        derive(hs->version, hs->e_pk, server_pk, e_s, dh1, dh2, out);
        /* derive() put c2s in tx and s2c in rx: right for the client. */
        uint8_t none[1];
        if (kn_crypto_aead_open(none, NULL, tag, 16, w, 72, proof_nonce, out->rx_key) != 0) {
            kn_crypt_wipe(out);
            rc = KN_ERR_PERMISSION_DENIED;
        }
    }
    kn_crypto_wipe(dh1, sizeof dh1);
    kn_crypto_wipe(dh2, sizeof dh2);
    return rc;
}

int kn_hs_server_answer(const uint8_t s_pk[KN_KEY_SIZE], const uint8_t s_sk[KN_KEY_SIZE],
                        uint8_t version, bool plaintext, const uint8_t *hello, size_t len,
                        uint8_t w[KN_WELCOME_SIZE], kn_crypt *out)
{
    if (len != KN_HELLO_SIZE || memcmp(hello, hello_magic, 4) || hello[5] || hello[6] ||
        hello[7])
        return KN_ERR_MALFORMED;
    memset(w, 0, KN_WELCOME_SIZE);
    memcpy(w, welcome_magic, 4);
    w[4] = version;
    memcpy(w + 8, s_pk, 32);
    if (hello[4] != version) {
        w[5] = KN_WELCOME_BAD_VERSION;
        return KN_ERR_VERSION;
    }
    if (plaintext) {
        w[5] = KN_WELCOME_PLAINTEXT;
        return KN_OK;
    }
    const uint8_t *e_c = hello + 8;
    uint8_t e_pk[32], e_sk[32], dh1[32], dh2[32];
    kn_crypto_x25519_keypair(e_pk, e_sk);
    int rc = KN_OK;
    if (kn_crypto_x25519(dh1, s_sk, e_c) != 0 || kn_crypto_x25519(dh2, e_sk, e_c) != 0) {
        rc = KN_ERR_MALFORMED;
    } else {
        w[5] = KN_WELCOME_SEALED;
        memcpy(w + 40, e_pk, 32);
        derive(version, e_c, s_pk, e_pk, dh1, dh2, out);
        swap_keys(out); /* server sends s2c, receives c2s */
        const uint8_t none[1] = {0};
        kn_crypto_aead_seal(w + 72, none, 0, w, 72, proof_nonce, out->tx_key);
    }
    kn_crypto_wipe(e_sk, sizeof e_sk);
    kn_crypto_wipe(dh1, sizeof dh1);
    kn_crypto_wipe(dh2, sizeof dh2);
    return rc;
}

/* --- channel crypto ------------------------------------------------------------------ */

bool kn_crypt_channel_ordered(uint8_t channel)
{
    return channel < 2;
}

static void make_nonce(uint8_t nonce[12], uint8_t channel, uint64_t counter)
{
    nonce[0] = channel;
    nonce[1] = nonce[2] = nonce[3] = 0;
    for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

int kn_crypt_seal(kn_crypt *c, uint8_t channel, const uint8_t *plain, size_t len, uint8_t *out)
{
    if (channel >= KN_CRYPT_CHANNELS) return KN_ERR_INVALID_ARGUMENT;
    uint64_t ctr = c->tx_next[channel]++;
    uint8_t nonce[12];
    make_nonce(nonce, channel, ctr);
    for (int i = 0; i < 4; i++) out[i] = (uint8_t)(ctr >> (8 * i));
    kn_crypto_aead_seal(out + 4, plain, len, &channel, 1, nonce, c->tx_key);
    return KN_OK;
}

/* The full counter nearest to `base` whose low 32 bits are `low`. */
static uint64_t widen(uint64_t base, uint32_t low)
{
    uint64_t cand = (base & ~(uint64_t)0xffffffffu) | low;
    if (cand + 0x80000000u < base) cand += 0x100000000u;
    else if (cand > base + 0x80000000u && cand >= 0x100000000u) cand -= 0x100000000u;
    return cand;
}

int kn_crypt_open(kn_crypt *c, uint8_t channel, const uint8_t *in, size_t len, uint8_t *out,
                  size_t *out_len)
{
    if (channel >= KN_CRYPT_CHANNELS || len < KN_SEAL_OVERHEAD) return KN_ERR_MALFORMED;
    uint32_t low = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
                   (uint32_t)in[3] << 24;
    uint64_t next = c->rx_next[channel], ctr = widen(next, low);
    bool ordered = kn_crypt_channel_ordered(channel);
    uint64_t age = 0;
    if (ordered) {
        if (ctr != next) return KN_ERR_DATA_LOSS;
    } else if (ctr < next) {
        age = next - 1 - ctr;
        if (age >= KN_REPLAY_WINDOW || (c->rx_seen[channel] >> age) & 1) return KN_ERR_DATA_LOSS;
    }
    uint8_t nonce[12];
    make_nonce(nonce, channel, ctr);
    if (kn_crypto_aead_open(out, out_len, in + 4, len - 4, &channel, 1, nonce, c->rx_key) != 0)
        return KN_ERR_PERMISSION_DENIED;
    if (ordered) {
        c->rx_next[channel] = next + 1;
    } else if (ctr >= next) {
        uint64_t shift = ctr - next + 1;
        c->rx_seen[channel] = (shift >= 64 ? 0 : c->rx_seen[channel] << shift) | 1;
        c->rx_next[channel] = ctr + 1;
    } else {
        c->rx_seen[channel] |= (uint64_t)1 << age;
    }
    return KN_OK;
}

void kn_crypt_wipe(kn_crypt *c)
{
    kn_crypto_wipe(c, sizeof *c);
}
