/* secure: the SDK's side of transport security; kn_secure does the bytes.
 *
 * The pinned key is parsed once, at create. A connection's handshake state
 * (its ephemeral secret) lives from the hello to the welcome; its keys and
 * counters from the welcome until the connection ends, when
 * kaos_client__secure_reset wipes them, so every reconnect starts from
 * fresh ephemeral keys and counters at zero. Sealing uses up a counter of
 * the channel; a send that fails after sealing gives it back, because the
 * server accepts the reliable channels' counters only in order and that
 * packet never left the process (its nonce was never seen). Nothing here
 * fires callbacks: client.c acts on the results. It starts the crypto
 * library (kn_crypto, shared with the server) once per create. */
#include "client_internal.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What the error event says when the server cannot prove its key (with and without a pin). */
#define KEY_MISMATCH "server key mismatch: the server could not prove it holds the pinned key"
#define KEY_UNPROVEN "handshake failed: the server could not prove it holds the key it presented"

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Exactly 64 hex digits, either case. */
static bool parse_key(const char *hex, uint8_t out[KN_KEY_SIZE])
{
    for (size_t i = 0; i < KN_KEY_SIZE; i++) {
        /* A NUL stops the loop at hex_value before reading past it. */
        int hi = hex_value(hex[2 * i]);
        int lo = hi < 0 ? -1 : hex_value(hex[2 * i + 1]);
        if (lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return hex[2 * KN_KEY_SIZE] == '\0';
}

static void key_to_hex(const uint8_t key[KN_KEY_SIZE], char out[2 * KN_KEY_SIZE + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < KN_KEY_SIZE; i++) {
        out[2 * i] = digits[key[i] >> 4];
        out[2 * i + 1] = digits[key[i] & 15];
    }
    out[2 * KN_KEY_SIZE] = '\0';
}

int kaos_client__secure_create(kaos_client *c, const kaos_client_config *cfg)
{
    c->cfg.server_key = NULL; /* the caller's string is borrowed: point at our copy */
    if (cfg->plaintext && !cfg->insecure_dev_mode) {
        KN_ERROR("plaintext mode requires insecure_dev_mode");
        return KN_ERR_CONFIG;
    }
    if (cfg->server_key) {
        if (!parse_key(cfg->server_key, c->pinned)) {
            KN_ERROR("server_key must be 64 hex digits: the key the server prints at start");
            return KN_ERR_CONFIG;
        }
        c->has_pin = true;
        key_to_hex(c->pinned, c->key_hex);
        c->cfg.server_key = c->key_hex;
    }
    /* Idempotent and thread-safe; kn_secure needs it for keys and randomness. */
    if (kn_crypto_init() != KN_OK) {
        KN_ERROR("the crypto library (libsodium) failed to start");
        return KN_ERR_INTERNAL;
    }
    return KN_OK;
}

int kaos_client__secure_check(kaos_client *c)
{
    if (c->cfg.plaintext) {
        KN_WARN("plaintext mode: no handshake, everything travels in clear (debugging only)");
        return KN_OK;
    }
    if (!c->has_pin && !c->cfg.insecure_dev_mode) {
        KN_ERROR("no server key pinned: set server_key to the key the server prints at start "
                 "(\"server public key <hex>\"), or insecure_dev_mode for development");
        return KN_ERR_FAILED_PRECONDITION;
    }
    if (!c->has_pin) KN_WARN("insecure development mode: the server's identity is not verified");
    return KN_OK;
}

int kaos_client__send_hello(kaos_client *c)
{
    uint8_t hello[KN_HELLO_SIZE];
    kn_hs_client_start(&c->hs, c->has_pin ? c->pinned : NULL, (uint8_t)c->cfg.protocol_version,
                       hello);
    return kaos_transport__send(c->transport, KN_CHANNEL_CONTROL, hello, sizeof hello, true);
}

static kaos_welcome_result refused(int err, uint32_t reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kaos_welcome_result refused(int err, uint32_t reason, const char *fmt, ...)
{
    kaos_welcome_result r = {.outcome = KAOS_WELCOME_REFUSED, .code = err, .reason = reason};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.message, sizeof r.message, fmt, ap);
    va_end(ap);
    return r;
}

kaos_welcome_result kaos_client__read_welcome(kaos_client *c, uint8_t channel, const uint8_t *bytes,
                                              size_t len)
{
    kaos_welcome_result ignored = {.outcome = KAOS_WELCOME_IGNORED};
    if (channel != KN_CHANNEL_CONTROL) return ignored;
    uint8_t pk[KN_KEY_SIZE], version = 0;
    bool plaintext = false;
    int rc = kn_hs_client_finish(&c->hs, bytes, len, &c->crypt, pk, &version, &plaintext);
    /* Junk proves nothing either way; the connect timeout bounds the wait. */
    if (rc == KN_ERR_MALFORMED) return ignored;
    memcpy(c->server_pk, pk, sizeof pk);
    c->has_server_pk = true;
    kn_hs_client_wipe(&c->hs); /* the ephemeral secret has done its work */
    char hex[2 * KN_KEY_SIZE + 1];
    switch (rc) {
    case KN_OK:
        c->sealed = true;
        if (!c->has_pin) {
            key_to_hex(pk, hex);
            KN_INFO("server key %s (not verified: insecure development mode)", hex);
        }
        return (kaos_welcome_result){.outcome = KAOS_WELCOME_SEALED};
    case KN_ERR_VERSION:
        return refused(KN_ERR_FAILED_PRECONDITION, KAOS_DISCONNECT_UNSUPPORTED_VERSION,
                       "unsupported protocol version %u; the server speaks %u",
                       (unsigned)c->cfg.protocol_version, (unsigned)version);
    case KN_ERR_FAILED_PRECONDITION:
        /* The server's security is off (and its key matched any pin). */
        if (c->cfg.insecure_dev_mode) {
            KN_WARN("insecure development mode: the server runs with transport security off; "
                    "everything travels in clear");
            return (kaos_welcome_result){.outcome = KAOS_WELCOME_PLAINTEXT};
        }
        return refused(KN_ERR_FAILED_PRECONDITION, KAOS_DISCONNECT_HANDSHAKE_FAILED,
                       "the server runs with transport security off; refusing to talk in clear "
                       "(only insecure_dev_mode allows it)");
    default: /* KN_ERR_PERMISSION_DENIED */
        return refused(KN_ERR_PERMISSION_DENIED, KAOS_DISCONNECT_HANDSHAKE_FAILED, "%s",
                       c->has_pin ? KEY_MISMATCH : KEY_UNPROVEN);
    }
}

int kaos_client__send_packet(kaos_client *c, uint8_t channel, const void *data, size_t len,
                             bool reliable)
{
    if (!c->sealed) return kaos_transport__send(c->transport, channel, data, len, reliable);
    if (channel >= KN_CRYPT_CHANNELS) return KN_ERR_INVALID_ARGUMENT;
    /* A lost packet on an ordered channel would stall every later one. */
    if (kn_crypt_channel_ordered(channel) && !reliable) return KN_ERR_INVALID_ARGUMENT;
    if (len > KAOS_MAX_MESSAGE_SIZE) return KN_ERR_TOO_LARGE;
    int rc = kn_crypt_seal(&c->crypt, channel, data, len, c->seal_buf);
    if (rc < 0) return rc;
    rc = kaos_transport__send(c->transport, channel, c->seal_buf, len + KN_SEAL_OVERHEAD, reliable);
    if (rc < 0) c->crypt.tx_next[channel]--; /* never sent: the counter is still free */
    return rc;
}

int kaos_client__open_packet(kaos_client *c, uint8_t channel, const uint8_t *bytes, size_t len,
                             const uint8_t **plain, size_t *plain_len, uint8_t **heap)
{
    *heap = NULL;
    if (!c->sealed) {
        *plain = bytes;
        *plain_len = len;
        return KN_OK;
    }
    if (len < KN_SEAL_OVERHEAD) return KN_ERR_MALFORMED;
    /* The server may allow messages above our own sending limit. */
    uint8_t *out = c->open_buf;
    if (len - KN_SEAL_OVERHEAD > sizeof c->open_buf) {
        out = kn_malloc(len - KN_SEAL_OVERHEAD);
        if (!out) return KN_ERR_NOMEM;
    }
    int rc = kn_crypt_open(&c->crypt, channel, bytes, len, out, plain_len);
    if (rc < 0) {
        if (out != c->open_buf) kn_free(out);
        return rc;
    }
    if (out != c->open_buf) *heap = out;
    *plain = out;
    return KN_OK;
}

void kaos_client__secure_reset(kaos_client *c)
{
    kn_hs_client_wipe(&c->hs);
    kn_crypt_wipe(&c->crypt);
    c->sealed = false;
}

int kaos_client_server_key(const kaos_client *c, char out[KAOS_SERVER_KEY_HEX_SIZE])
{
    if (!c || !out) return KN_ERR_INVALID_ARGUMENT;
    if (!c->has_server_pk) return KN_ERR_NOT_FOUND;
    key_to_hex(c->server_pk, out);
    return KN_OK;
}
