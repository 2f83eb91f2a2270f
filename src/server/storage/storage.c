/* storage: the storage engine over Postgres (contract in kn_storage.h, prose
 * in docs/storage.md).
 *
 * Invariants:
 *   - every object of a request is validated (and its version computed)
 *     before the database is touched, so a bad object costs no round trip;
 *   - a write or delete batch is one transaction (its own, or for the _in
 *     forms the caller's) and touches its rows in primary-key order, so two batches never deadlock
 * on each other; a batch of one object is its one statement, which is atomic by itself, so it runs
 * without BEGIN/COMMIT (one round trip instead of three; a read that only explains a refusal sees
 * committed state either way);
 *   - a version or permission check is part of the statement that changes
 *     the row (INSERT ... ON CONFLICT, UPDATE/DELETE ... WHERE version = $x),
 *     so it holds under concurrency; only when a statement changed nothing
 *     is the row read again, to say why;
 *   - results are one kn_malloc block each, freed with kn_free. */
#include "kn_storage.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KN_ENTITY_DEFINE(kn_storage_object_entity, kn_storage_object, STORAGE_OBJECT);
KN_ENTITY_DEFINE(kn_storage_ack_entity, kn_storage_ack, STORAGE_ACK);

/* The columns every read and list returns, in the order objects_from_rows
 * expects; `p` is a table alias prefix ("" or "s."). */
#define OBJECT_COLUMNS(p)                                                                          \
    p "collection, " p "key, " p "user_id, " p "value::text, " p "version, " p "read, " p          \
      "write, (extract(epoch FROM " p "create_time) * 1000)::bigint,"                              \
      " (extract(epoch FROM " p "update_time) * 1000)::bigint"

/* $8 / $9 "is a client": clients may not change an object whose write is 0. */
static const kn_db_stmt insert_absent = {
    "storage_insert_absent",
    "INSERT INTO storage (collection, key, user_id, value, version, read, write)"
    " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)"
    " ON CONFLICT (collection, user_id, key) DO NOTHING RETURNING version",
    7};
static const kn_db_stmt upsert = {
    "storage_upsert",
    "INSERT INTO storage (collection, key, user_id, value, version, read, write)"
    " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)"
    " ON CONFLICT (collection, user_id, key) DO UPDATE SET value = EXCLUDED.value,"
    " version = EXCLUDED.version, read = EXCLUDED.read, write = EXCLUDED.write,"
    " update_time = now() WHERE storage.write > 0 OR NOT $8::bool RETURNING version",
    8};
static const kn_db_stmt update_matching = {
    "storage_update_matching",
    "UPDATE storage SET value = $4::jsonb, version = $5, read = $6, write = $7,"
    " update_time = now() WHERE collection = $1 AND key = $2 AND user_id = $3 AND version = $8"
    " AND (write > 0 OR NOT $9::bool) RETURNING version",
    9};
static const kn_db_stmt delete_matching = {
    "storage_delete_matching",
    "DELETE FROM storage WHERE collection = $1 AND key = $2 AND user_id = $3"
    " AND ($4::text IS NULL OR version = $4) AND (write > 0 OR NOT $5::bool) RETURNING version",
    5};
static const kn_db_stmt find_state = {
    "storage_find_state",
    "SELECT version, write FROM storage WHERE collection = $1 AND key = $2 AND user_id = $3", 3};
/* $4 the client (NULL = the server, which reads everything). */
static const kn_db_stmt read_ids = {
    "storage_read_ids",
    "SELECT " OBJECT_COLUMNS(
        "s.") " FROM unnest($1::text[], $2::text[], $3::uuid[])"
              " WITH ORDINALITY AS i (collection, key, user_id, n)"
              " JOIN storage s ON s.collection = i.collection AND s.key = i.key AND s.user_id = "
              "i.user_id"
              " WHERE $4::uuid IS NULL OR s.read = 2 OR (s.read = 1 AND s.user_id = $4::uuid)"
              " ORDER BY i.n",
    4};
/* Keyset pagination: strictly after the cursor's (owner, key). $4 is the
 * smallest read permission the caller may see. */
