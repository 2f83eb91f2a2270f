/* kn_codec: protobuf-c behind the project's allocator and error codes. */
#include "kn_codec.h"
#include "kn_codec_internal.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_recycle.h"

/* Decoded messages are made and freed per datagram: from kn_recycle's
 * per-thread cache, unless a test allocator is installed (it must see every
 * allocation). Both sides hand out plain C-library blocks. */
static void *pb_alloc(void *ud, size_t size)
{
    (void)ud;
    return kn_mem_is_default() ? kn_recycle_alloc(size) : kn_malloc(size);
}

static void pb_free(void *ud, void *ptr)
{
    (void)ud;
    if (kn_mem_is_default())
        kn_recycle_free(ptr);
    else
        kn_free(ptr);
}

ProtobufCAllocator kn_codec_allocator = {pb_alloc, pb_free, NULL};

/* Unknown fields (from newer clients, or junk) are dropped right after
 * decoding, at every depth: nothing downstream ever sees or re-emits bytes
 * this build does not understand, and they do not hold memory. */
static void strip_unknown(ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        pb_free(NULL, m->unknown_fields[i].data);
    pb_free(NULL, m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        char *base = (char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(uint32_t *)(base + f->quantifier_offset) != f->id) continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)(base + f->quantifier_offset);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                strip_unknown(arr[k]);
        } else {
            ProtobufCMessage *sub = *(ProtobufCMessage **)(base + f->offset);
            if (sub) strip_unknown(sub);
        }
    }
}

int kn_envelope_decode(const uint8_t *data, size_t len, kn_envelope **out)
{
    *out = NULL;
    if (!data && len) return KN_ERR_MALFORMED;
    kn_envelope *env = kaos__v1__envelope__unpack(&kn_codec_allocator, len, data);
    /* protobuf-c does not tell a parse error from an allocation failure; an
     * allocation failure with valid bytes is rare enough to report as
     * malformed, and the fuzz and OOM tests check neither path leaks. */
    if (!env) return KN_ERR_MALFORMED;
    strip_unknown(&env->base);
    *out = env;
    return KN_OK;
}

void kn_envelope_free(kn_envelope *env)
{
    if (env) kaos__v1__envelope__free_unpacked(env, &kn_codec_allocator);
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

void kn_envelope_error(kn_envelope *env, Kaos__V1__Error *err, uint32_t cid, int rc,
                       const char *msg)
{
    kaos__v1__error__init(err);
    err->code = (Kaos__V1__ErrorCode)kn_err_to_wire(rc);
    err->message = (char *)(msg && *msg ? msg : kn_err_text(rc));
    *env = (kn_envelope)KN_ENVELOPE_INIT;
    env->cid = cid;
    env->message_case = KAOS__V1__ENVELOPE__MESSAGE_ERROR;
    env->error = err;
}

void kn_envelope_ack(kn_envelope *env, Kaos__V1__Ack *ack, uint32_t cid)
{
    kaos__v1__ack__init(ack);
    *env = (kn_envelope)KN_ENVELOPE_INIT;
    env->cid = cid;
    env->message_case = KAOS__V1__ENVELOPE__MESSAGE_ACK;
    env->ack = ack;
}

void kn_envelope_match_data(kn_envelope *env, Kaos__V1__MatchData *md, uint32_t handle,
                            uint32_t sender, int64_t op_code, const uint8_t *data, size_t len)
{
    kaos__v1__match_data__init(md);
    md->match = handle;
    md->sender = sender;
    md->op_code = op_code;
    md->data.data = (uint8_t *)data;
    md->data.len = len;
    *env = (kn_envelope)KN_ENVELOPE_INIT;
    env->message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA;
    env->match_data = md;
}

void kn_envelope_match_end(kn_envelope *env, Kaos__V1__MatchEnd *me, uint32_t handle,
                           const char *match_id, int rc, const char *reason)
{
    kaos__v1__match_end__init(me);
    me->match = handle;
    me->match_id = (char *)match_id;
    me->code = (Kaos__V1__ErrorCode)kn_err_to_wire(rc);
    me->reason = (char *)reason;
    *env = (kn_envelope)KN_ENVELOPE_INIT;
    env->message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_END;
    env->match_end = me;
}

void kn_envelope_match(kn_envelope *env, Kaos__V1__Match *m, uint32_t cid, const char *match_id,
                       uint32_t handle, uint32_t size, uint32_t max_size, bool authoritative,
                       Kaos__V1__Presence *self, Kaos__V1__Presence **others, size_t n_others)
{
    kaos__v1__match__init(m);
    m->match_id = (char *)match_id;
    m->match = handle;
    m->size = size;
    m->max_size = max_size;
    m->authoritative = authoritative;
    m->self = self;
    m->n_presences = n_others;
    m->presences = others;
    *env = (kn_envelope)KN_ENVELOPE_INIT;
    env->cid = cid;
    env->message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH;
    env->match = m;
}

void kn_envelope_presence_event(kn_envelope *env, Kaos__V1__MatchPresenceEvent *ev,
                                Kaos__V1__Presence **one, uint32_t handle, bool joined)
{
    kaos__v1__match_presence_event__init(ev);
    ev->match = handle;
    if (joined) {
        ev->n_joins = 1;
        ev->joins = one;
    } else {
        ev->n_leaves = 1;
        ev->leaves = one;
    }
    *env = (kn_envelope)KN_ENVELOPE_INIT;
    env->message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_PRESENCE;
    env->match_presence = ev;
}

const char *kn_envelope_type_name(int message_case)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &kaos__v1__envelope__descriptor, (unsigned)message_case);
    return (f && message_case != 1) ? f->name : "unknown";
}
