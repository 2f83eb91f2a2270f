/* kn_entity: C structs <-> protobuf messages (and Lua, through the
 * runtime's kn_lua_push_entity) from the one description in kn_entities.h.
 *
 * A kn_entity is a table of {name, kind, offset, size} rows for one C struct
 * and one proto message, built by KN_ENTITY_DEFINE from the entity's
 * X-macro. The copies are generic: they find each proto field by name in
 * the message's protobuf-c descriptor (its offset and type), so no entity
 * has copy code of its own. Part of the codec module: with kn_codec and
 * kn_codec_json the only code that touches protobuf-c.
 *
 * C storage of a field, checked at compile time against its kind:
 *   STRING, JSON  char * / const char * (NULL = unset), or an inline char
 *                 array (always a string)
 *   INT64 int64_t · INT32 int · UINT32 uint32_t · BOOL bool
 * JSON is text holding a JSON object: Lua gets it decoded as a table, and a
 * view read from the wire (kn_entity_from_proto) shows "" as "{}".
 *
 * Nothing here allocates, and the tables are constant: thread-safe. A
 * table that does not match its message (a field missing or of another
 * type) is a programmer error, asserted; kn_entity_check says which, for
 * the tests. */
#ifndef KN_ENTITY_H
#define KN_ENTITY_H

#include "kn_codec.h"
#include "kn_entities.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kn_field_kind {
    KN_FIELD_STRING,
    KN_FIELD_JSON,
    KN_FIELD_INT64,
    KN_FIELD_INT32,
    KN_FIELD_UINT32,
    KN_FIELD_BOOL,
} kn_field_kind;

typedef struct kn_entity_field {
    const char *name; /* the proto field, the C member and the Lua key */
    kn_field_kind kind;
    bool inline_text; /* text stored in a char array of `size` bytes, not behind a pointer */
    size_t offset;    /* of the member in the C struct */
    size_t size;      /* of the member */
} kn_entity_field;

typedef struct kn_entity {
    const char *name; /* the X-macro's name ("USER"), for messages */
    const ProtobufCMessageDescriptor *desc;
    const kn_entity_field *fields;
    size_t n_fields;
    const char *const *unmapped; /* proto fields deliberately not mapped; ends with NULL */
} kn_entity;

/* Fills the message `msg` (of e->desc's type, initialised here) from the C
 * struct `obj`. The message borrows obj's strings: it must not outlive obj
 * nor be freed with protobuf-c. A NULL string becomes "", as the wire has
 * always carried unset text. */
void kn_entity_to_proto(const kn_entity *e, const void *obj, void *msg);

/* The messages of a repeated field: one per struct of the n at `items`
 * (item_size apart), filled as kn_entity_to_proto does, and the array of
 * pointers to them that the field takes, all in one kn_malloc'd block
 * returned in *ptrs (kn_free it; NULL when n is 0). The messages borrow the
 * structs' strings. KN_OK or KN_ERR_NOMEM. */
int kn_entity_to_proto_list(const kn_entity *e, const void *items, size_t item_size, size_t n,
                            void ***ptrs);

/* Fills the C struct `obj` from the message `msg` (NULL: an absent message,
 * read as every field's default). Pointer fields borrow msg's strings and
 * are never NULL ("" for a missing string, "{}" for empty JSON); inline
 * arrays get a copy. KN_ERR_INVALID_ARGUMENT when a string does not fit its
 * array (obj is then partly filled); KN_OK otherwise. */
int kn_entity_from_proto(const kn_entity *e, const void *msg, void *obj);

/* The text of a STRING or JSON field of obj (NULL when a pointer is NULL),
 * and the value of a number or BOOL field widened to int64_t. */
const char *kn_entity_text(const kn_entity_field *f, const void *obj);
int64_t kn_entity_integer(const kn_entity_field *f, const void *obj);

/* KN_OK when e matches its message: every row names a singular proto field
 * of the kind's type, and every proto field is a row or listed in
 * e->unmapped. Otherwise KN_ERR_INVALID_ARGUMENT and the first mismatch in
 * msg ("USER: proto field nickname is not mapped"). */
int kn_entity_check(const kn_entity *e, char *msg, size_t msg_cap);