static const kn_db_stmt list_owner = {
    "storage_list_owner",
    "SELECT " OBJECT_COLUMNS("") " FROM storage WHERE collection = $1 AND user_id = $2"
                                 " AND key > $3 AND read >= $4 ORDER BY key LIMIT $5",
    5};
static const kn_db_stmt list_all = {
    "storage_list_all",
    "SELECT " OBJECT_COLUMNS(
        "") " FROM storage WHERE collection = $1"
            " AND (user_id, key) > ($2::uuid, $3) ORDER BY user_id, key LIMIT $4",
    4};
/* Separate from list_all so that the planner can use storage_public_idx. */
static const kn_db_stmt list_public = {
    "storage_list_public",
    "SELECT " OBJECT_COLUMNS(
        "") " FROM storage WHERE collection = $1 AND read = 2"
            " AND (user_id, key) > ($2::uuid, $3) ORDER BY user_id, key LIMIT $4",
    4};

/* --- validation ------------------------------------------------------------ */

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) without ASCII control characters: names end up in logs, cursors
 * and other players' screens, and Postgres refuses malformed text. */
static bool printable_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return false;
            i++;
            continue;
        }
        size_t more;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= more) return false;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += more + 1;
    }
    return true;
}

static bool valid_name(const char *s, size_t len)
{
    return len >= 1 && len <= KN_STORAGE_NAME_MAX && printable_utf8((const unsigned char *)s, len);
}

static int check_name(const char *what, const char *s, size_t index, char *msg, size_t cap)
{
    if (!s || !*s)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "object %zu: %s is missing", index,
                          what);
    if (!valid_name(s, strlen(s)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "object %zu: %s must be 1-%d bytes of UTF-8 without control characters",
                          index, what, KN_STORAGE_NAME_MAX);
    return KN_OK;
}

static void lower_uuid(const char *s, char out[KN_STORAGE_UUID_LEN + 1])
{
    for (int i = 0; i < KN_STORAGE_UUID_LEN; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[KN_STORAGE_UUID_LEN] = '\0';
}

/* The acting user, lower-cased into `me`; "" for the server. The nil UUID
 * names the system, which is not a client. */
static int check_caller(const char *caller, char me[KN_STORAGE_UUID_LEN + 1], char *msg, size_t cap)
{
    me[0] = '\0';
    if (!caller) return KN_OK;
    if (!kn_uuid_valid(caller))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "caller must be a user id");
    lower_uuid(caller, me);
    if (!strcmp(me, KN_STORAGE_SYSTEM_USER))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "caller must be a user id, not the system");
    return KN_OK;
}

/* An object's owner, lower-cased: NULL or "" is the caller's own. */
static int resolve_owner(const char *me, const char *user_id, size_t index,
                         char owner[KN_STORAGE_UUID_LEN + 1], char *msg, size_t cap)
{
    if (!user_id || !*user_id) {
        snprintf(owner, KN_STORAGE_UUID_LEN + 1, "%s", *me ? me : KN_STORAGE_SYSTEM_USER);
        return KN_OK;
    }
    if (!kn_uuid_valid(user_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "object %zu: user_id is not a UUID",
                          index);
    lower_uuid(user_id, owner);
    return KN_OK;
}

/* An expected version from a caller: "*" or anything we might have issued. */
static int check_version(const char *version, bool allow_absent, size_t index, char *msg,
                         size_t cap)
{
    if (!version || !*version) return KN_OK;
    if (!strcmp(version, "*")) {
        if (allow_absent) return KN_OK;
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "object %zu: version \"*\" means \"absent\"; there is nothing to delete",
                          index);
    }
    size_t len = strlen(version);
    bool printable = len <= KN_STORAGE_VERSION_MAX;
    for (size_t i = 0; printable && i < len; i++)
        printable = version[i] > 0x20 && version[i] < 0x7f;
    if (!printable)
        return kn_err_msg(
            KN_ERR_INVALID_ARGUMENT, msg, cap,
            "object %zu: version must be \"\", \"*\" or a version the server returned", index);
    return KN_OK;
}

