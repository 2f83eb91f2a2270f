/* libFuzzer target: the envelope decoder (every packet from the network).
 * Property: anything that decodes re-encodes to bytes that decode to an
 * envelope with the same encoding (a canonical round trip). */
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kn_envelope *env;
    if (kn_envelope_decode(data, size, &env) != KN_OK) return 0;
    (void)kn_envelope_type_name(env->message_case);
    uint8_t *a, *b;
    size_t alen, blen;
    if (kn_envelope_encode(env, &a, &alen) != KN_OK) abort();
    kn_envelope *again;
    if (kn_envelope_decode(a, alen, &again) != KN_OK) abort();
    if (kn_envelope_encode(again, &b, &blen) != KN_OK) abort();
    if (alen != blen || memcmp(a, b, alen) != 0) abort();
    kn_free(a);
    kn_free(b);
    kn_envelope_free(again);
    kn_envelope_free(env);
    return 0;
}
