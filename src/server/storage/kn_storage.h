/* kn_storage: the storage engine — JSON objects kept for players and for the
 * game, in the spirit of Nakama's storage.
 *
 * An object is named by (collection, key, owner). The owner is a user id, or
 * the nil UUID KN_STORAGE_SYSTEM_USER for objects that belong to the game.
 * It holds a JSON object (the value), a version (see below), a read
 * permission (0 none, 1 owner, 2 public) and a write permission (0 none,
 * 1 owner). docs/storage.md has the model, the permission matrix and the
 * cursor format.
 *
 * Caller. Every function takes `caller`: the acting user's id (a client), or
 * NULL for the server (Lua runtime, server-to-server calls) which may read,
 * write, delete and list everything. A client:
 *   - reads its own objects with read >= 1 and anyone's with read == 2;
 *   - writes and deletes only its own objects, and only those that do not
 *     exist yet or have write == 1;
 *   - lists its own collection (read >= 1) or another owner's public objects.
 * An object id whose user_id is NULL or "" means the caller's own object
 * (the system's for the server); pass KN_STORAGE_SYSTEM_USER to name a
 * system object as a client.
 *
 * Versions. The version of an object is the first 32 hex characters of the
 * SHA-256 of its value in canonical form (compact JSON, keys sorted), so it
 * changes exactly when the value does. A write or delete may name the
 * version it expects: "*" (write only) = the object must not exist, a
 * version = the object must exist with that version, NULL or "" = no check.
 * A failed check is KN_ERR_FAILED_PRECONDITION naming the object: the client
 * must read again before retrying (unlike KN_ERR_ABORTED, which the database
 * layer returns for a deadlock or serialization failure that may be retried
 * unchanged). Checks are race-safe: of two writes expecting the same version
 * exactly one succeeds.
 *
 * Batches. Write and delete apply a batch of up to KN_STORAGE_BATCH_MAX
 * objects in one transaction: all or nothing. Every object is validated
 * before the database is touched.
 *
 * Threads: every function blocks on Postgres, so it runs on an API worker
 * (or a CLI command) with the kn_db that thread owns. There is no state of
 * its own; the functions may run on any number of threads at once, each
 * with its own kn_db.
 *
 * Ownership: arguments are borrowed. Results (*acks, *out, *next_cursor)
 * are allocated with kn_malloc, owned by the caller and freed with kn_free
 * (each is one block); they are NULL when a call fails or has nothing to
 * return.
 *
 * Failures return a kn_err and a one-line reason for the client in `msg`
 * (may be NULL): KN_ERR_INVALID_ARGUMENT for malformed input (naming the
 * object's index in the batch), KN_ERR_PERMISSION_DENIED,
 * KN_ERR_FAILED_PRECONDITION for a version check, KN_ERR_NOT_FOUND when
 * the server writes for a user that does not exist, KN_ERR_NOMEM,
 * KN_ERR_ABORTED (retry) and KN_ERR_DB. */
#ifndef KN_STORAGE_H
#define KN_STORAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_entity kn_entity;

#define KN_STORAGE_SYSTEM_USER "00000000-0000-0000-0000-000000000000"

#define KN_STORAGE_NAME_MAX    128   /* bytes in a collection or key (at least 1) */
#define KN_STORAGE_VALUE_MAX   65536 /* bytes of JSON text in a value */
#define KN_STORAGE_BATCH_MAX   100   /* objects per write, read or delete */
#define KN_STORAGE_LIST_MAX    100   /* objects per list page */
#define KN_STORAGE_VERSION_LEN 32    /* hex characters in a version */
#define KN_STORAGE_VERSION_MAX 64    /* bytes in an expected version given by a caller */
#define KN_STORAGE_UUID_LEN    36

enum {
    KN_STORAGE_READ_NONE = 0,   /* only the server reads it */
    KN_STORAGE_READ_OWNER = 1,  /* the owner and the server */
    KN_STORAGE_READ_PUBLIC = 2, /* everyone */
};

enum {
    KN_STORAGE_WRITE_NONE = 0,  /* only the server writes or deletes it */
    KN_STORAGE_WRITE_OWNER = 1, /* the owner and the server */
};

/* Names one object. Collection and key: 1-128 bytes of UTF-8 without
 * control characters. user_id: a UUID, or NULL/"" for the caller's own. */
typedef struct kn_storage_id {
    const char *collection;
    const char *key;
    const char *user_id;
} kn_storage_id;

/* One object to write. */
typedef struct kn_storage_write_op {
    const char *collection;
    const char *key;
    const char *user_id;  /* owner; NULL or "" = the caller (the system for the server) */
    const char *value;    /* a JSON object, at most KN_STORAGE_VALUE_MAX bytes */
    const char *version;  /* NULL/"" = unconditional, "*" = only if absent, else must match */
    int permission_read;  /* KN_STORAGE_READ_* */
    int permission_write; /* KN_STORAGE_WRITE_* */
} kn_storage_write_op;

/* One object to delete; version NULL/"" = whichever version it has. */
typedef struct kn_storage_delete_op {
    kn_storage_id id;
    const char *version;
} kn_storage_delete_op;