static const char *json_type_name(const kn_json *v)
{
    switch (kn_json_typeof(v)) {
    case KN_JSON_OBJECT:
        return "an object";
    case KN_JSON_ARRAY:
        return "an array";
    case KN_JSON_STRING:
        return "a string";
    case KN_JSON_INTEGER:
    case KN_JSON_REAL:
        return "a number";
    case KN_JSON_TRUE:
    case KN_JSON_FALSE:
        return "a boolean";
    case KN_JSON_NULL:
        return "null";
    }
    return "unknown";
}

static int hash_chunk(const char *buffer, size_t size, void *state)
{
    kn_crypto_sha256_update(state, buffer, size);
    return 0;
}

/* Validates a value and computes its version: SHA-256 over the canonical
 * form (compact, keys sorted) streamed straight from the JSON encoder, so
 * whitespace and key order do not change a version. Duplicate keys are
 * refused: JSONB would silently keep only the last. */
static int value_version(const char *value, size_t index, char version[KN_STORAGE_VERSION_LEN + 1],
                         char *msg, size_t cap)
{
    if (!value)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "object %zu: value is missing", index);
    size_t len = strlen(value);
    if (len > KN_STORAGE_VALUE_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "object %zu: value is %zu bytes; the limit is %d", index, len,
                          KN_STORAGE_VALUE_MAX);
    kn_json_error err;
    kn_json *v = kn_json_parse(value, len, KN_JSON_DECODE_ANY | KN_JSON_REJECT_DUPLICATES, &err);
    if (!v)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "object %zu: value is not valid JSON: %s at byte %d", index, err.text,
                          err.position);
    if (!kn_json_is_object(v)) {
        int rc =
            kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                       "object %zu: value must be a JSON object, not %s", index, json_type_name(v));
        kn_json_decref(v);
        return rc;
    }
    kn_crypto_sha256_state st;
    kn_crypto_sha256_init(&st);
    int rc = kn_json_dump_to(v, KN_JSON_COMPACT | KN_JSON_SORT_KEYS, hash_chunk, &st);
    kn_json_decref(v);
    if (rc != 0) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    uint8_t h[KN_CRYPTO_SHA256_SIZE];
    kn_crypto_sha256_final(&st, h);
    kn_crypto_hex_encode(version, KN_STORAGE_VERSION_LEN + 1, h, KN_STORAGE_VERSION_LEN / 2);
    return KN_OK;
}

/* --- batches --------------------------------------------------------------- */

/* One object of a write or delete batch, validated and normalised. */
typedef struct slot {
    size_t index; /* in the caller's array */
    const char *collection, *key;
    const char *expected; /* NULL = no version check */
    char owner[KN_STORAGE_UUID_LEN + 1];
    char version[KN_STORAGE_VERSION_LEN + 1]; /* the value's version (writes) */
} slot;

/* Primary-key order: (collection, user_id, key); strcmp is the "C" collation
 * and lower-case UUID text sorts as the UUID bytes do. */
static int slot_cmp(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    int c = strcmp(x->collection, y->collection);
    if (!c) c = strcmp(x->owner, y->owner);
    if (!c) c = strcmp(x->key, y->key);
    return c;
}

/* Sorts the batch into lock order; the same object twice is refused, as
 * its meaning (which version check applies to which value) is unclear. */
static int sort_batch(slot *slots, size_t n, char *msg, size_t cap)
{
    qsort(slots, n, sizeof *slots, slot_cmp);
    for (size_t i = 1; i < n; i++)
        if (!slot_cmp(&slots[i - 1], &slots[i])) {
            size_t a = slots[i - 1].index, b = slots[i].index;
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "object %zu: repeats object %zu",
                              a > b ? a : b, a < b ? a : b);
        }
    return KN_OK;
}

static int conflict(const slot *s, char *msg, size_t cap)
{
    return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap,
                      "version check failed for \"%s\"/\"%s\" (owner %s)", s->collection, s->key,
                      s->owner);
}

static int read_only(const slot *s, char *msg, size_t cap)
{
    return kn_err_msg(
        KN_ERR_PERMISSION_DENIED, msg, cap,
        "object %zu: \"%s\"/\"%s\" (owner %s) has write permission 0; only the server "
        "may change it",
        s->index, s->collection, s->key, s->owner);
}

