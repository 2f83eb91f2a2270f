/* kn_codec_json: envelope bodies as JSON text, for server-side scripts.
 *
 * The codec's JSON half: it reflects over the codec's protobuf-c descriptors
 * and lives in the server's json module (src/server/json), so the client SDK
 * links no JSON library and src/common depends on no server module. Before and
 * after hooks see a request or response as a JSON object whose keys are the
 * proto field names: every field is present (defaults included), 64-bit
 * integers are numbers, bytes are base64 text, enums are their numbers, maps
 * are objects, nested messages are objects, repeated fields arrays.
 *
 * "Op" names are the Envelope's message field names ("authenticate_device",
 * "rpc", ...); kn_envelope_case_by_name also accepts the message type name
 * ("AuthenticateDevice") and ignores case and underscores. Thread-safe. */
#ifndef KN_CODEC_JSON_H
#define KN_CODEC_JSON_H

#include "kn_codec.h"

#include <stddef.h>

/* The envelope's message case for an op name; 0 when there is none. */
int kn_envelope_case_by_name(const char *name);

/* The body of env as a JSON object (kn_malloc'd, NUL-terminated). */
int kn_envelope_body_to_json(const kn_envelope *env, char **json, size_t *len);

/* Replaces the body of env with one of the same type built from a JSON
 * object. Unknown keys, wrong types and out-of-range numbers are
 * KN_ERR_INVALID_ARGUMENT with the field named in msg; env is unchanged on
 * failure. Keys left out take their default values. */
int kn_envelope_body_from_json(kn_envelope *env, const char *json, size_t len, char *msg,
                               size_t msg_cap);

#endif
