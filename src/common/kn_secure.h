/* kn_secure: the transport security of the KaosNet protocol, shared by the
 * server and the SDK. Three pieces, each pure and byte-exact (the layouts are
 * in docs/protocol.md):
 *
 *  1. Cookie. Before ENet connects, the client sends a 48-byte cookie request
 *     as a raw UDP datagram; the server answers 16 bytes with a 32-bit cookie,
 *     a keyed hash (SipHash-2-4, kn_crypto_shorthash) of the client's
 *     address, port and a 10-second window. The client passes the cookie as
 *     ENet's connect data; the server drops every CONNECT whose cookie does
 *     not check, before ENet allocates a peer. The request is 3x the reply,
 *     so the exchange cannot amplify.
 *  2. Handshake. After ENet connects: hello (client ephemeral X25519 key) and
 *     welcome (server static key, server ephemeral key, proof). Keys come from
 *     BLAKE2b over both Diffie-Hellman results and the transcript (the Noise
 *     NK pattern): only the holder of the static secret key can produce the
 *     proof, and the ephemeral keys give forward secrecy.
 *  3. Channel crypto. Every later packet is ChaCha20-Poly1305 (IETF) sealed
 *     with per-direction keys fresh to the connection, a per-channel counter
 *     in the nonce (never reused: the keys never outlive the connection), the
 *     channel as associated data, and replay protection: the reliable ordered
 *     channels accept exactly the next counter, the unreliable one accepts
 *     each counter once inside a 64-packet window.
 *
 * Thread rules: functions are pure or touch only the state passed in; one
 * kn_crypt belongs to one connection and its owning thread. */
#ifndef KN_SECURE_H
#define KN_SECURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_KEY_SIZE 32

/* --- cookie ---------------------------------------------------------------- */

#define KN_COOKIE_REQUEST_SIZE 48
#define KN_COOKIE_REPLY_SIZE 16
#define KN_COOKIE_SECRET_SIZE 16
#define KN_COOKIE_WINDOW_MS 10000

/* Cookie reply status. */
enum { KN_COOKIE_OK = 0, KN_COOKIE_BAD_VERSION = 1, KN_COOKIE_BUSY = 2 };

void kn_cookie_request_build(uint8_t out[KN_COOKIE_REQUEST_SIZE], uint8_t version);
/* KN_ERR_MALFORMED unless buf is exactly a cookie request. */
int kn_cookie_request_parse(const uint8_t *buf, size_t len, uint8_t *version);
void kn_cookie_reply_build(uint8_t out[KN_COOKIE_REPLY_SIZE], uint8_t server_version,
                           uint8_t status, uint32_t cookie);
int kn_cookie_reply_parse(const uint8_t *buf, size_t len, uint8_t *server_version,
                          uint8_t *status, uint32_t *cookie);
/* The cookie for (IPv4 host in network order, port in host order, window). */
uint32_t kn_cookie_compute(const uint8_t secret[KN_COOKIE_SECRET_SIZE], uint32_t host,
                           uint16_t port, uint64_t window);
/* True when cookie matches the current or the previous window. */
bool kn_cookie_check(const uint8_t secret[KN_COOKIE_SECRET_SIZE], uint32_t host, uint16_t port,
                     int64_t now_ms, uint32_t cookie);
uint32_t kn_cookie_issue(const uint8_t secret[KN_COOKIE_SECRET_SIZE], uint32_t host,
                         uint16_t port, int64_t now_ms);

/* Classify a raw ENet datagram (as the receive intercept sees it):
 *   1 — a CONNECT from a peer without a slot; *connect_data = its data field
 *   0 — anything addressed to an existing peer slot (ENet handles it)
 *  -1 — addressed to no slot but not one well-formed CONNECT: drop it. */
int kn_enet_connect_data(const uint8_t *datagram, size_t len, uint32_t *connect_data);

/* --- handshake --------------------------------------------------------------- */

#define KN_HELLO_SIZE 40
#define KN_WELCOME_SIZE 88

