/* kn_relay: relayed (client-authoritative) matches.
 *
 * Not thread-safe: one caller at a time (the match service uses it from every
 * network thread under one lock). Players are connections (kn_conn_id); the
 * relay never holds an ENetPeer. It builds the MatchData and
 * MatchPresenceEvent envelopes with the codec's builders and hands the bytes
 * to an injected sink (in the server: kn_out_send, through the match
 * service), so it is tested with a recording sink and no sockets.
 *
 * A match is named twice: a shareable match id "<uuid>.<node>" for joining,
 * and a compact uint32 handle carried by every data packet. Each member gets
 * a slot number, unique within the match, that names senders and targets.
 * The match is freed when its last member leaves. */
#ifndef KN_RELAY_H
#define KN_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t kn_relay_conn;

typedef struct kn_relay kn_relay;
typedef struct kn_entity kn_entity;

typedef struct kn_relay_sink {
    /* Same bytes to n connections on `channel`. */
    int (*send_many)(void *ud, const kn_relay_conn *conns, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable);
    void *ud;
} kn_relay_sink;

typedef struct kn_relay_config {
    const char *node;
    uint32_t default_size;       /* when the creator asks for 0 */
    uint32_t max_size;           /* cap on what a creator may ask */
    uint32_t max_matches_per_conn;
    size_t max_message_size;     /* largest envelope the relay will build */
} kn_relay_config;

typedef struct kn_relay_member {
    kn_relay_conn conn;
    uint32_t slot;
    char user_id[37];
    char session_id[37];
    char username[129];
} kn_relay_member;

/* kn_relay_member as the Presence entity (kn_entity.h): the wire's Presence
 * of relayed matches is built from it. */
extern const kn_entity kn_relay_member_entity;

/* What create/join return; pointers valid until the next relay call. */
typedef struct kn_relay_joined {
    const char *match_id;
    uint32_t handle;
    uint32_t size;
    uint32_t max_size;
    const kn_relay_member *self;
    const kn_relay_member *others; /* array of other_count */
    size_t other_count;
} kn_relay_joined;

int kn_relay_create(const kn_relay_config *cfg, const kn_relay_sink *sink, kn_relay **out);
void kn_relay_destroy(kn_relay *r); /* accepts NULL */

/* `who` gives conn, user id, session id, username; slot is assigned. */
int kn_relay_match_create(kn_relay *r, const kn_relay_member *who, uint32_t max_size,
                          kn_relay_joined *out);
/* NOT_FOUND (no such match), RESOURCE_EXHAUSTED (full, or the connection is
 * in too many matches), ALREADY_EXISTS (already a member). */
int kn_relay_match_join(kn_relay *r, const char *match_id, const kn_relay_member *who,
                        kn_relay_joined *out);
/* NOT_FOUND when conn is not in that match. */
int kn_relay_match_leave(kn_relay *r, uint32_t handle, kn_relay_conn conn);
/* The connection closed: leave every match it was in. */
void kn_relay_conn_closed(kn_relay *r, kn_relay_conn conn);

/* Forward data from `sender` to the other members (or the listed slots) on
 * `channel`. NOT_FOUND when the sender is not in the match. */
int kn_relay_data(kn_relay *r, uint32_t handle, kn_relay_conn sender, int64_t op_code,
                  const uint8_t *data, size_t len, const uint32_t *targets, size_t target_count,
                  uint8_t channel, bool reliable);

size_t kn_relay_match_count(const kn_relay *r);

#endif
