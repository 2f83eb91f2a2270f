/* kn_codec_json: generic message <-> JSON through protobuf-c descriptors.
 * The codec's JSON half, kept in the json module because it builds kn_json
 * trees and src/common must not depend on a server module. It walks the
 * codec's descriptors and allocates messages with the codec's allocator
 * (kn_codec_internal.h), so envelopes it fills are freed by kn_codec as any
 * other; it is the one file outside src/common that calls protobuf-c. */
#include "kn_codec_json.h"
#include "kn_codec_internal.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_mem.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 16

#define MEMBER(type, base, offset) (*(type *)((char *)(base) + (offset)))

static const ProtobufCMessageDescriptor *env_desc = &kaos__v1__envelope__descriptor;

/* --- op names ------------------------------------------------------------------ */

/* Lowercase without underscores, into out (cap bytes). */
static void fold(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        if (*in != '_') out[n++] = (char)tolower((unsigned char)*in);
    out[n] = '\0';
}

int kn_envelope_case_by_name(const char *name)
{
    char want[128], have[128];
    if (!name || strlen(name) >= sizeof want) return 0;
    fold(name, want, sizeof want);
    for (unsigned i = 0; i < env_desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &env_desc->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) continue;
        fold(f->name, have, sizeof have);
        if (!strcmp(want, have)) return (int)f->id;
        const ProtobufCMessageDescriptor *d = f->descriptor;
        fold(d->short_name, have, sizeof have);
        if (!strcmp(want, have)) return (int)f->id;
    }
    return 0;
}

/* The oneof field of env's body, or NULL. */
static const ProtobufCFieldDescriptor *body_field(int message_case)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(env_desc, (unsigned)message_case);
    return f && f->type == PROTOBUF_C_TYPE_MESSAGE && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? f
                                                                                               : NULL;
}

static bool is_map_entry(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED) return false;
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t n = strlen(d->short_name);
    return d->n_fields == 2 && n > 5 && !strcmp(d->short_name + n - 5, "Entry") &&
           !strcmp(d->fields[0].name, "key") && !strcmp(d->fields[1].name, "value");
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    default: return 4;
    }
}

/* --- message -> JSON --------------------------------------------------------------- */

static kn_json *msg_to_json(const ProtobufCMessage *m, int depth);

static kn_json *value_to_json(const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM: return kn_json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return kn_json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return kn_json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        return kn_json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v);
    }
    case PROTOBUF_C_TYPE_FLOAT: return kn_json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return kn_json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL: return kn_json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return kn_json_string(s ? s : ""); /* NULL for invalid UTF-8 */
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        size_t cap = KN_CRYPTO_BASE64_LEN(b->len, KN_CRYPTO_BASE64);
        char *txt = kn_malloc(cap);
        if (!txt) return NULL;
        kn_crypto_base64_encode(txt, cap, b->data ? b->data : (const uint8_t *)"", b->len,
                                KN_CRYPTO_BASE64);
        kn_json *v = kn_json_string(txt);
        kn_free(txt);
        return v;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? msg_to_json(sub, depth + 1) : kn_json_null();
    }
    }
    return NULL;
}

