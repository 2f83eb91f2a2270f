/* kn_entity: the generic copies between C structs and protobuf messages
 * (kn_entity.h). Each field is found by name in the message descriptor,
 * whose offset says where the generated struct keeps it; the table says
 * where the C struct does. Lookups are a binary search per field: these
 * copies run on request and join paths, never per match data packet. */
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define AT(base, offset) ((char *)(base) + (offset))

/* INT32 members are int in C structs and int32_t in messages. */
_Static_assert(sizeof(int) == sizeof(int32_t), "int is 32 bits");

/* The protobuf-c type a kind travels as. */
static ProtobufCType wire_type(kn_field_kind kind)
{
    switch (kind) {
    case KN_FIELD_STRING:
    case KN_FIELD_JSON:
        return PROTOBUF_C_TYPE_STRING;
    case KN_FIELD_INT64:
        return PROTOBUF_C_TYPE_INT64;
    case KN_FIELD_INT32:
        return PROTOBUF_C_TYPE_INT32;
    case KN_FIELD_UINT32:
        return PROTOBUF_C_TYPE_UINT32;
    case KN_FIELD_BOOL:
        return PROTOBUF_C_TYPE_BOOL;
    }
    return PROTOBUF_C_TYPE_MESSAGE; /* matches no row */
}

/* The proto field of row f, or NULL when the message has none that fits. */
static const ProtobufCFieldDescriptor *proto_field(const kn_entity *e, const kn_entity_field *f)
{
    const ProtobufCFieldDescriptor *pf =
        protobuf_c_message_descriptor_get_field_by_name(e->desc, f->name);
    if (!pf || pf->type != wire_type(f->kind) || pf->label != PROTOBUF_C_LABEL_NONE) return NULL;
    return pf;
}

static const ProtobufCFieldDescriptor *mapped_field(const kn_entity *e, const kn_entity_field *f)
{
    const ProtobufCFieldDescriptor *pf = proto_field(e, f);
    assert(pf && "entity table does not match its message: run kn_entity_check");
    return pf;
}

const char *kn_entity_text(const kn_entity_field *f, const void *obj)
{
    assert(f->kind == KN_FIELD_STRING || f->kind == KN_FIELD_JSON);
    const char *at = AT(obj, f->offset);
    return f->inline_text ? at : *(const char *const *)at;
}

/* A number at `at`, laid out as in a C struct or, in_proto, as in a
 * protobuf-c message: the two differ only for BOOL (protobuf_c_boolean is
 * an int). int32 is int on every platform we build for. */
static int64_t get_number(kn_field_kind kind, const void *at, bool in_proto)
{
    switch (kind) {
    case KN_FIELD_INT64:
        return *(const int64_t *)at;
    case KN_FIELD_INT32:
        return *(const int32_t *)at;
    case KN_FIELD_UINT32:
        return *(const uint32_t *)at;
    case KN_FIELD_BOOL:
        return in_proto ? *(const protobuf_c_boolean *)at != 0 : *(const bool *)at;
    default:
        break;
    }
    assert(!"a number of a text field");
    return 0;
}

static void put_number(kn_field_kind kind, void *at, int64_t v, bool in_proto)
{
    switch (kind) {
    case KN_FIELD_INT64:
        *(int64_t *)at = v;
        return;
    case KN_FIELD_INT32:
        *(int32_t *)at = (int32_t)v;
        return;
    case KN_FIELD_UINT32:
        *(uint32_t *)at = (uint32_t)v;
        return;
    case KN_FIELD_BOOL:
        if (in_proto)
            *(protobuf_c_boolean *)at = v != 0;
        else
            *(bool *)at = v != 0;
        return;
    default:
        break;
    }
    assert(!"a number into a text field");
}

int64_t kn_entity_integer(const kn_entity_field *f, const void *obj)
{
    return get_number(f->kind, AT(obj, f->offset), false);
}

static bool is_text(const kn_entity_field *f)
{
    return f->kind == KN_FIELD_STRING || f->kind == KN_FIELD_JSON;
}