/* A conditional statement changed nothing: reads the row to say why. */
static int explain_unchanged(kn_db *db, bool client, const slot *s, char *msg, size_t cap)
{
    kn_db_rows *rows = NULL;
    const char *p[] = {s->collection, s->key, s->owner};
    int rc = kn_db_query(db, &find_state, p, &rows);
    if (rc) return kn_db_fail(rc, msg, cap);
    bool exists = kn_db_rows_count(rows) == 1;
    const char *write = kn_db_rows_get(rows, 0, 1);
    bool writable = !exists || (write && atoi(write) > 0);
    kn_db_rows_free(rows);
    if (client && !writable) return read_only(s, msg, cap);
    if (!exists && !s->expected) return KN_OK; /* deleting what is not there */
    return conflict(s, msg, cap);
}

/* Runs a statement that returns one row when it changed the object. */
static int run_change(kn_db *db, const kn_db_stmt *stmt, const char *const *params, bool *changed)
{
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, stmt, params, &rows);
    *changed = kn_db_rows_count(rows) == 1;
    kn_db_rows_free(rows);
    return rc;
}

static int write_one(kn_db *db, bool client, const kn_storage_write_op *op, const slot *s,
                     char *msg, size_t cap)
{
    char rd[4], wr[4];
    snprintf(rd, sizeof rd, "%d", op->permission_read);
    snprintf(wr, sizeof wr, "%d", op->permission_write);
    const char *is_client = client ? "t" : "f";
    const char *p[9] = {s->collection, s->key, s->owner, op->value, s->version, rd, wr};
    const kn_db_stmt *stmt;
    if (!s->expected) {
        stmt = &upsert;
        p[7] = is_client;
    } else if (!strcmp(s->expected, "*")) {
        stmt = &insert_absent;
    } else {
        stmt = &update_matching;
        p[7] = s->expected;
        p[8] = is_client;
    }
    bool changed;
    int rc = run_change(db, stmt, p, &changed);
    if (rc == KN_ERR_NOT_FOUND) /* the foreign key: no such user */
        return kn_err_msg(rc, msg, cap, "object %zu: owner %s does not exist", s->index, s->owner);
    if (rc) return kn_db_fail(rc, msg, cap);
    if (changed) return KN_OK;
    /* An unconditional write changes nothing only when the object is read-only. */
    if (stmt == &upsert) return read_only(s, msg, cap);
    if (stmt == &insert_absent) return conflict(s, msg, cap);
    return explain_unchanged(db, client, s, msg, cap);
}

static int delete_one(kn_db *db, bool client, const slot *s, char *msg, size_t cap)
{
    const char *p[] = {s->collection, s->key, s->owner, s->expected, client ? "t" : "f"};
    bool changed;
    int rc = run_change(db, &delete_matching, p, &changed);
    if (rc) return kn_db_fail(rc, msg, cap);
    return changed ? KN_OK : explain_unchanged(db, client, s, msg, cap);
}

/* --- write, delete ---------------------------------------------------------- */

static int check_write_op(const char *me, const kn_storage_write_op *op, size_t i, slot *s,
                          char *msg, size_t cap)
{
    int rc;
    if ((rc = check_name("collection", op->collection, i, msg, cap)) ||
        (rc = check_name("key", op->key, i, msg, cap)) ||
        (rc = resolve_owner(me, op->user_id, i, s->owner, msg, cap)) ||
        (rc = check_version(op->version, true, i, msg, cap)))
        return rc;
    if (op->permission_read < KN_STORAGE_READ_NONE || op->permission_read > KN_STORAGE_READ_PUBLIC)
        return kn_err_msg(
            KN_ERR_INVALID_ARGUMENT, msg, cap,
            "object %zu: read permission must be 0 (none), 1 (owner) or 2 (public), not %d", i,
            op->permission_read);
    if (op->permission_write < KN_STORAGE_WRITE_NONE ||
        op->permission_write > KN_STORAGE_WRITE_OWNER)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "object %zu: write permission must be 0 (none) or 1 (owner), not %d", i,
                          op->permission_write);
    /* Before the value: no need to parse 64 KiB to refuse a stranger. */
    if (*me && strcmp(s->owner, me))
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "object %zu: clients may write only their own objects", i);
    if ((rc = value_version(op->value, i, s->version, msg, cap))) return rc;
    s->index = i;
    s->collection = op->collection;
    s->key = op->key;
    s->expected = op->version && *op->version ? op->version : NULL;
    return KN_OK;
}

