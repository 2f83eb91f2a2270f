/* kn_codec: the envelope codec, and the one place server -> client
 * envelopes are built (kn_envelope_error, _ack, _match_data, _match_end,
 * _match, _presence_event). protobuf-c is called only by the codec: this
 * file, the entity mapping (kn_entity, reflection over the same
 * descriptors) and its JSON half (src/server/json/codec_json.c).
 *
 * Other modules read and fill the generated message structs (kaos.pb-c.h)
 * but encode and decode only through these functions, so the allocator, the
 * size limits and the error mapping live in one place. Thread-safe. */
#ifndef KN_CODEC_H
#define KN_CODEC_H

#include "kaos.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef Kaos__V1__Envelope kn_envelope;
#define KN_ENVELOPE_INIT KAOS__V1__ENVELOPE__INIT

/* The protocol version, carried by the cookie request and the hello (kn_secure). */
#define KN_PROTOCOL_VERSION 1u

/* ENet channels. */
enum {
    KN_CHANNEL_CONTROL = 0,
    KN_CHANNEL_MATCH_RELIABLE = 1,
    KN_CHANNEL_MATCH_UNRELIABLE = 2,
    KN_CHANNEL_COUNT = 3,
};

/* Decode one envelope. On success *out is owned by the caller and released
 * with kn_envelope_free. Returns KN_ERR_MALFORMED for bytes that are not an
 * Envelope, and also when allocation fails (protobuf-c reports both as one
 * failure; either way nothing leaks). An envelope whose message
 * field is unknown to this build decodes fine with message_case NOT_SET. */
int kn_envelope_decode(const uint8_t *data, size_t len, kn_envelope **out);
void kn_envelope_free(kn_envelope *env); /* accepts NULL */

size_t kn_envelope_packed_size(const kn_envelope *env);
/* Writes exactly kn_envelope_packed_size(env) bytes to out. */
size_t kn_envelope_pack(const kn_envelope *env, uint8_t *out);
/* Encodes into a fresh kn_malloc'd buffer. */
int kn_envelope_encode(const kn_envelope *env, uint8_t **out, size_t *len);

/* Server -> client envelopes, built in one place. Each points env into the
 * caller's storage (err, ack) and borrows msg.
 * An Error answering request `cid` (0: not tied to one) with the wire code
 * of rc and msg, or rc's own text when msg is NULL or empty. */
void kn_envelope_error(kn_envelope *env, Kaos__V1__Error *err, uint32_t cid, int rc,
                       const char *msg);
/* An Ack answering request `cid`. */
void kn_envelope_ack(kn_envelope *env, Kaos__V1__Ack *ack, uint32_t cid);

/* MatchData of match `handle` from presence slot `sender` (0 = the server);
 * data is borrowed. */
void kn_envelope_match_data(kn_envelope *env, Kaos__V1__MatchData *md, uint32_t handle,
                            uint32_t sender, int64_t op_code, const uint8_t *data, size_t len);
/* MatchEnd: match `handle` ended for the receiver, with rc's wire code
 * (KN_OK: 0, ended by its handler) and a reason. */
void kn_envelope_match_end(kn_envelope *env, Kaos__V1__MatchEnd *me, uint32_t handle,
                           const char *match_id, int rc, const char *reason);
/* Match: the answer to request `cid` that created or joined a match; self
 * and the n_others presences are the caller's storage. */
void kn_envelope_match(kn_envelope *env, Kaos__V1__Match *m, uint32_t cid, const char *match_id,
                       uint32_t handle, uint32_t size, uint32_t max_size, bool authoritative,
                       Kaos__V1__Presence *self, Kaos__V1__Presence **others, size_t n_others);

/* env as a MatchPresenceEvent of match `handle` in which the presence
 * one[0] joined (or left): ev and one are the caller's storage, which env
 * points into (relayed and authoritative matches send the same event). */
void kn_envelope_presence_event(kn_envelope *env, Kaos__V1__MatchPresenceEvent *ev,
                                Kaos__V1__Presence **one, uint32_t handle, bool joined);

/* "ping", "match_data_send", ... or "unknown" (for logs and metrics). */
const char *kn_envelope_type_name(int message_case);

#endif