void kn_entity_to_proto(const kn_entity *e, const void *obj, void *msg)
{
    protobuf_c_message_init(e->desc, msg);
    for (size_t i = 0; i < e->n_fields; i++) {
        const kn_entity_field *f = &e->fields[i];
        char *dst = AT(msg, mapped_field(e, f)->offset);
        if (is_text(f)) {
            const char *s = kn_entity_text(f, obj);
            *(char **)dst = (char *)(s ? s : "");
        } else {
            put_number(f->kind, dst, kn_entity_integer(f, obj), true);
        }
    }
}

int kn_entity_to_proto_list(const kn_entity *e, const void *items, size_t item_size, size_t n,
                            void ***ptrs)
{
    *ptrs = NULL;
    if (!n) return KN_OK;
    /* pointers first, then the messages, each on a max_align_t boundary */
    size_t align = _Alignof(max_align_t);
    size_t head = (n * sizeof(void *) + align - 1) / align * align;
    size_t each = (e->desc->sizeof_message + align - 1) / align * align;
    void **block = kn_malloc(head + n * each);
    if (!block) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        block[i] = (char *)block + head + i * each;
        kn_entity_to_proto(e, (const char *)items + i * item_size, block[i]);
    }
    *ptrs = block;
    return KN_OK;
}

/* Text of a message field for a view: never NULL, and JSON never empty. */
static const char *view_text(const kn_entity_field *f, const char *s)
{
    if (f->kind == KN_FIELD_JSON && (!s || !*s)) return "{}";
    return s ? s : "";
}

static int set_text(const kn_entity_field *f, void *obj, const char *s)
{
    char *at = AT(obj, f->offset);
    if (!f->inline_text) {
        *(const char **)at = s;
        return KN_OK;
    }
    size_t len = strlen(s);
    if (len >= f->size) return KN_ERR_INVALID_ARGUMENT;
    memcpy(at, s, len + 1);
    return KN_OK;
}

int kn_entity_from_proto(const kn_entity *e, const void *msg, void *obj)
{
    int rc = KN_OK;
    for (size_t i = 0; i < e->n_fields; i++) {
        const kn_entity_field *f = &e->fields[i];
        const char *src = msg ? AT(msg, mapped_field(e, f)->offset) : NULL;
        if (is_text(f)) {
            if (set_text(f, obj, view_text(f, src ? *(const char *const *)src : NULL)))
                rc = KN_ERR_INVALID_ARGUMENT;
        } else {
            put_number(f->kind, AT(obj, f->offset), src ? get_number(f->kind, src, true) : 0,
                       false);
        }
    }
    return rc;
}

static bool listed(const char *const *names, const char *name)
{
    for (; names && *names; names++)
        if (!strcmp(*names, name)) return true;
    return false;
}

static bool in_table(const kn_entity *e, const char *name)
{
    for (size_t i = 0; i < e->n_fields; i++)
        if (!strcmp(e->fields[i].name, name)) return true;
    return false;
}

int kn_entity_check(const kn_entity *e, char *msg, size_t msg_cap)
{
    for (size_t i = 0; i < e->n_fields; i++) {
        if (proto_field(e, &e->fields[i])) continue;
        static const char *const kinds[] = {"string", "string", "int64", "int32", "uint32", "bool"};
        snprintf(msg, msg_cap, "%s: field %s is not a singular %s field of %s", e->name,
                 e->fields[i].name, kinds[e->fields[i].kind], e->desc->name);
        return KN_ERR_INVALID_ARGUMENT;
    }
    for (unsigned i = 0; i < e->desc->n_fields; i++) {
        const char *name = e->desc->fields[i].name;
        if (in_table(e, name) || listed(e->unmapped, name)) continue;
        snprintf(msg, msg_cap, "%s: proto field %s is not mapped (map it or list it as unmapped)",
                 e->name, name);
        return KN_ERR_INVALID_ARGUMENT;
    }
    return KN_OK;
}
