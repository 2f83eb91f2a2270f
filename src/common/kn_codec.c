/* kn_codec: protobuf-c behind the project's allocator and error codes. */
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_mem.h"

static void *pb_alloc(void *ud, size_t size)
{
    (void)ud;
    return kn_malloc(size);
}

static void pb_free(void *ud, void *ptr)
{
    (void)ud;
    kn_free(ptr);
}

static ProtobufCAllocator allocator = {pb_alloc, pb_free, NULL};

int kn_envelope_decode(const uint8_t *data, size_t len, kn_envelope **out)
{
    *out = NULL;
    if (!data && len) return KN_ERR_MALFORMED;
    kn_envelope *env = kaos__v1__envelope__unpack(&allocator, len, data);
    /* protobuf-c does not tell a parse error from an allocation failure; an
     * allocation failure with valid bytes is rare enough to report as
     * malformed, and the fuzz and OOM tests check neither path leaks. */
    if (!env) return KN_ERR_MALFORMED;
    *out = env;
    return KN_OK;
}

void kn_envelope_free(kn_envelope *env)
{
    if (env) kaos__v1__envelope__free_unpacked(env, &allocator);
}

size_t kn_envelope_packed_size(const kn_envelope *env)
{
    return kaos__v1__envelope__get_packed_size(env);
}

size_t kn_envelope_pack(const kn_envelope *env, uint8_t *out)
{
    return kaos__v1__envelope__pack(env, out);
}

int kn_envelope_encode(const kn_envelope *env, uint8_t **out, size_t *len)
{
    size_t n = kn_envelope_packed_size(env);
    uint8_t *buf = kn_malloc(n ? n : 1);
    if (!buf) return KN_ERR_NOMEM;
    *len = kn_envelope_pack(env, buf);
    *out = buf;
    return KN_OK;
}

const char *kn_envelope_type_name(int message_case)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&kaos__v1__envelope__descriptor, (unsigned)message_case);
    return (f && message_case != 1) ? f->name : "unknown";
}