/* own_tx: open (and end) a transaction for a batch of more than one object;
 * otherwise the caller has one open and ends it (kn_storage_write_in). */
static int write_batch(kn_db *db, const char *caller, const kn_storage_write_op *ops, size_t n,
                       bool own_tx, kn_storage_ack **acks, char *msg, size_t cap)
{
    *acks = NULL;
    char me[KN_STORAGE_UUID_LEN + 1];
    int rc = check_caller(caller, me, msg, cap);
    if (rc) return rc;
    if (n > KN_STORAGE_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "at most %d objects per write, not %zu", KN_STORAGE_BATCH_MAX, n);
    if (n == 0) return KN_OK;
    assert(ops);
    slot slots[KN_STORAGE_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        if ((rc = check_write_op(me, &ops[i], i, &slots[i], msg, cap))) return rc;
    if ((rc = sort_batch(slots, n, msg, cap))) return rc;

    kn_storage_ack *out = kn_calloc(n, sizeof *out);
    if (!out) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    bool tx = own_tx && n > 1; /* one object is one statement, atomic without BEGIN/COMMIT */
    if (tx && (rc = kn_db_begin(db))) {
        kn_free(out);
        return kn_db_fail(rc, msg, cap);
    }
    for (size_t k = 0; k < n && rc == KN_OK; k++)
        rc = write_one(db, *me != '\0', &ops[slots[k].index], &slots[k], msg, cap);
    if (rc) {
        if (tx) kn_db_rollback(db);
        kn_free(out);
        return rc;
    }
    if (tx && (rc = kn_db_commit(db))) {
        kn_free(out);
        return kn_db_fail(rc, msg, cap);
    }
    for (size_t k = 0; k < n; k++) {
        const slot *s = &slots[k];
        kn_storage_ack *a = &out[s->index];
        snprintf(a->collection, sizeof a->collection, "%s", s->collection);
        snprintf(a->key, sizeof a->key, "%s", s->key);
        snprintf(a->user_id, sizeof a->user_id, "%s", s->owner);
        snprintf(a->version, sizeof a->version, "%s", s->version);
    }
    *acks = out;
    return KN_OK;
}

int kn_storage_write(kn_db *db, const char *caller, const kn_storage_write_op *ops, size_t n,
                     kn_storage_ack **acks, char *msg, size_t cap)
{
    return write_batch(db, caller, ops, n, true, acks, msg, cap);
}

int kn_storage_write_in(kn_db *db, const char *caller, const kn_storage_write_op *ops, size_t n,
                        kn_storage_ack **acks, char *msg, size_t cap)
{
    assert(kn_db_in_transaction(db));
    return write_batch(db, caller, ops, n, false, acks, msg, cap);
}

static int check_id(const char *me, const kn_storage_id *id, size_t i,
                    char owner[KN_STORAGE_UUID_LEN + 1], char *msg, size_t cap)
{
    int rc;
    if ((rc = check_name("collection", id->collection, i, msg, cap)) ||
        (rc = check_name("key", id->key, i, msg, cap)))
        return rc;
    return resolve_owner(me, id->user_id, i, owner, msg, cap);
}

/* own_tx as for write_batch. */
static int delete_batch(kn_db *db, const char *caller, const kn_storage_delete_op *ops, size_t n,
                        bool own_tx, char *msg, size_t cap)
{
    char me[KN_STORAGE_UUID_LEN + 1];
    int rc = check_caller(caller, me, msg, cap);
    if (rc) return rc;
    if (n > KN_STORAGE_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "at most %d objects per delete, not %zu", KN_STORAGE_BATCH_MAX, n);
    if (n == 0) return KN_OK;
    assert(ops);
    slot slots[KN_STORAGE_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        slot *s = &slots[i];
        if ((rc = check_id(me, &ops[i].id, i, s->owner, msg, cap)) ||
            (rc = check_version(ops[i].version, false, i, msg, cap)))
            return rc;
        if (*me && strcmp(s->owner, me))
            return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                              "object %zu: clients may delete only their own objects", i);
        s->index = i;
        s->collection = ops[i].id.collection;
        s->key = ops[i].id.key;
        s->expected = ops[i].version && *ops[i].version ? ops[i].version : NULL;
        s->version[0] = '\0';
    }
    if ((rc = sort_batch(slots, n, msg, cap))) return rc;

    bool tx = own_tx && n > 1; /* as for writes */
    if (tx && (rc = kn_db_begin(db))) return kn_db_fail(rc, msg, cap);
    for (size_t k = 0; k < n && rc == KN_OK; k++)
        rc = delete_one(db, *me != '\0', &slots[k], msg, cap);
    if (rc) {
        if (tx) kn_db_rollback(db);
        return rc;
    }
    if (tx && (rc = kn_db_commit(db))) return kn_db_fail(rc, msg, cap);
    return KN_OK;
}