/* What a write stored: the object's id and its new version. */
typedef struct kn_storage_ack {
    char collection[KN_STORAGE_NAME_MAX + 1];
    char key[KN_STORAGE_NAME_MAX + 1];
    char user_id[KN_STORAGE_UUID_LEN + 1];
    char version[KN_STORAGE_VERSION_LEN + 1];
} kn_storage_ack;

/* An object as read or listed. `value` is JSON text (Postgres' canonical
 * JSONB rendering, so whitespace and key order may differ from what was
 * written) and lives in the same block as the object array. */
typedef struct kn_storage_object {
    char collection[KN_STORAGE_NAME_MAX + 1];
    char key[KN_STORAGE_NAME_MAX + 1];
    char user_id[KN_STORAGE_UUID_LEN + 1];
    char version[KN_STORAGE_VERSION_LEN + 1];
    const char *value;
    size_t value_len;
    int permission_read;
    int permission_write;
    int64_t create_time_ms; /* Unix milliseconds */
    int64_t update_time_ms;
} kn_storage_object;

/* kn_storage_object and kn_storage_ack as the StorageObject and StorageAck
 * entities (kn_entity.h): the wire's messages and the Lua tables are built
 * from them. */
extern const kn_entity kn_storage_object_entity;
extern const kn_entity kn_storage_ack_entity;

/* Write `n` objects (n <= KN_STORAGE_BATCH_MAX) atomically. On success
 * *acks holds n acks in the order of `ops` (NULL when n is 0). A client may
 * write only objects it owns, and may not overwrite one whose write
 * permission is 0 (PERMISSION_DENIED). A version check that fails is FAILED_PRECONDITION
 * ("version check failed for "<collection>"/"<key>" (owner <uuid>)") and
 * nothing of the batch is written. The same object twice in one batch is
 * INVALID_ARGUMENT. */
int kn_storage_write(kn_db *db, const char *caller, const kn_storage_write_op *ops, size_t n,
                     kn_storage_ack **acks, char *msg, size_t msg_cap);

/* kn_storage_write and kn_storage_delete inside a transaction the caller
 * opened with kn_db_begin (asserted), for server code that changes storage
 * together with other things (kn_multi_update): the same checks and
 * statements, but no BEGIN, COMMIT or ROLLBACK. On failure the transaction
 * is left for the caller to roll back (a statement may have failed in it);
 * on success nothing is committed until the caller commits. */
int kn_storage_write_in(kn_db *db, const char *caller, const kn_storage_write_op *ops, size_t n,
                        kn_storage_ack **acks, char *msg, size_t msg_cap);
int kn_storage_delete_in(kn_db *db, const char *caller, const kn_storage_delete_op *ops, size_t n,
                         char *msg, size_t msg_cap);

/* Read `n` objects (n <= KN_STORAGE_BATCH_MAX). *out receives the ones that
 * exist and the caller may read, in the order asked; *n_out their count.
 * Objects that are missing or not readable are simply absent. */
int kn_storage_read(kn_db *db, const char *caller, const kn_storage_id *ids, size_t n,
                    kn_storage_object **out, size_t *n_out, char *msg, size_t msg_cap);

/* Delete `n` objects (n <= KN_STORAGE_BATCH_MAX) atomically. A client may
 * delete only its own objects with write permission 1 (PERMISSION_DENIED).
 * A missing object is no error unless a version was given (then
 * FAILED_PRECONDITION, as is a version that does not match). */
int kn_storage_delete(kn_db *db, const char *caller, const kn_storage_delete_op *ops, size_t n,
                      char *msg, size_t msg_cap);

/* One page of a collection, `limit` (1..KN_STORAGE_LIST_MAX) objects at most.
 *   user_id a UUID: that owner's objects, ordered by key. The owner listing
 *                   their own sees read >= 1, another client read == 2, the
 *                   server everything.
 *   user_id NULL/"": every owner's objects in the collection, ordered by
 *                   (owner, key): public ones (read == 2) for a client,
 *                   all for the server.
 * `cursor` NULL or "" starts at the beginning; otherwise it is a cursor this
 * function returned for the same listing (same collection and user_id). A
 * cursor names the last object returned, not an offset, so a walk sees every
 * object that exists throughout it exactly once and in order, however others
 * insert or delete meanwhile. A cursor that is garbled or belongs to another
 * listing is INVALID_ARGUMENT. *next_cursor is NULL on the last page. */
int kn_storage_list(kn_db *db, const char *caller, const char *user_id, const char *collection,
                    int limit, const char *cursor, kn_storage_object **out, size_t *n_out,
                    char **next_cursor, char *msg, size_t msg_cap);

/* Validates a list cursor for (user_id, collection) without touching the
 * database: what kn_storage_list does first with a client's cursor. Any
 * thread. KN_OK or INVALID_ARGUMENT with the reason. */
int kn_storage_cursor_check(const char *user_id, const char *collection, const char *cursor,
                            char *msg, size_t msg_cap);

#endif
