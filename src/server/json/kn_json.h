/* kn_json: the server's one door to jansson. JSON values are opaque
 * reference-counted kn_json nodes; the functions are jansson's, one for one,
 * for exactly what the server does with JSON (token claims, account metadata,
 * storage values and their versions, match labels and queries, hook bodies,
 * kaos.json_encode/decode). Server only: the SDK links no JSON library.
 *
 * Invariants:
 *  - only json.c includes <jansson.h> (scripts/check-includes.sh says so);
 *  - the flags are jansson's values, so parsing and dumping (key order,
 *    escaping, number text) are byte-for-byte what jansson does: storage
 *    versions hash the KN_JSON_COMPACT | KN_JSON_SORT_KEYS dump and tokens
 *    carry the KN_JSON_COMPACT dump, so neither may change;
 *  - objects keep insertion order; iteration and dumps follow it.
 *
 * Ownership: constructors and kn_json_parse return a new reference (NULL on
 * failure: out of memory, invalid UTF-8); kn_json_decref releases one and
 * accepts NULL. `_new` setters take ownership of the value, even when they
 * fail. Getters return borrowed references, valid while the container is.
 * Text from kn_json_dump is released with kn_json_free_text (jansson's
 * allocator, not kn_malloc).
 * Threads: a value belongs to one thread at a time; reference counts are not
 * atomic, so share nothing across threads. */
#ifndef KN_JSON_H
#define KN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_json kn_json;

typedef enum kn_json_type {
    KN_JSON_OBJECT,
    KN_JSON_ARRAY,
    KN_JSON_STRING,
    KN_JSON_INTEGER,
    KN_JSON_REAL,
    KN_JSON_TRUE,
    KN_JSON_FALSE,
    KN_JSON_NULL,
} kn_json_type;

/* Parse flags (jansson's values). Without KN_JSON_DECODE_ANY the text must be
 * an object or an array. "\u0000" in a string is always refused. */
#define KN_JSON_REJECT_DUPLICATES 0x1
#define KN_JSON_DECODE_ANY        0x4

/* Dump flags (jansson's values). Without KN_JSON_ENCODE_ANY the value must be
 * an object or an array. Non-ASCII text is written as UTF-8, not escaped. */
#define KN_JSON_COMPACT    0x20
#define KN_JSON_SORT_KEYS  0x80
#define KN_JSON_ENCODE_ANY 0x200

/* Where and why a parse failed; text is jansson's message ("'[' or '{'
 * expected near 'x'", "duplicate object key near '\"a\"'", ...), which
 * reaches scripts and clients as it is. */
typedef struct kn_json_error {
    int line, column, position; /* position: bytes from the start */
    char text[160];
} kn_json_error;

/* --- text ------------------------------------------------------------------------------------ */

/* Parses len bytes of text. err may be NULL. NULL on failure (err filled). */
kn_json *kn_json_parse(const char *text, size_t len, unsigned flags, kn_json_error *err);
/* NUL-terminated text; release with kn_json_free_text. NULL when out of
 * memory or v is not a container and KN_JSON_ENCODE_ANY is not set. */
char *kn_json_dump(const kn_json *v, unsigned flags);
void kn_json_free_text(char *text);
/* Streams the dump in pieces to sink, which returns 0 to go on; -1 when the
 * sink refused or memory ran out. */
typedef int (*kn_json_sink)(const char *buf, size_t len, void *ud);
int kn_json_dump_to(const kn_json *v, unsigned flags, kn_json_sink sink, void *ud);

/* --- references and types --------------------------------------------------------------------- */

kn_json *kn_json_incref(kn_json *v); /* returns v; NULL is fine */
void kn_json_decref(kn_json *v);     /* NULL is fine */
/* Deep equality (object key order does not matter). NULL equals nothing. */
bool kn_json_equal(const kn_json *a, const kn_json *b);

kn_json_type kn_json_typeof(const kn_json *v); /* v must not be NULL */
/* The predicates are false for NULL, so a missing member is no type. */
bool kn_json_is_object(const kn_json *v);
bool kn_json_is_array(const kn_json *v);
bool kn_json_is_string(const kn_json *v);
bool kn_json_is_integer(const kn_json *v);
bool kn_json_is_number(const kn_json *v); /* integer or real */
bool kn_json_is_true(const kn_json *v);
bool kn_json_is_false(const kn_json *v);
bool kn_json_is_boolean(const kn_json *v);
bool kn_json_is_null(const kn_json *v);

/* --- scalars ---------------------------------------------------------------------------------- */

kn_json *kn_json_string(const char *s);              /* NULL for NULL or invalid UTF-8 */
kn_json *kn_json_stringn(const char *s, size_t len); /* may hold no NUL; UTF-8 checked */
kn_json *kn_json_integer(int64_t value);
kn_json *kn_json_real(double value); /* NULL for NaN and infinities */
kn_json *kn_json_boolean(bool value);
kn_json *kn_json_null(void);

/* Accessors return 0 / NULL when v is not of the type. */
const char *kn_json_string_value(const kn_json *v);
size_t kn_json_string_length(const kn_json *v);
int64_t kn_json_integer_value(const kn_json *v);
double kn_json_real_value(const kn_json *v);
double kn_json_number_value(const kn_json *v); /* integer or real, as a double */

/* --- containers ------------------------------------------------------------------------------- */

kn_json *kn_json_object(void);
size_t kn_json_object_size(const kn_json *obj);
kn_json *kn_json_object_get(const kn_json *obj, const char *key); /* borrowed; NULL if absent */
/* Sets key (replacing any value); takes value. -1 on failure (obj not an
 * object, key not UTF-8, value NULL, out of memory). */
int kn_json_object_set_new(kn_json *obj, const char *key, kn_json *value);

/* Iteration in insertion order; do not add or remove keys meanwhile. */
typedef struct kn_json_iter kn_json_iter;
kn_json_iter *kn_json_object_iter(kn_json *obj); /* NULL when empty or not an object */
kn_json_iter *kn_json_object_iter_next(kn_json *obj, kn_json_iter *it);
const char *kn_json_iter_key(const kn_json_iter *it);
kn_json *kn_json_iter_value(const kn_json_iter *it);
/* for each (key, value) of obj; key and value are lvalues of the caller. */
#define kn_json_object_foreach(obj, key, value)                                                    \
    for (kn_json_iter *kn_json__it = kn_json_object_iter(obj);                                     \
         kn_json__it &&                                                                            \
         ((key) = kn_json_iter_key(kn_json__it), (value) = kn_json_iter_value(kn_json__it), 1);    \
         kn_json__it = kn_json_object_iter_next((obj), kn_json__it))

kn_json *kn_json_array(void);
size_t kn_json_array_size(const kn_json *arr);
kn_json *kn_json_array_get(const kn_json *arr, size_t index); /* borrowed; NULL out of range */
/* Appends; takes value. -1 on failure (not an array, value NULL, no memory). */
int kn_json_array_append_new(kn_json *arr, kn_json *value);

#endif