int kn_storage_delete(kn_db *db, const char *caller, const kn_storage_delete_op *ops, size_t n,
                      char *msg, size_t cap)
{
    return delete_batch(db, caller, ops, n, true, msg, cap);
}

int kn_storage_delete_in(kn_db *db, const char *caller, const kn_storage_delete_op *ops, size_t n,
                         char *msg, size_t cap)
{
    assert(kn_db_in_transaction(db));
    return delete_batch(db, caller, ops, n, false, msg, cap);
}

/* --- results ---------------------------------------------------------------- */

/* Copies the first `count` rows (OBJECT_COLUMNS) into one block: the object
 * array followed by the values. */
static int objects_from_rows(const kn_db_rows *rows, size_t count, kn_storage_object **out)
{
    *out = NULL;
    if (count == 0) return KN_OK;
    size_t bytes = count * sizeof(kn_storage_object);
    for (size_t i = 0; i < count; i++) {
        const char *v = kn_db_rows_get(rows, i, 3);
        bytes += (v ? strlen(v) : 0) + 1;
    }
    kn_storage_object *objs = kn_calloc(1, bytes);
    if (!objs) return KN_ERR_NOMEM;
    char *arena = (char *)(objs + count);
    for (size_t i = 0; i < count; i++) {
        kn_storage_object *o = &objs[i];
        const char *col[9];
        for (size_t c = 0; c < 9; c++) {
            col[c] = kn_db_rows_get(rows, i, c);
            if (!col[c]) col[c] = "";
        }
        snprintf(o->collection, sizeof o->collection, "%s", col[0]);
        snprintf(o->key, sizeof o->key, "%s", col[1]);
        snprintf(o->user_id, sizeof o->user_id, "%s", col[2]);
        o->value_len = strlen(col[3]);
        memcpy(arena, col[3], o->value_len + 1);
        o->value = arena;
        arena += o->value_len + 1;
        snprintf(o->version, sizeof o->version, "%s", col[4]);
        o->permission_read = atoi(col[5]);
        o->permission_write = atoi(col[6]);
        o->create_time_ms = strtoll(col[7], NULL, 10);
        o->update_time_ms = strtoll(col[8], NULL, 10);
    }
    *out = objs;
    return KN_OK;
}

/* --- read -------------------------------------------------------------------- */

int kn_storage_read(kn_db *db, const char *caller, const kn_storage_id *ids, size_t n,
                    kn_storage_object **out, size_t *n_out, char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    char me[KN_STORAGE_UUID_LEN + 1];
    int rc = check_caller(caller, me, msg, cap);
    if (rc) return rc;
    if (n > KN_STORAGE_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d objects per read, not %zu",
                          KN_STORAGE_BATCH_MAX, n);
    if (n == 0) return KN_OK;
    assert(ids);
    char owners[KN_STORAGE_BATCH_MAX][KN_STORAGE_UUID_LEN + 1];
    const char *cols[KN_STORAGE_BATCH_MAX], *keys[KN_STORAGE_BATCH_MAX],
        *users[KN_STORAGE_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_id(me, &ids[i], i, owners[i], msg, cap))) return rc;
        cols[i] = ids[i].collection;
        keys[i] = ids[i].key;
        users[i] = owners[i];
    }
    char *p_cols = kn_db_text_array(cols, n), *p_keys = kn_db_text_array(keys, n),
         *p_users = kn_db_text_array(users, n);
    kn_db_rows *rows = NULL;
    if (!p_cols || !p_keys || !p_users) {
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    } else {
        const char *p[] = {p_cols, p_keys, p_users, *me ? me : NULL};
        if ((rc = kn_db_query(db, &read_ids, p, &rows))) kn_db_fail(rc, msg, cap);
    }
    kn_free(p_cols);
    kn_free(p_keys);
    kn_free(p_users);
    if (rc == KN_OK) {
        size_t count = kn_db_rows_count(rows);
        if ((rc = objects_from_rows(rows, count, out)))
            kn_err_msg(rc, msg, cap, "out of memory");
        else
            *n_out = count;
    }
    kn_db_rows_free(rows);
    return rc;
}

