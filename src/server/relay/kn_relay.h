/* kn_relay: relayed (client-authoritative) matches, on the stream tracker.
 *
 * A relayed match is a stream of mode KN_STREAM_MATCH_RELAYED (subject: a
 * fresh UUID, label: the node) and its players are presences on it
 * (kn_stream.h): the tracker keeps membership, slots, limits and the
 * compact handle every data packet carries, and sends what the relay
 * builds through its sink. The relay adds the match's rules: sizes, the
 * shareable match id "<uuid>.<node>", the Match and MatchPresenceEvent
 * envelopes, and data forwarded as MatchData naming the sender's slot.
 * The match is gone when its last member leaves; a connection that closes
 * or whose session ends leaves every stream, its matches included
 * (kn_tracker_untrack_all).
 *
 * Threads: any thread, like the tracker (which holds the only lock). The
 * relay itself is immutable after create. */
#ifndef KN_RELAY_H
#define KN_RELAY_H

#include "kn_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t kn_relay_conn;

typedef struct kn_relay kn_relay;
typedef struct kn_entity kn_entity;

typedef struct kn_relay_config {
    const char *node;
    uint32_t default_size; /* when the creator asks for 0 */
    uint32_t max_size;     /* cap on what a creator may ask */
    uint32_t max_matches_per_conn;
    size_t max_message_size; /* largest envelope the relay will build */
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

/* What create/join return (a copy: kn_relay_joined_deinit frees others). */
typedef struct kn_relay_joined {
    char match_id[112];
    uint32_t handle;
    uint32_t size;
    uint32_t max_size;
    kn_relay_member self;
    kn_relay_member *others; /* array of other_count */
    size_t other_count;
} kn_relay_joined;

/* Registers the relayed-match mode (events, per-connection limit) with the
 * tracker, which must outlive the relay. Before serving. */
int kn_relay_create(const kn_relay_config *cfg, kn_tracker *tracker, kn_relay **out);
void kn_relay_destroy(kn_relay *r);              /* accepts NULL */
void kn_relay_joined_deinit(kn_relay_joined *j); /* accepts zeroed */

/* `who` gives conn, user id, session id, username; slot is assigned.
 * INVALID_ARGUMENT (size), RESOURCE_EXHAUSTED (too many matches), NOMEM;
 * why in msg. */
int kn_relay_match_create(kn_relay *r, const kn_relay_member *who, uint32_t max_size,
                          kn_relay_joined *out, char *msg, size_t cap);
/* NOT_FOUND (no such match), RESOURCE_EXHAUSTED (full, or the connection is
 * in too many matches), ALREADY_EXISTS (already a member); why in msg. */
int kn_relay_match_join(kn_relay *r, const char *match_id, const kn_relay_member *who,
                        kn_relay_joined *out, char *msg, size_t cap);
/* NOT_FOUND when conn is not in that match. */
int kn_relay_match_leave(kn_relay *r, uint32_t handle, kn_relay_conn conn);

/* Forward data from `sender` to the other members (or the listed slots) on
 * `channel`. NOT_FOUND when the sender is not in the match; TOO_LARGE when
 * the MatchData would exceed max_message_size. No allocation. */
int kn_relay_data(kn_relay *r, uint32_t handle, kn_relay_conn sender, int64_t op_code,
                  const uint8_t *data, size_t len, const uint32_t *targets, size_t target_count,
                  uint8_t channel, bool reliable);

/* Matchmaker tokens: a token names a relayed match that does not exist yet
 * and is signed by the relay (a key of this process), so the players the
 * matchmaker grouped meet in one fresh match, created by the first of them
 * to join. A token lives as long as the process. */
#define KN_RELAY_TOKEN_MAX 160
void kn_relay_token_mint(kn_relay *r, char token[KN_RELAY_TOKEN_MAX]);
/* Joins (or creates, of max_size: 0 or out of range = the largest) the
 * match of token. INVALID_ARGUMENT "invalid match token"; else as
 * kn_relay_match_join. */
int kn_relay_match_join_token(kn_relay *r, const char *token, const kn_relay_member *who,
                              uint32_t max_size, kn_relay_joined *out, char *msg, size_t cap);

/* Relayed matches running now. */
size_t kn_relay_match_count(kn_relay *r);

#endif