static kn_json *msg_to_json(const ProtobufCMessage *m, int depth)
{
    if (depth > MAX_DEPTH) return NULL;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    kn_json *obj = kn_json_object();
    if (!obj) return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        kn_json *v = NULL;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (MEMBER(uint32_t, m, f->quantifier_offset) != f->id) continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
            bool ptr = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
            if (ptr ? !MEMBER(void *, m, f->offset)
                    : !MEMBER(protobuf_c_boolean, m, f->quantifier_offset))
                continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = MEMBER(size_t, m, f->quantifier_offset);
            const char *arr = MEMBER(const char *, m, f->offset);
            if (is_map_entry(f)) {
                v = kn_json_object();
                for (size_t k = 0; v && k < n; k++) {
                    const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[k];
                    const ProtobufCMessageDescriptor *ed = e->descriptor;
                    kn_json *key = value_to_json(&ed->fields[0], (const char *)e + ed->fields[0].offset,
                                                depth);
                    kn_json *val = value_to_json(&ed->fields[1], (const char *)e + ed->fields[1].offset,
                                                depth);
                    char num[32];
                    const char *ks = key && kn_json_is_string(key) ? kn_json_string_value(key) : NULL;
                    if (key && kn_json_is_integer(key)) {
                        snprintf(num, sizeof num, "%lld", (long long)kn_json_integer_value(key));
                        ks = num;
                    }
                    if (!ks || !val || kn_json_object_set_new(v, ks, val)) {
                        if (!ks || !val) kn_json_decref(val);
                        kn_json_decref(v);
                        v = NULL;
                    }
                    kn_json_decref(key);
                }
            } else {
                v = kn_json_array();
                size_t es = elem_size(f->type);
                for (size_t k = 0; v && k < n; k++) {
                    kn_json *e = value_to_json(f, arr + k * es, depth);
                    if (!e || kn_json_array_append_new(v, e)) {
                        kn_json_decref(v);
                        v = NULL;
                    }
                }
            }
        } else {
            v = value_to_json(f, (const char *)m + f->offset, depth);
        }
        if (!v || kn_json_object_set_new(obj, f->name, v)) {
            kn_json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

int kn_envelope_body_to_json(const kn_envelope *env, char **json, size_t *len)
{
    *json = NULL;
    *len = 0;
    const ProtobufCFieldDescriptor *f = body_field((int)env->message_case);
    if (!f) return KN_ERR_INVALID_ARGUMENT;
    const ProtobufCMessage *body = MEMBER(ProtobufCMessage *, env, f->offset);
    kn_json *obj = body ? msg_to_json(body, 0) : kn_json_object();
    if (!obj) return KN_ERR_INVALID_ARGUMENT; /* invalid UTF-8 in a string, or out of memory */
    char *txt = kn_json_dump(obj, KN_JSON_COMPACT);
    kn_json_decref(obj);
    if (!txt) return KN_ERR_NOMEM;
    size_t n = strlen(txt);
    *json = kn_malloc(n + 1);
    if (*json) memcpy(*json, txt, n + 1);
    kn_json_free_text(txt);
    if (!*json) return KN_ERR_NOMEM;
    *len = n;
    return KN_OK;
}

/* --- JSON -> message ------------------------------------------------------------------ */

typedef struct build {
    char *msg;
    size_t cap;
    char path[160];
} build;

__attribute__((format(printf, 2, 3))) static int bad(build *b, const char *fmt, ...)
{
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (b->msg && b->cap) snprintf(b->msg, b->cap, "%s%s%s", b->path, *b->path ? ": " : "", what);
    return KN_ERR_INVALID_ARGUMENT;
}

static void *pb_alloc(size_t n)
{
    return kn_codec_allocator.alloc(kn_codec_allocator.allocator_data, n);
}

static int json_to_msg(build *b, const ProtobufCMessageDescriptor *d, kn_json *obj, int depth,
                       ProtobufCMessage **out);

static int int_in(build *b, kn_json *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!kn_json_is_integer(v)) return bad(b, "expected an integer");
    int64_t x = kn_json_integer_value(v);
    if (x < lo || x > hi) return bad(b, "integer out of range");
    *out = x;
    return KN_OK;
}