/* --- list ---------------------------------------------------------------------
 *
 * Cursor: base64url (no padding) of
 *   [0] format version (1)  [1] scope: 0 every owner, 1 one owner
 *   [2..17] owner of the last object (UUID bytes)
 *   [18] collection length  then the collection  then the last key (the rest).
 * The scope and collection tie a cursor to its listing, so one cannot be
 * replayed against another. */

#define CURSOR_FORMAT   1
#define CURSOR_HEAD     19
#define CURSOR_BIN_MAX  (CURSOR_HEAD + 2 * KN_STORAGE_NAME_MAX)
#define CURSOR_TEXT_MAX KN_CRYPTO_BASE64_LEN(CURSOR_BIN_MAX, KN_CRYPTO_BASE64URL)

enum { SCOPE_ALL = 0, SCOPE_OWNER = 1 };

static void uuid_bytes(const char *uuid, unsigned char b[16])
{
    size_t len = 0;
    int rc = kn_crypto_hex_decode(b, 16, uuid, KN_STORAGE_UUID_LEN, "-", &len);
    assert(rc == 0 && len == 16); /* callers pass validated UUIDs */
    (void)rc;
}

static void uuid_text(const unsigned char b[16], char out[KN_STORAGE_UUID_LEN + 1])
{
    snprintf(out, KN_STORAGE_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

static char *cursor_encode(int scope, const char *collection, const char *owner, const char *key)
{
    unsigned char bin[CURSOR_BIN_MAX];
    size_t clen = strlen(collection), klen = strlen(key);
    assert(clen <= KN_STORAGE_NAME_MAX && klen <= KN_STORAGE_NAME_MAX);
    bin[0] = CURSOR_FORMAT;
    bin[1] = (unsigned char)scope;
    uuid_bytes(owner, bin + 2);
    bin[18] = (unsigned char)clen;
    memcpy(bin + CURSOR_HEAD, collection, clen);
    memcpy(bin + CURSOR_HEAD + clen, key, klen);
    char *text = kn_malloc(CURSOR_TEXT_MAX);
    if (!text) return NULL;
    kn_crypto_base64_encode(text, CURSOR_TEXT_MAX, bin, CURSOR_HEAD + clen + klen,
                            KN_CRYPTO_BASE64URL);
    return text;
}

/* Decodes a cursor for this listing into the position after which to go on.
 * `owner` is "" for the every-owner scope. */
static int cursor_decode(const char *cursor, int scope, const char *collection, const char *owner,
                         char after_owner[KN_STORAGE_UUID_LEN + 1],
                         char after_key[KN_STORAGE_NAME_MAX + 1], char *msg, size_t cap)
{
    unsigned char bin[CURSOR_BIN_MAX];
    size_t len = strlen(cursor), bin_len = 0;
    const char *end = NULL;
    if (len >= CURSOR_TEXT_MAX ||
        kn_crypto_base64_decode(bin, sizeof bin, cursor, len, NULL, &bin_len, &end,
                                KN_CRYPTO_BASE64URL) != 0 ||
        end != cursor + len || bin_len < CURSOR_HEAD + 2 || bin[0] != CURSOR_FORMAT)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    size_t clen = bin[18];
    if (clen < 1 || clen > KN_STORAGE_NAME_MAX || CURSOR_HEAD + clen >= bin_len)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    const char *key = (const char *)bin + CURSOR_HEAD + clen;
    size_t klen = bin_len - CURSOR_HEAD - clen;
    if (!valid_name(key, klen))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    uuid_text(bin + 2, after_owner);
    if (bin[1] != scope || clen != strlen(collection) ||
        memcmp(bin + CURSOR_HEAD, collection, clen) ||
        (scope == SCOPE_OWNER && strcmp(after_owner, owner)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "cursor belongs to another listing (collection or user_id differ)");
    memcpy(after_key, key, klen);
    after_key[klen] = '\0';
    return KN_OK;
}

int kn_storage_cursor_check(const char *user_id, const char *collection, const char *cursor,
                            char *msg, size_t cap)
{
    if (!collection || !valid_name(collection, strlen(collection)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "collection is invalid");
    int scope = user_id && *user_id ? SCOPE_OWNER : SCOPE_ALL;
    char owner[KN_STORAGE_UUID_LEN + 1] = "";
    if (scope == SCOPE_OWNER) {
        if (!kn_uuid_valid(user_id))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user_id is not a UUID");
        lower_uuid(user_id, owner);
    }
    char after_owner[KN_STORAGE_UUID_LEN + 1], after_key[KN_STORAGE_NAME_MAX + 1];
    return cursor_decode(cursor, scope, collection, owner, after_owner, after_key, msg, cap);
}

int kn_storage_list(kn_db *db, const char *caller, const char *user_id, const char *collection,
                    int limit, const char *cursor, kn_storage_object **out, size_t *n_out,
                    char **next_cursor, char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    *next_cursor = NULL;
    char me[KN_STORAGE_UUID_LEN + 1];
    int rc = check_caller(caller, me, msg, cap);
    if (rc) return rc;
    if (!collection || !*collection)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "collection is missing");
    if (!valid_name(collection, strlen(collection)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "collection must be 1-%d bytes of UTF-8 without control characters",
                          KN_STORAGE_NAME_MAX);
    if (limit < 1 || limit > KN_STORAGE_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %d",
                          KN_STORAGE_LIST_MAX, limit);
    int scope = user_id && *user_id ? SCOPE_OWNER : SCOPE_ALL;
    char owner[KN_STORAGE_UUID_LEN + 1] = "";
    if (scope == SCOPE_OWNER) {
        if (!kn_uuid_valid(user_id))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user_id is not a UUID");
        lower_uuid(user_id, owner);
    }
    char after_owner[KN_STORAGE_UUID_LEN + 1] = KN_STORAGE_SYSTEM_USER; /* the smallest UUID */
    char after_key[KN_STORAGE_NAME_MAX + 1] = "";                       /* before every key */
    if (cursor && *cursor &&
        (rc = cursor_decode(cursor, scope, collection, owner, after_owner, after_key, msg, cap)))
        return rc;

    /* One more row than asked says whether another page follows. */
    char fetch[16];
    snprintf(fetch, sizeof fetch, "%d", limit + 1);
    kn_db_rows *rows = NULL;
    if (scope == SCOPE_OWNER) {
        const char *min_read = !*me ? "0" : !strcmp(me, owner) ? "1" : "2";
        const char *p[] = {collection, owner, after_key, min_read, fetch};
        rc = kn_db_query(db, &list_owner, p, &rows);
    } else {
        const char *p[] = {collection, after_owner, after_key, fetch};
        rc = kn_db_query(db, *me ? &list_public : &list_all, p, &rows);
    }
    if (rc) return kn_db_fail(rc, msg, cap);

    size_t count = kn_db_rows_count(rows);
    bool more = count > (size_t)limit;
    if (more) count = (size_t)limit;
    rc = objects_from_rows(rows, count, out);
    if (rc == KN_OK && more) {
        const kn_storage_object *last = &(*out)[count - 1];
        *next_cursor = cursor_encode(scope, collection, last->user_id, last->key);
        if (!*next_cursor) rc = KN_ERR_NOMEM;
    }
    kn_db_rows_free(rows);
    if (rc) {
        kn_free(*out);
        *out = NULL;
        return kn_err_msg(rc, msg, cap, "out of memory");
    }
    *n_out = count;
    return KN_OK;
}