/* --- building tables --------------------------------------------------------------------------
 *
 * KN_ENTITY_DEFINE(var, T, E) defines `const kn_entity var` mapping the C
 * struct T to entity E of kn_entities.h (USER, PRESENCE, ...). Every field
 * of E must be a member of T with a C type its kind allows; anything else
 * does not compile. T may have members that are not in E (a connection id,
 * a length). */
#define KN_ENTITY_DEFINE(var, T, E)                                                                \
    static const kn_entity_field var##__fields[] = {KN_##E##_FIELDS(KN_ENTITY__ROW, T)};           \
    static const char *const var##__unmapped[] = {KN_##E##_UNMAPPED NULL};                         \
    const kn_entity var = {#E, &KN_##E##_PROTO, var##__fields,                                     \
                           sizeof var##__fields / sizeof var##__fields[0], var##__unmapped}

/* KN_ENTITY_ASSERT_VIEW(T, E): compile-time proof that the public struct T
 * (kaos.h) is exactly entity E as a view: its members are E's fields, in
 * E's order, each of the view type of its kind (text as const char *), and
 * nothing else takes room. For the SDK, whose structs are the ABI and stay
 * written out in its header. */
#define KN_ENTITY_ASSERT_VIEW(T, E)                                                                \
    typedef struct {                                                                               \
        KN_##E##_FIELDS(KN_ENTITY__VIEW_MEMBER, T)                                                 \
    } T##__mirror;                                                                                 \
    _Static_assert(sizeof(T) == sizeof(T##__mirror), #T " has exactly the fields of " #E);         \
    KN_##E##_FIELDS(KN_ENTITY__VIEW_CHECK, T) _Static_assert(1, "")

/* (clang-format 14 cannot lay out _Generic associations.) */
/* clang-format off */
/* Internals of the two macros above. STORE_<KIND>(T, m) is 1 for text behind
 * a pointer, 2 for an inline char array, 3 for a number or bool of the
 * kind's type, 0 for a member the kind does not allow (a compile error
 * through the negative array size in ROW). */
#define KN_ENTITY__STORE_STRING(T, m)                                                              \
    _Generic(&((T *)0)->m, char **: 1, const char **: 1,                                           \
             default: _Generic(((T *)0)->m, char *: 2, default: 0))
#define KN_ENTITY__STORE_JSON(T, m)   KN_ENTITY__STORE_STRING(T, m)
#define KN_ENTITY__STORE_INT64(T, m)  _Generic(&((T *)0)->m, int64_t *: 3, default: 0)
#define KN_ENTITY__STORE_INT32(T, m)  _Generic(&((T *)0)->m, int *: 3, default: 0)
#define KN_ENTITY__STORE_UINT32(T, m) _Generic(&((T *)0)->m, uint32_t *: 3, default: 0)
#define KN_ENTITY__STORE_BOOL(T, m)   _Generic(&((T *)0)->m, bool *: 3, default: 0)
#define KN_ENTITY__ROW(T, m, KIND)                                                                 \
    {#m, KN_FIELD_##KIND,                                                                          \
     KN_ENTITY__STORE_##KIND(T, m) == 2 && sizeof(char[KN_ENTITY__STORE_##KIND(T, m) ? 1 : -1]),   \
     offsetof(T, m), sizeof(((T *)0)->m)},

#define KN_ENTITY__VIEW_TYPE_STRING        const char *
#define KN_ENTITY__VIEW_TYPE_JSON          const char *
#define KN_ENTITY__VIEW_TYPE_INT64         int64_t
#define KN_ENTITY__VIEW_TYPE_INT32         int
#define KN_ENTITY__VIEW_TYPE_UINT32        uint32_t
#define KN_ENTITY__VIEW_TYPE_BOOL          bool
#define KN_ENTITY__VIEW_MEMBER(T, m, KIND) KN_ENTITY__VIEW_TYPE_##KIND m;
#define KN_ENTITY__VIEW_CHECK(T, m, KIND)                                                          \
    _Static_assert(offsetof(T, m) == offsetof(T##__mirror, m) &&                                   \
                       _Generic(&((T *)0)->m, KN_ENTITY__VIEW_TYPE_##KIND *: 1, default: 0),       \
                   #T "." #m " is where and of the type " #KIND " says");
/* clang-format on */

#endif