/* Writes one value of field f at p (already zero or default). */
static int value_from_json(build *b, const ProtobufCFieldDescriptor *f, kn_json *v, void *p, int depth)
{
    int64_t x = 0;
    int rc = KN_OK;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!(rc = int_in(b, v, INT32_MIN, INT32_MAX, &x))) *(int32_t *)p = (int32_t)x;
        return rc;
    case PROTOBUF_C_TYPE_ENUM:
        if ((rc = int_in(b, v, INT32_MIN, INT32_MAX, &x))) return rc;
        if (!protobuf_c_enum_descriptor_get_value(f->descriptor, (int)x))
            return bad(b, "unknown enum value %lld", (long long)x);
        *(int32_t *)p = (int32_t)x;
        return KN_OK;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!(rc = int_in(b, v, 0, UINT32_MAX, &x))) *(uint32_t *)p = (uint32_t)x;
        return rc;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!(rc = int_in(b, v, INT64_MIN, INT64_MAX, &x))) *(int64_t *)p = x;
        return rc;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!(rc = int_in(b, v, 0, INT64_MAX, &x))) *(uint64_t *)p = (uint64_t)x;
        return rc;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        if (!kn_json_is_number(v)) return bad(b, "expected a number");
        double dv = kn_json_number_value(v);
        if (f->type == PROTOBUF_C_TYPE_FLOAT) *(float *)p = (float)dv;
        else *(double *)p = dv;
        return KN_OK;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!kn_json_is_boolean(v)) return bad(b, "expected a boolean");
        *(protobuf_c_boolean *)p = kn_json_is_true(v);
        return KN_OK;
    case PROTOBUF_C_TYPE_STRING: {
        if (!kn_json_is_string(v)) return bad(b, "expected a string");
        size_t n = kn_json_string_length(v);
        char *s = pb_alloc(n + 1);
        if (!s) return KN_ERR_NOMEM;
        memcpy(s, kn_json_string_value(v), n + 1);
        *(char **)p = s;
        return KN_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!kn_json_is_string(v)) return bad(b, "expected base64 text");
        const char *txt = kn_json_string_value(v);
        size_t tl = kn_json_string_length(v), n = 0;
        uint8_t *data = pb_alloc(tl / 4 * 3 + 3);
        if (!data) return KN_ERR_NOMEM;
        if (kn_crypto_base64_decode(data, tl / 4 * 3 + 3, txt, tl, NULL, &n, NULL,
                                    KN_CRYPTO_BASE64)) {
            kn_free(data);
            return bad(b, "invalid base64");
        }
        ProtobufCBinaryData *bd = p;
        bd->data = data;
        bd->len = n;
        return KN_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (kn_json_is_null(v)) return KN_OK;
        return json_to_msg(b, f->descriptor, v, depth + 1, (ProtobufCMessage **)p);
    }
    return bad(b, "unsupported field type");
}

static int map_from_json(build *b, const ProtobufCFieldDescriptor *f, kn_json *v,
                         ProtobufCMessage *m, int depth)
{
    if (kn_json_is_array(v) && !kn_json_array_size(v)) return KN_OK; /* {} and [] look alike in Lua */
    if (!kn_json_is_object(v)) return bad(b, "expected an object");
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    size_t n = kn_json_object_size(v);
    ProtobufCMessage **arr = n ? pb_alloc(n * sizeof *arr) : NULL;
    if (n && !arr) return KN_ERR_NOMEM;
    MEMBER(ProtobufCMessage **, m, f->offset) = arr;
    const char *key;
    kn_json *val;
    kn_json_object_foreach(v, key, val)
    {
        ProtobufCMessage *e = pb_alloc(ed->sizeof_message);
        if (!e) return KN_ERR_NOMEM;
        ed->message_init(e);
        arr[MEMBER(size_t, m, f->quantifier_offset)++] = e; /* freed with m from here on */
        kn_json *k = ed->fields[0].type == PROTOBUF_C_TYPE_STRING ? kn_json_string(key) : NULL;
        if (!k) {
            char *end;
            long long num = strtoll(key, &end, 10);
            if (*end || !*key) return bad(b, "map key \"%s\" is not a number", key);
            k = kn_json_integer(num);
        }
        if (!k) return KN_ERR_NOMEM;
        int rc = value_from_json(b, &ed->fields[0], k, (char *)e + ed->fields[0].offset, depth);
        kn_json_decref(k);
        if (!rc) rc = value_from_json(b, &ed->fields[1], val, (char *)e + ed->fields[1].offset, depth);
        if (rc) return rc;
    }
    return KN_OK;
}

