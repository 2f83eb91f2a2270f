/* kn_json: jansson behind project names. The only file of the project that
 * includes <jansson.h>. A kn_json pointer is a json_t pointer under another
 * name (never dereferenced as anything else), and every flag is jansson's own
 * value, so nothing here converts or copies a tree: behaviour and bytes are
 * jansson's. */
#include "kn_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

_Static_assert(KN_JSON_REJECT_DUPLICATES == JSON_REJECT_DUPLICATES, "parse flag");
_Static_assert(KN_JSON_DECODE_ANY == JSON_DECODE_ANY, "parse flag");
_Static_assert(KN_JSON_COMPACT == JSON_COMPACT, "dump flag");
_Static_assert(KN_JSON_SORT_KEYS == JSON_SORT_KEYS, "dump flag");
_Static_assert(KN_JSON_ENCODE_ANY == JSON_ENCODE_ANY, "dump flag");
_Static_assert(sizeof(((kn_json_error *)0)->text) == JSON_ERROR_TEXT_LENGTH, "error text size");
_Static_assert(sizeof(json_int_t) == sizeof(int64_t), "jansson integers are 64-bit");
_Static_assert((int)KN_JSON_OBJECT == JSON_OBJECT && (int)KN_JSON_ARRAY == JSON_ARRAY &&
                   (int)KN_JSON_STRING == JSON_STRING && (int)KN_JSON_INTEGER == JSON_INTEGER &&
                   (int)KN_JSON_REAL == JSON_REAL && (int)KN_JSON_TRUE == JSON_TRUE &&
                   (int)KN_JSON_FALSE == JSON_FALSE && (int)KN_JSON_NULL == JSON_NULL,
               "types in jansson's order");

#define J(v)  ((json_t *)(v))
#define CJ(v) ((const json_t *)(v))
#define K(v)  ((kn_json *)(v))

/* --- text ---------------------------------------------------------------------------------- */

kn_json *kn_json_parse(const char *text, size_t len, unsigned flags, kn_json_error *err)
{
    json_error_t e;
    json_t *v = json_loadb(text, len, flags, &e);
    if (!v && err) {
        err->line = e.line;
        err->column = e.column;
        err->position = e.position;
        snprintf(err->text, sizeof err->text, "%s", e.text);
    }
    return K(v);
}

char *kn_json_dump(const kn_json *v, unsigned flags)
{
    return json_dumps(CJ(v), flags);
}

void kn_json_free_text(char *text)
{
    /* jansson allocates with malloc: the project never installs other
     * functions (json_set_alloc_funcs), so free matches it. */
    free(text);
}

/* jansson ignores a callback's refusal in some places (an object's keys), so
 * the relay remembers it, passes nothing more on and reports it at the end. */
typedef struct relay {
    kn_json_sink sink;
    void *ud;
    bool refused;
} relay;

static int relay_piece(const char *buf, size_t len, void *data)
{
    relay *r = data;
    if (!r->refused && r->sink(buf, len, r->ud) != 0) r->refused = true;
    return r->refused ? -1 : 0;
}

int kn_json_dump_to(const kn_json *v, unsigned flags, kn_json_sink sink, void *ud)
{
    relay r = {sink, ud, false};
    int rc = json_dump_callback(CJ(v), relay_piece, &r, flags);
    return rc == 0 && !r.refused ? 0 : -1;
}

/* --- references and types ---------------------------------------------------------------- */

kn_json *kn_json_incref(kn_json *v)
{
    return K(json_incref(J(v)));
}

void kn_json_decref(kn_json *v)
{
    json_decref(J(v));
}

bool kn_json_equal(const kn_json *a, const kn_json *b)
{
    return json_equal(CJ(a), CJ(b)) != 0;
}

kn_json_type kn_json_typeof(const kn_json *v)
{
    return (kn_json_type)json_typeof(CJ(v));
}

bool kn_json_is_object(const kn_json *v)
{
    return json_is_object(CJ(v));
}

bool kn_json_is_array(const kn_json *v)
{
    return json_is_array(CJ(v));
}

bool kn_json_is_string(const kn_json *v)
{
    return json_is_string(CJ(v));
}

bool kn_json_is_integer(const kn_json *v)
{
    return json_is_integer(CJ(v));
}

bool kn_json_is_number(const kn_json *v)
{
    return json_is_number(CJ(v));
}

bool kn_json_is_true(const kn_json *v)
{
    return json_is_true(CJ(v));
}

bool kn_json_is_false(const kn_json *v)
{
    return json_is_false(CJ(v));
}

bool kn_json_is_boolean(const kn_json *v)
{
    return json_is_boolean(CJ(v));
}

bool kn_json_is_null(const kn_json *v)
{
    return json_is_null(CJ(v));
}

/* --- scalars ------------------------------------------------------------------------------- */

kn_json *kn_json_string(const char *s)
{
    return K(json_string(s));
}

kn_json *kn_json_stringn(const char *s, size_t len)
{
    return K(json_stringn(s, len));
}

kn_json *kn_json_integer(int64_t value)
{
    return K(json_integer((json_int_t)value));
}

kn_json *kn_json_real(double value)
{
    return K(json_real(value));
}

kn_json *kn_json_boolean(bool value)
{
    return K(json_boolean(value));
}

kn_json *kn_json_null(void)
{
    return K(json_null());
}

const char *kn_json_string_value(const kn_json *v)
{
    return json_string_value(CJ(v));
}

size_t kn_json_string_length(const kn_json *v)
{
    return json_string_length(CJ(v));
}

int64_t kn_json_integer_value(const kn_json *v)
{
    return (int64_t)json_integer_value(CJ(v));
}

double kn_json_real_value(const kn_json *v)
{
    return json_real_value(CJ(v));
}

double kn_json_number_value(const kn_json *v)
{
    return json_number_value(CJ(v));
}

/* --- containers ---------------------------------------------------------------------------- */

kn_json *kn_json_object(void)
{
    return K(json_object());
}

size_t kn_json_object_size(const kn_json *obj)
{
    return json_object_size(CJ(obj));
}

kn_json *kn_json_object_get(const kn_json *obj, const char *key)
{
    return K(json_object_get(CJ(obj), key));
}

int kn_json_object_set_new(kn_json *obj, const char *key, kn_json *value)
{
    return json_object_set_new(J(obj), key, J(value)) == 0 ? 0 : -1;
}

kn_json_iter *kn_json_object_iter(kn_json *obj)
{
    return (kn_json_iter *)json_object_iter(J(obj));
}

kn_json_iter *kn_json_object_iter_next(kn_json *obj, kn_json_iter *it)
{
    return (kn_json_iter *)json_object_iter_next(J(obj), it);
}

const char *kn_json_iter_key(const kn_json_iter *it)
{
    return json_object_iter_key((void *)it);
}

kn_json *kn_json_iter_value(const kn_json_iter *it)
{
    return K(json_object_iter_value((void *)it));
}

kn_json *kn_json_array(void)
{
    return K(json_array());
}

size_t kn_json_array_size(const kn_json *arr)
{
    return json_array_size(CJ(arr));
}

kn_json *kn_json_array_get(const kn_json *arr, size_t index)
{
    return K(json_array_get(CJ(arr), index));
}

int kn_json_array_append_new(kn_json *arr, kn_json *value)
{
    return json_array_append_new(J(arr), J(value)) == 0 ? 0 : -1;
}