/* Welcome status. */
enum { KN_WELCOME_SEALED = 0, KN_WELCOME_BAD_VERSION = 1, KN_WELCOME_PLAINTEXT = 2 };

typedef struct kn_crypt kn_crypt;

typedef struct kn_hs_client {
    uint8_t e_pk[KN_KEY_SIZE], e_sk[KN_KEY_SIZE];
    uint8_t pinned[KN_KEY_SIZE];
    bool has_pin;
    uint8_t version;
} kn_hs_client;

/* True if buf starts like a hello (magic), whatever its length. */
bool kn_hello_magic(const uint8_t *buf, size_t len);

/* Client: fresh ephemeral key; pinned = the server's static public key, or
 * NULL to accept any (insecure development mode). Writes the hello. */
void kn_hs_client_start(kn_hs_client *hs, const uint8_t *pinned, uint8_t version,
                        uint8_t hello[KN_HELLO_SIZE]);
/* Client: check the welcome and derive keys. KN_ERR_VERSION when the server
 * refused our version (*server_version tells its own), KN_ERR_PERMISSION_DENIED
 * when the server's key is not the pinned one or it cannot prove it,
 * KN_ERR_MALFORMED for junk, KN_ERR_FAILED_PRECONDITION when the server
 * answered in plaintext mode (status PLAINTEXT; *plaintext set, no keys).
 * On success fills out and the server's static key in server_pk. */
int kn_hs_client_finish(kn_hs_client *hs, const uint8_t *welcome, size_t len, kn_crypt *out,
                        uint8_t server_pk[KN_KEY_SIZE], uint8_t *server_version, bool *plaintext);
void kn_hs_client_wipe(kn_hs_client *hs);

/* Server: answer a hello. With plaintext=true it answers status PLAINTEXT
 * and derives nothing. KN_ERR_MALFORMED for a bad hello (nothing written),
 * KN_ERR_VERSION when the version is not ours (welcome with status
 * BAD_VERSION written: send it, then disconnect). */
int kn_hs_server_answer(const uint8_t s_pk[KN_KEY_SIZE], const uint8_t s_sk[KN_KEY_SIZE],
                        uint8_t version, bool plaintext, const uint8_t *hello, size_t len,
                        uint8_t welcome[KN_WELCOME_SIZE], kn_crypt *out);

/* --- channel crypto ------------------------------------------------------------ */

#define KN_SEAL_OVERHEAD 20 /* 4-byte counter + 16-byte tag */
#define KN_CRYPT_CHANNELS 3
#define KN_REPLAY_WINDOW 64

struct kn_crypt {
    uint8_t tx_key[KN_KEY_SIZE], rx_key[KN_KEY_SIZE];
    uint64_t tx_next[KN_CRYPT_CHANNELS];  /* next counter to send */
    uint64_t rx_next[KN_CRYPT_CHANNELS];  /* ordered: next expected; unordered: highest + 1 */
    uint64_t rx_seen[KN_CRYPT_CHANNELS];  /* unordered: bit i = (rx_next - 1 - i) seen */
};

/* Channels 0 and 1 are reliable and ordered; 2 is unreliable. */
bool kn_crypt_channel_ordered(uint8_t channel);

/* out must hold len + KN_SEAL_OVERHEAD bytes. KN_ERR_INVALID_ARGUMENT for a
 * channel outside 0..2. */
int kn_crypt_seal(kn_crypt *c, uint8_t channel, const uint8_t *plain, size_t len, uint8_t *out);
/* out must hold len - KN_SEAL_OVERHEAD bytes; *out_len receives it.
 * KN_ERR_MALFORMED (too short / bad channel), KN_ERR_DATA_LOSS (counter out
 * of order on an ordered channel, or replayed / too old on the unordered
 * one), KN_ERR_PERMISSION_DENIED (authentication failed: tampered or wrong
 * key). State changes only on success. */
int kn_crypt_open(kn_crypt *c, uint8_t channel, const uint8_t *in, size_t len, uint8_t *out,
                  size_t *out_len);
void kn_crypt_wipe(kn_crypt *c);

#endif