static int field_from_json(build *b, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           kn_json *v, int depth)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = &MEMBER(uint32_t, m, f->quantifier_offset);
        if (*which && *which != f->id) return bad(b, "only one field of its oneof may be set");
        *which = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE) {
        MEMBER(protobuf_c_boolean, m, f->quantifier_offset) = 1;
    }
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return value_from_json(b, f, v, (char *)m + f->offset, depth);
    if (is_map_entry(f)) return map_from_json(b, f, v, m, depth);
    if (kn_json_is_object(v) && !kn_json_object_size(v)) return KN_OK; /* an empty Lua table */
    if (!kn_json_is_array(v)) return bad(b, "expected an array");
    size_t n = kn_json_array_size(v), es = elem_size(f->type);
    char *arr = n ? pb_alloc(n * es) : NULL;
    if (n && !arr) return KN_ERR_NOMEM;
    if (arr) memset(arr, 0, n * es);
    MEMBER(char *, m, f->offset) = arr;
    for (size_t k = 0; k < n; k++) {
        /* Count each element before filling it: a half-built one is freed too. */
        MEMBER(size_t, m, f->quantifier_offset) = k + 1;
        int rc = value_from_json(b, f, kn_json_array_get(v, k), arr + k * es, depth);
        if (rc) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && !((ProtobufCMessage **)arr)[k])
                MEMBER(size_t, m, f->quantifier_offset) = k;
            return rc;
        }
    }
    return KN_OK;
}

static int json_to_msg(build *b, const ProtobufCMessageDescriptor *d, kn_json *obj, int depth,
                       ProtobufCMessage **out)
{
    if (depth > MAX_DEPTH) return bad(b, "nested too deep");
    if (!kn_json_is_object(obj)) return bad(b, "expected an object for %s", d->short_name);
    ProtobufCMessage *m = pb_alloc(d->sizeof_message);
    if (!m) return KN_ERR_NOMEM;
    d->message_init(m);
    size_t plen = strlen(b->path);
    const char *key;
    kn_json *v;
    int rc = KN_OK;
    kn_json_object_foreach(obj, key, v)
    {
        snprintf(b->path + plen, sizeof b->path - plen, "%s%s", plen ? "." : "", key);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        if (!f) rc = bad(b, "unknown field");
        else if (kn_json_is_null(v)) continue;
        else rc = field_from_json(b, m, f, v, depth);
        if (rc) break;
    }
    b->path[plen] = '\0';
    if (rc) {
        protobuf_c_message_free_unpacked(m, &kn_codec_allocator);
        return rc;
    }
    *out = m;
    return KN_OK;
}

int kn_envelope_body_from_json(kn_envelope *env, const char *json, size_t len, char *msg,
                               size_t msg_cap)
{
    build b = {msg, msg_cap, ""};
    const ProtobufCFieldDescriptor *f = body_field((int)env->message_case);
    if (!f) return bad(&b, "the envelope has no body");
    kn_json_error e;
    kn_json *obj = kn_json_parse(json, len, KN_JSON_REJECT_DUPLICATES, &e);
    if (!obj) return bad(&b, "invalid JSON: %s", e.text);
    ProtobufCMessage *body = NULL;
    int rc = json_to_msg(&b, f->descriptor, obj, 0, &body);
    kn_json_decref(obj);
    if (rc) {
        if (rc == KN_ERR_NOMEM) snprintf(msg, msg_cap, "out of memory");
        return rc;
    }
    ProtobufCMessage **slot = &MEMBER(ProtobufCMessage *, env, f->offset);
    if (*slot) protobuf_c_message_free_unpacked(*slot, &kn_codec_allocator);
    *slot = body;
    return KN_OK;
}
