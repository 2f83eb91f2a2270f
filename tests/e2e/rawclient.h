/* rawclient: a hand-rolled KaosNet client over raw ENet, for tests that must
 * misbehave in ways the SDK refuses to (tampered, replayed, oversized or
 * unsealed packets). It follows docs/protocol.md and nothing else: the
 * cookie, the hello and welcome, the key derivation and the sealed packets
 * are written here from the page, over the standard primitives (X25519,
 * BLAKE2b, ChaCha20-Poly1305 IETF through kn_crypto) — not with the
 * server's and SDK's kn_secure — so a test that connects proves the page is
 * enough to write a client. */
#ifndef KN_E2E_RAWCLIENT_H
#define KN_E2E_RAWCLIENT_H

#include <enet/enet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct raw_client {
    ENetHost *host;
    ENetPeer *peer;
    ENetAddress server;
    /* The connection's keys and per-channel counters (docs/protocol.md,
     * "Sealed packets"): 0 and 1 ordered, 2 with a 64-packet window. */
    uint8_t c2s[32], s2c[32];
    uint64_t tx_next[3], rx_next[3], rx_seen[3];
    bool connected, disconnected, sealed;
    uint32_t disconnect_reason;
    /* last received envelope, decoded */
    int received;
    int last_type; /* Envelope message case */
    uint32_t last_cid;
    int last_error_code;
    char last_error[256];
    int sessions, matches;
    uint32_t match_handle; /* from the last Match */
    int match_data;        /* MatchData envelopes received */
} raw_client;

/* Gets a cookie, connects with it, does the handshake (pinning server_pk
 * unless NULL) and waits until sealed. Fails the test on error. */
void raw_connect(raw_client *rc, uint16_t port, const uint8_t *server_pk);
/* Steps 1 and 2 only (cookie, ENet connect): no hello, nothing sealed. */
void raw_connect_unsealed(raw_client *rc, uint16_t port);
/* Connect without a cookie (connect data = given value); returns whether
 * ENet reported CONNECT within wait_ms. */
bool raw_connect_without_cookie(raw_client *rc, uint16_t port, uint32_t data, int wait_ms);
/* Seal (when the handshake happened) and send an envelope on channel 0. */
void raw_send_env(raw_client *rc, const void *env);
/* Seal (when the handshake happened) and send an envelope holding a Ping. */
void raw_send_ping(raw_client *rc, uint32_t cid);
/* Seal an envelope for `channel` and give the sealed bytes back (its size)
 * instead of sending them; the channel's counter moves on as if sent. */
size_t raw_seal_env(raw_client *rc, uint8_t channel, const void *env, uint8_t *out, size_t cap);
/* Seal a ping and give the sealed bytes back instead of sending them. */
size_t raw_seal_ping(raw_client *rc, uint32_t cid, uint8_t *out, size_t cap);
/* Send bytes as they are (already sealed, tampered, or plaintext). */
void raw_send_bytes(raw_client *rc, uint8_t channel, const void *data, size_t len, bool reliable);
/* Service for up to ms, opening and decoding what arrives. */
void raw_pump(raw_client *rc, int ms);
void raw_close(raw_client *rc);

#endif
