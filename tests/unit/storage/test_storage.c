/* kn_storage against the Postgres named by the PG* environment (the suite
 * runs inside pg_virtualenv). The group setup creates a database of its own,
 * migrates it and adds users with plain INSERTs; each test uses collections
 * of its own, so tests do not see each other's objects. Covered: the
 * permission matrix, versions and optimistic concurrency (including two
 * connections racing), batch atomicity, keyset pagination while others
 * write, cursor validation, input validation and allocation failures. */
#include "failalloc.h"
#include "pgtest.h"
#include "kn_db.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_mem.h"
#include "kn_storage.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define SYSTEM KN_STORAGE_SYSTEM_USER
#define ALICE  "a11ce000-0000-4000-8000-000000000001"
#define BOB    "b0b00000-0000-4000-8000-000000000002"
#define CAROL  "ca201000-0000-4000-8000-000000000003"
#define DAVE   "da7e0000-0000-4000-8000-000000000004"
#define SERVER NULL

static pgtest pg;
static kn_db *db, *db2;
static char msg[512];

/* --- fixture ------------------------------------------------------------- */


static int setup(void **state)
{
    if (pgtest_create(&pg, "kaos_storage", &db) || pgtest_open(&pg, &db2)) return -1;
    const char *users[] = {ALICE, BOB, CAROL, DAVE};
    for (int i = 0; i < 4; i++)
        pgtest_sql(db, "INSERT INTO users (id, username) VALUES ('%s', 'user%d')", users[i], i);
    return 0;
}

static int teardown(void **state)
{
    kn_db_close(db);
    kn_db_close(db2);
    pgtest_drop(&pg);
    return 0;
}

/* --- helpers --------------------------------------------------------------- */

static int put_on(kn_db *d, const char *caller, const char *collection, const char *key,
                  const char *user_id, const char *value, const char *version, int read, int write,
                  char *version_out)
{
    kn_storage_write_op op = {collection, key, user_id, value, version, read, write};
    kn_storage_ack *acks = NULL;
    msg[0] = '\0';
    int rc = kn_storage_write(d, caller, &op, 1, &acks, msg, sizeof msg);
    if (rc == KN_OK) {
        assert_non_null(acks);
        if (version_out) strcpy(version_out, acks[0].version);
    } else {
        assert_null(acks);
    }
    kn_free(acks);
    return rc;
}

static int put(const char *caller, const char *collection, const char *key, const char *user_id,
               const char *value, const char *version, int read, int write, char *version_out)
{
    return put_on(db, caller, collection, key, user_id, value, version, read, write, version_out);
}

static char got_value[KN_STORAGE_VALUE_MAX * 2];

/* Reads one object; copies it (value into got_value) when found. */
static bool get(const char *caller, const char *collection, const char *key, const char *user_id,
                kn_storage_object *copy)
{
    kn_storage_id id = {collection, key, user_id};
    kn_storage_object *objs = NULL;
    size_t n = 99;
    assert_int_equal(kn_storage_read(db, caller, &id, 1, &objs, &n, msg, sizeof msg), KN_OK);
    assert_true(n <= 1);
    if (n == 1) {
        if (copy) *copy = objs[0];
        snprintf(got_value, sizeof got_value, "%s", objs[0].value);
    }
    kn_free(objs);
    return n == 1;
}

static int del(const char *caller, const char *collection, const char *key, const char *user_id,
               const char *version)
{
    kn_storage_delete_op op = {{collection, key, user_id}, version};
    msg[0] = '\0';
    return kn_storage_delete(db, caller, &op, 1, msg, sizeof msg);
}

/* Lists one page; returns the keys as "owner/key" joined by spaces. */
static int list_page(const char *caller, const char *user_id, const char *collection, int limit,
                     const char *cursor, char *keys, size_t keys_cap, char **next)
{
    kn_storage_object *objs = NULL;
    size_t n = 0;
    char *cur = NULL;
    msg[0] = '\0';
    int rc = kn_storage_list(db, caller, user_id, collection, limit, cursor, &objs, &n, &cur, msg,
                             sizeof msg);
    if (keys) keys[0] = '\0';
    for (size_t i = 0; keys && i < n; i++) {
        size_t len = strlen(keys);
        snprintf(keys + len, keys_cap - len, "%s%.4s/%s", i ? " " : "", objs[i].user_id,
                 objs[i].key);
    }
    kn_free(objs);
    if (next)
        *next = cur;
    else
        kn_free(cur);
    return rc;
}

static void assert_json_equal(const char *a, const char *b)
{
    kn_json *x = kn_json_parse(a, strlen(a), 0, NULL);
    kn_json *y = kn_json_parse(b, strlen(b), 0, NULL);
    assert_non_null(x);
    assert_non_null(y);
    assert_true(kn_json_equal(x, y));
    kn_json_decref(x);
    kn_json_decref(y);
}

/* --- basics ------------------------------------------------------------------ */

static void written_object_reads_back_with_its_version(void **state)
{
    char v1[40], v2[40], v3[40];
    assert_int_equal(
        put(ALICE, "basics", "profile", NULL, "{\"b\": 1, \"a\": [1, 2]}", NULL, 1, 1, v1), KN_OK);
    assert_int_equal(strlen(v1), KN_STORAGE_VERSION_LEN);
    assert_int_equal(strspn(v1, "0123456789abcdef"), KN_STORAGE_VERSION_LEN);

    kn_storage_object o;
    assert_true(get(ALICE, "basics", "profile", NULL, &o));
    assert_string_equal(o.collection, "basics");
    assert_string_equal(o.key, "profile");
    assert_string_equal(o.user_id, ALICE);
    assert_string_equal(o.version, v1);
    assert_int_equal(o.permission_read, 1);
    assert_int_equal(o.permission_write, 1);
    assert_true(o.create_time_ms > 1600000000000LL);
    assert_true(o.update_time_ms == o.create_time_ms);
    assert_json_equal(got_value, "{\"a\":[1,2],\"b\":1}");

    /* The same value with other whitespace and key order keeps its version. */
    assert_int_equal(
        put(ALICE, "basics", "profile", NULL, "{\"a\":[1,2],  \"b\":1}", NULL, 1, 1, v2), KN_OK);
    assert_string_equal(v2, v1);
    assert_int_equal(put(ALICE, "basics", "profile", NULL, "{\"a\":[2,1],\"b\":1}", NULL, 1, 1, v3),
                     KN_OK);
    assert_string_not_equal(v3, v1);

    /* The version is the first 32 hex digits of SHA-256 of the canonical form. */
    uint8_t h[KN_CRYPTO_SHA256_SIZE];
    const char *canonical = "{\"a\":[2,1],\"b\":1}";
    kn_crypto_sha256(h, canonical, strlen(canonical));
    char hex[65];
    kn_crypto_hex_encode(hex, sizeof hex, h, 16);
    assert_string_equal(v3, hex);

    /* Upper-case ids name the same object; the owner comes back lower-case. */
    assert_true(get("A11CE000-0000-4000-8000-000000000001", "basics", "profile",
                    "A11CE000-0000-4000-8000-000000000001", &o));
    assert_string_equal(o.user_id, ALICE);
    assert_true(o.update_time_ms >= o.create_time_ms);
}

static void acks_follow_the_order_of_the_batch(void **state)
{
    kn_storage_write_op ops[] = {
        {"order", "c", NULL, "{\"n\":3}", NULL, 2, 1},
        {"order", "a", NULL, "{\"n\":1}", NULL, 2, 1},
        {"order", "b", NULL, "{\"n\":2}", NULL, 2, 1},
    };
    kn_storage_ack *acks;
    assert_int_equal(kn_storage_write(db, BOB, ops, 3, &acks, msg, sizeof msg), KN_OK);
    assert_string_equal(acks[0].key, "c");
    assert_string_equal(acks[1].key, "a");
    assert_string_equal(acks[2].key, "b");
    for (int i = 0; i < 3; i++) {
        assert_string_equal(acks[i].collection, "order");
        assert_string_equal(acks[i].user_id, BOB);
        assert_true(get(BOB, "order", acks[i].key, NULL, NULL));
    }
    kn_free(acks);

    /* Reads come back in the order asked, without the missing ones. */
    kn_storage_id ids[] = {
        {"order", "b", BOB}, {"order", "zz", BOB}, {"order", "a", BOB}, {"order", "c", BOB}};
    kn_storage_object *objs;
    size_t n;
    assert_int_equal(kn_storage_read(db, ALICE, ids, 4, &objs, &n, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 3);
    assert_string_equal(objs[0].key, "b");
    assert_string_equal(objs[1].key, "a");
    assert_string_equal(objs[2].key, "c");
    kn_free(objs);

    /* The same object twice in one batch has no clear meaning. */
    kn_storage_write_op twice[] = {
        {"order", "a", NULL, "{}", NULL, 1, 1},
        {"order", "b", NULL, "{}", NULL, 1, 1},
        {"order", "a", BOB, "{}", NULL, 1, 1},
    };
    assert_int_equal(kn_storage_write(db, BOB, twice, 3, &acks, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "object 2: repeats object 0");
    assert_null(acks);
}

/* --- permissions ----------------------------------------------------------------- */

/* Owner alice, bob and the system each hold r0, r1, r2 (read permission 0-2). */
static void seed_permission_objects(const char *collection)
{
    const char *owners[] = {ALICE, BOB, SYSTEM};
    for (int o = 0; o < 3; o++)
        for (int r = 0; r < 3; r++) {
            char key[8];
            snprintf(key, sizeof key, "r%d", r);
            assert_int_equal(put(SERVER, collection, key, owners[o], "{\"x\":1}", NULL, r, 1, NULL),
                             KN_OK);
        }
}

/* Which of the nine objects `caller` reads, as "a0 a1 ... s2". */
static void readable(const char *caller, char *out)
{
    const char *owners[] = {ALICE, BOB, SYSTEM};
    kn_storage_id ids[9];
    char keys[9][8];
    for (int i = 0; i < 9; i++) {
        snprintf(keys[i], sizeof keys[i], "r%d", i % 3);
        ids[i] = (kn_storage_id){"readperm", keys[i], owners[i / 3]};
    }
    kn_storage_object *objs;
    size_t n;
    assert_int_equal(kn_storage_read(db, caller, ids, 9, &objs, &n, msg, sizeof msg), KN_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char t = objs[i].user_id[0] == 'a' ? 'a' : objs[i].user_id[0] == 'b' ? 'b' : 's';
        sprintf(out + strlen(out), "%s%c%c", i ? " " : "", t, objs[i].key[1]);
    }
    kn_free(objs);
}

static void reads_follow_ownership_and_read_permission(void **state)
{
    seed_permission_objects("readperm");
    char got[64];
    readable(ALICE, got);
    assert_string_equal(got, "a1 a2 b2 s2");
    readable(BOB, got);
    assert_string_equal(got, "a2 b1 b2 s2");
    readable(CAROL, got);
    assert_string_equal(got, "a2 b2 s2");
    readable(SERVER, got);
    assert_string_equal(got, "a0 a1 a2 b0 b1 b2 s0 s1 s2");
    /* A client names system objects with the nil UUID; its own with NULL. */
    assert_true(get(ALICE, "readperm", "r2", SYSTEM, NULL));
    assert_false(get(ALICE, "readperm", "r1", SYSTEM, NULL));
    assert_true(get(ALICE, "readperm", "r1", NULL, NULL));
    assert_true(get(SERVER, "readperm", "r0", NULL, NULL)); /* the server's own = system */
}

static void clients_write_only_their_own_objects(void **state)
{
    assert_int_equal(put(ALICE, "writeperm", "mine", NULL, "{}", NULL, 1, 1, NULL), KN_OK);
    assert_int_equal(put(BOB, "writeperm", "mine", ALICE, "{\"evil\":1}", NULL, 1, 1, NULL),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "object 0: clients may write only their own objects");
    assert_int_equal(put(BOB, "writeperm", "theirs", ALICE, "{}", "*", 1, 1, NULL),
                     KN_ERR_PERMISSION_DENIED);
    assert_int_equal(put(ALICE, "writeperm", "config", SYSTEM, "{}", NULL, 2, 0, NULL),
                     KN_ERR_PERMISSION_DENIED);
    assert_true(get(SERVER, "writeperm", "mine", ALICE, NULL));
    assert_json_equal(got_value, "{}");
    assert_false(get(SERVER, "writeperm", "theirs", ALICE, NULL));
    assert_false(get(SERVER, "writeperm", "config", SYSTEM, NULL));

    /* The server writes anyone's objects and the system's. */
    assert_int_equal(
        put(SERVER, "writeperm", "mine", ALICE, "{\"by\":\"server\"}", NULL, 1, 1, NULL), KN_OK);
    assert_int_equal(put(SERVER, "writeperm", "config", NULL, "{\"a\":1}", NULL, 2, 0, NULL),
                     KN_OK);
    assert_true(get(BOB, "writeperm", "config", SYSTEM, NULL));
}

static void read_only_objects_refuse_client_writes_and_deletes(void **state)
{
    char v[40], v2[40];
    /* A client may create an object it can then no longer change. */
    assert_int_equal(put(ALICE, "locked", "trophy", NULL, "{\"gold\":1}", NULL, 1, 0, v), KN_OK);
    assert_int_equal(put(ALICE, "locked", "trophy", NULL, "{\"gold\":9}", NULL, 1, 1, NULL),
                     KN_ERR_PERMISSION_DENIED);
    assert_non_null(strstr(msg, "\"locked\"/\"trophy\""));
    assert_non_null(strstr(msg, "write permission 0"));
    assert_int_equal(put(ALICE, "locked", "trophy", NULL, "{\"gold\":9}", v, 1, 1, NULL),
                     KN_ERR_PERMISSION_DENIED);
    assert_int_equal(del(ALICE, "locked", "trophy", NULL, NULL), KN_ERR_PERMISSION_DENIED);
    assert_int_equal(del(ALICE, "locked", "trophy", NULL, v), KN_ERR_PERMISSION_DENIED);
    kn_storage_object o;
    assert_true(get(ALICE, "locked", "trophy", NULL, &o));
    assert_string_equal(o.version, v);

    /* The server may. */
    assert_int_equal(put(SERVER, "locked", "trophy", ALICE, "{\"gold\":2}", v, 1, 0, v2), KN_OK);
    assert_string_not_equal(v2, v);
    assert_int_equal(del(SERVER, "locked", "trophy", ALICE, v2), KN_OK);
    assert_false(get(ALICE, "locked", "trophy", NULL, NULL));
}

static void deletes_follow_ownership_and_versions(void **state)
{
    char v[40];
    assert_int_equal(put(ALICE, "deletes", "a", NULL, "{\"n\":1}", NULL, 2, 1, v), KN_OK);
    assert_int_equal(del(BOB, "deletes", "a", ALICE, NULL), KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "object 0: clients may delete only their own objects");
    assert_int_equal(del(BOB, "deletes", "a", SYSTEM, NULL), KN_ERR_PERMISSION_DENIED);
    assert_true(get(BOB, "deletes", "a", ALICE, NULL));

    assert_int_equal(del(ALICE, "deletes", "a", NULL, "0123456789abcdef0123456789abcdef"),
                     KN_ERR_FAILED_PRECONDITION);
    assert_true(get(ALICE, "deletes", "a", NULL, NULL));
    assert_int_equal(del(ALICE, "deletes", "a", NULL, "*"), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(del(ALICE, "deletes", "a", NULL, v), KN_OK);
    assert_false(get(ALICE, "deletes", "a", NULL, NULL));

    /* Missing: fine without a version, a conflict with one. */
    assert_int_equal(del(ALICE, "deletes", "a", NULL, NULL), KN_OK);
    assert_int_equal(del(ALICE, "deletes", "a", NULL, v), KN_ERR_FAILED_PRECONDITION);
    assert_string_equal(msg, "version check failed for \"deletes\"/\"a\" (owner " ALICE ")");

    /* Unconditional delete, and the server deleting anyone's. */
    assert_int_equal(put(ALICE, "deletes", "b", NULL, "{}", NULL, 1, 1, NULL), KN_OK);
    assert_int_equal(del(ALICE, "deletes", "b", NULL, ""), KN_OK);
    assert_false(get(SERVER, "deletes", "b", ALICE, NULL));
    assert_int_equal(put(BOB, "deletes", "c", NULL, "{}", NULL, 0, 1, NULL), KN_OK);
    assert_int_equal(put(SERVER, "deletes", "c", NULL, "{}", NULL, 0, 0, NULL), KN_OK);
    assert_int_equal(del(SERVER, "deletes", "c", BOB, NULL), KN_OK);
    assert_int_equal(del(SERVER, "deletes", "c", NULL, NULL), KN_OK);
    assert_false(get(SERVER, "deletes", "c", BOB, NULL));
    assert_false(get(SERVER, "deletes", "c", SYSTEM, NULL));
}

static void lists_show_what_the_caller_may_read(void **state)
{
    const char *owners[] = {ALICE, BOB, SYSTEM};
    for (int o = 0; o < 3; o++)
        for (int r = 0; r < 3; r++) {
            char key[8];
            snprintf(key, sizeof key, "r%d", r);
            assert_int_equal(put(SERVER, "listperm", key, owners[o], "{}", NULL, r, 1, NULL),
                             KN_OK);
        }
    char keys[512];
    assert_int_equal(list_page(ALICE, ALICE, "listperm", 100, NULL, keys, sizeof keys, NULL),
                     KN_OK);
    assert_string_equal(keys, "a11c/r1 a11c/r2");
    assert_int_equal(list_page(BOB, ALICE, "listperm", 100, NULL, keys, sizeof keys, NULL), KN_OK);
    assert_string_equal(keys, "a11c/r2");
    assert_int_equal(list_page(ALICE, SYSTEM, "listperm", 100, NULL, keys, sizeof keys, NULL),
                     KN_OK);
    assert_string_equal(keys, "0000/r2");
    assert_int_equal(list_page(SERVER, ALICE, "listperm", 100, NULL, keys, sizeof keys, NULL),
                     KN_OK);
    assert_string_equal(keys, "a11c/r0 a11c/r1 a11c/r2");
    /* Every owner: public objects for a client (its own private ones too are
     * left out), everything for the server; ordered by (owner, key). */
    assert_int_equal(list_page(ALICE, NULL, "listperm", 100, NULL, keys, sizeof keys, NULL), KN_OK);
    assert_string_equal(keys, "0000/r2 a11c/r2 b0b0/r2");
    assert_int_equal(list_page(CAROL, "", "listperm", 100, NULL, keys, sizeof keys, NULL), KN_OK);
    assert_string_equal(keys, "0000/r2 a11c/r2 b0b0/r2");
    assert_int_equal(list_page(SERVER, NULL, "listperm", 100, NULL, keys, sizeof keys, NULL),
                     KN_OK);
    assert_string_equal(keys,
                        "0000/r0 0000/r1 0000/r2 a11c/r0 a11c/r1 a11c/r2 b0b0/r0 b0b0/r1 b0b0/r2");
    /* An empty collection: no objects and no cursor. */
    char *next = (char *)1;
    assert_int_equal(list_page(ALICE, NULL, "nothing-here", 10, NULL, keys, sizeof keys, &next),
                     KN_OK);
    assert_string_equal(keys, "");
    assert_null(next);
}

/* --- versions --------------------------------------------------------------------- */

static void version_star_writes_only_absent_objects(void **state)
{
    char v[40];
    assert_int_equal(put(ALICE, "star", "once", NULL, "{\"n\":1}", "*", 1, 1, v), KN_OK);
    assert_int_equal(put(ALICE, "star", "once", NULL, "{\"n\":2}", "*", 1, 1, NULL),
                     KN_ERR_FAILED_PRECONDITION);
    assert_string_equal(msg, "version check failed for \"star\"/\"once\" (owner " ALICE ")");
    kn_storage_object o;
    assert_true(get(ALICE, "star", "once", NULL, &o));
    assert_string_equal(o.version, v);
    assert_json_equal(got_value, "{\"n\":1}");
}

static void matching_version_succeeds_and_a_stale_one_names_the_object(void **state)
{
    char v1[40], v2[40];
    assert_int_equal(put(ALICE, "saves", "slot1", NULL, "{\"level\":1}", NULL, 1, 1, v1), KN_OK);
    assert_int_equal(put(ALICE, "saves", "slot1", NULL, "{\"level\":2}", v1, 1, 1, v2), KN_OK);
    assert_string_not_equal(v1, v2);
    assert_int_equal(put(ALICE, "saves", "slot1", NULL, "{\"level\":3}", v1, 1, 1, NULL),
                     KN_ERR_FAILED_PRECONDITION);
    assert_string_equal(msg, "version check failed for \"saves\"/\"slot1\" (owner " ALICE ")");
    kn_storage_object o;
    assert_true(get(ALICE, "saves", "slot1", NULL, &o));
    assert_string_equal(o.version, v2);
    assert_json_equal(got_value, "{\"level\":2}");
    /* A version names an existing object: on a missing one it fails. */
    assert_int_equal(put(ALICE, "saves", "slot2", NULL, "{}", v2, 1, 1, NULL),
                     KN_ERR_FAILED_PRECONDITION);
    assert_false(get(ALICE, "saves", "slot2", NULL, NULL));
    /* The server's checks are the same. */
    assert_int_equal(put(SERVER, "saves", "slot1", ALICE, "{}", v1, 1, 1, NULL),
                     KN_ERR_FAILED_PRECONDITION);
}

static void a_failing_object_rolls_back_the_whole_batch(void **state)
{
    char v[40];
    assert_int_equal(put(ALICE, "batch", "existing", NULL, "{\"n\":0}", NULL, 1, 1, v), KN_OK);
    kn_storage_write_op ops[] = {
        {"batch", "first", NULL, "{\"n\":1}", NULL, 1, 1},
        {"batch", "existing", NULL, "{\"n\":2}", "*", 1, 1},
        {"batch", "third", NULL, "{\"n\":3}", "*", 1, 1},
    };
    kn_storage_ack *acks = (kn_storage_ack *)1;
    assert_int_equal(kn_storage_write(db, ALICE, ops, 3, &acks, msg, sizeof msg),
                     KN_ERR_FAILED_PRECONDITION);
    assert_null(acks);
    assert_string_equal(msg, "version check failed for \"batch\"/\"existing\" (owner " ALICE ")");
    assert_false(get(ALICE, "batch", "first", NULL, NULL));
    assert_false(get(ALICE, "batch", "third", NULL, NULL));
    kn_storage_object o;
    assert_true(get(ALICE, "batch", "existing", NULL, &o));
    assert_string_equal(o.version, v);

    /* A read-only object in the batch: nothing written either. */
    assert_int_equal(put(SERVER, "batch", "locked", ALICE, "{}", NULL, 1, 0, NULL), KN_OK);
    ops[1] = (kn_storage_write_op){"batch", "locked", NULL, "{\"n\":2}", NULL, 1, 1};
    assert_int_equal(kn_storage_write(db, ALICE, ops, 3, &acks, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_false(get(ALICE, "batch", "first", NULL, NULL));

    /* The same batch with a good second object writes all three. */
    ops[1] = (kn_storage_write_op){"batch", "existing", NULL, "{\"n\":2}", v, 1, 1};
    assert_int_equal(kn_storage_write(db, ALICE, ops, 3, &acks, msg, sizeof msg), KN_OK);
    kn_free(acks);
    assert_true(get(ALICE, "batch", "first", NULL, NULL));
    assert_true(get(ALICE, "batch", "third", NULL, NULL));

    /* Deletes too: the stale version of the second keeps the first. */
    kn_storage_delete_op dels[] = {
        {{"batch", "first", NULL}, NULL},
        {{"batch", "existing", NULL}, v},
    };
    assert_int_equal(kn_storage_delete(db, ALICE, dels, 2, msg, sizeof msg),
                     KN_ERR_FAILED_PRECONDITION);
    assert_true(get(ALICE, "batch", "first", NULL, NULL));
    assert_true(get(ALICE, "batch", "existing", NULL, NULL));
    dels[1].version = NULL;
    assert_int_equal(kn_storage_delete(db, ALICE, dels, 2, msg, sizeof msg), KN_OK);
    assert_false(get(ALICE, "batch", "first", NULL, NULL));
    assert_false(get(ALICE, "batch", "existing", NULL, NULL));
}

/* Two connections, two threads, released together by a barrier. */
typedef struct racer {
    kn_db *db;
    pthread_barrier_t *start;
    const char *key;
    const char *expected;
    char value[64];
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    kn_storage_write_op op = {"race", r->key, NULL, r->value, r->expected, 1, 1};
    kn_storage_ack *acks = NULL;
    char m[256];
    pthread_barrier_wait(r->start);
    r->rc = kn_storage_write(r->db, ALICE, &op, 1, &acks, m, sizeof m);
    kn_free(acks);
    return NULL;
}

static void run_race(racer *rs)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

static void concurrent_writes_expecting_one_version_have_one_winner(void **state)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    int wins[2] = {0, 0};
    for (int round = 0; round < 40; round++) {
        char v[40], key[16];
        snprintf(key, sizeof key, "k%d", round % 4);
        assert_int_equal(put(ALICE, "race", key, NULL, "{\"round\":-1}", NULL, 1, 1, v), KN_OK);
        racer rs[2] = {{db, &start, key, v, "", -1}, {db2, &start, key, v, "", -1}};
        for (int i = 0; i < 2; i++)
            snprintf(rs[i].value, sizeof rs[i].value, "{\"round\":%d,\"writer\":%d}", round, i);
        run_race(rs);
        int ok = (rs[0].rc == KN_OK) + (rs[1].rc == KN_OK);
        assert_int_equal(ok, 1);
        int winner = rs[0].rc == KN_OK ? 0 : 1;
        assert_int_equal(rs[1 - winner].rc, KN_ERR_FAILED_PRECONDITION);
        wins[winner]++;
        assert_true(get(ALICE, "race", key, NULL, NULL));
        assert_json_equal(got_value, rs[winner].value);

        /* "*" on an object neither sees: one creates it. */
        char fresh[16];
        snprintf(fresh, sizeof fresh, "new%d", round);
        racer cs[2] = {{db, &start, fresh, "*", "", -1}, {db2, &start, fresh, "*", "", -1}};
        for (int i = 0; i < 2; i++)
            snprintf(cs[i].value, sizeof cs[i].value, "{\"creator\":%d}", i);
        run_race(cs);
        assert_int_equal((cs[0].rc == KN_OK) + (cs[1].rc == KN_OK), 1);
        assert_true(cs[0].rc == KN_ERR_FAILED_PRECONDITION ||
                    cs[1].rc == KN_ERR_FAILED_PRECONDITION);
    }
    pthread_barrier_destroy(&start);
    print_message("race winners: connection 1 %d, connection 2 %d\n", wins[0], wins[1]);
}

/* --- pagination --------------------------------------------------------------------- */

typedef struct tracked {
    char owner[40];
    char key[24];
    bool deleted;     /* deleted during the walk: may or may not be seen */
    bool gone_unseen; /* deleted before it was seen: must never be */
    int seen;
} tracked;

static int tracked_find(tracked *t, int n, const char *owner, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].owner, owner) && !strcmp(t[i].key, key)) return i;
    return -1;
}

/* Walks a listing `limit` at a time. Between pages it inserts objects (one
 * just ahead of the cursor, one at an odd key that may fall either side),
 * deletes one object not yet seen and one already seen, and adds a private
 * object a client must not see. Every object present from some point on
 * (from the start, or inserted ahead of the cursor) must be seen exactly
 * once, and all in order. */
static void walk_while_changing(const char *caller, const char *user_id, const char *collection,
                                int limit)
{
    const char *owners[] = {SYSTEM, ALICE, BOB};
    int n_owners = user_id ? 1 : 3;
    /* The server, and an owner listing their own, also see read == 1. */
    bool sees_private = !caller || (user_id && !strcmp(caller, user_id));
    if (user_id) owners[0] = user_id;
    tracked t[96];
    int n = 0;
    for (int o = 0; o < n_owners; o++)
        for (int k = 0; k < 20; k += 2) {
            snprintf(t[n].owner, sizeof t[n].owner, "%s", owners[o]);
            snprintf(t[n].key, sizeof t[n].key, "k%02d", k);
            t[n].deleted = t[n].gone_unseen = false;
            t[n].seen = 0;
            assert_int_equal(put(SERVER, collection, t[n].key, t[n].owner, "{}", NULL, 2, 1, NULL),
                             KN_OK);
            n++;
        }
    const int n_initial = n;
    char *cursor = NULL, last_owner[40] = "", last_key[KN_STORAGE_NAME_MAX + 1] = "";
    int pages = 0;
    for (;;) {
        kn_storage_object *objs;
        size_t got;
        char *next;
        assert_int_equal(kn_storage_list(db, caller, user_id, collection, limit, cursor, &objs,
                                         &got, &next, msg, sizeof msg),
                         KN_OK);
        kn_free(cursor);
        cursor = next;
        pages++;
        assert_true(got <= (size_t)limit);
        if (next) assert_int_equal(got, limit);
        for (size_t i = 0; i < got; i++) {
            /* Strictly increasing (owner, key): in order and never twice. */
            int c = strcmp(objs[i].user_id, last_owner);
            assert_true(c > 0 || (c == 0 && strcmp(objs[i].key, last_key) > 0));
            snprintf(last_owner, sizeof last_owner, "%s", objs[i].user_id);
            snprintf(last_key, sizeof last_key, "%s", objs[i].key);
            if (!sees_private) assert_int_equal(objs[i].key[0], 'k');
            int at = tracked_find(t, n, objs[i].user_id, objs[i].key);
            if (at >= 0) t[at].seen++;
        }
        kn_free(objs);
        if (!cursor) break;

        /* Others change the collection before the next page. */
        assert_true(n < 96);
        tracked *ahead = &t[n++];
        snprintf(ahead->owner, sizeof ahead->owner, "%s", last_owner);
        snprintf(ahead->key, sizeof ahead->key, "%.20s+", last_key); /* sorts right after it */
        ahead->deleted = ahead->gone_unseen = false;
        ahead->seen = 0;
        assert_int_equal(put(SERVER, collection, ahead->key, ahead->owner, "{}", NULL, 2, 1, NULL),
                         KN_OK);
        const char *owner = owners[pages % n_owners];
        char key[16];
        snprintf(key, sizeof key, "k%02d", (2 * pages + 1) % 20);
        assert_int_equal(put(SERVER, collection, key, owner, "{}", NULL, 2, 1, NULL), KN_OK);
        snprintf(key, sizeof key, "p%02d", pages);
        assert_int_equal(put(SERVER, collection, key, owner, "{}", NULL, 1, 1, NULL), KN_OK);
        for (int i = n_initial - 1; i >= 0; i--) /* the last one not yet seen */
            if (!t[i].seen && !t[i].deleted) {
                t[i].deleted = t[i].gone_unseen = true;
                assert_int_equal(del(SERVER, collection, t[i].key, t[i].owner, NULL), KN_OK);
                break;
            }
        for (int i = 0; i < n_initial; i++) /* one already seen */
            if (t[i].seen && !t[i].deleted) {
                t[i].deleted = true;
                assert_int_equal(del(SERVER, collection, t[i].key, t[i].owner, NULL), KN_OK);
                break;
            }
    }
    assert_true(pages >= 4);
    int kept = 0, gone_unseen = 0, inserted_seen = 0;
    for (int i = 0; i < n; i++) {
        gone_unseen += t[i].gone_unseen;
        inserted_seen += i >= n_initial && t[i].seen;
        if (!t[i].deleted) {
            assert_int_equal(t[i].seen, 1);
            kept++;
        }
        assert_true(t[i].seen <= 1);
        if (t[i].gone_unseen) assert_int_equal(t[i].seen, 0);
    }
    /* The walk did exercise every case. */
    assert_true(kept >= 3);
    assert_true(gone_unseen >= 1);
    assert_true(inserted_seen >= 3);
}

static void list_pages_see_every_lasting_object_once_while_others_write(void **state)
{
    walk_while_changing(CAROL, NULL, "pages-public", 4);
    walk_while_changing(SERVER, NULL, "pages-all", 5);
    walk_while_changing(ALICE, ALICE, "pages-own", 3);
    walk_while_changing(BOB, ALICE, "pages-other", 2);
}

static void garbled_or_foreign_cursors_are_refused(void **state)
{
    for (int k = 0; k < 5; k++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", k);
        assert_int_equal(put(SERVER, "cursors", key, ALICE, "{}", NULL, 2, 1, NULL), KN_OK);
    }
    char *next, keys[256];
    assert_int_equal(list_page(BOB, NULL, "cursors", 2, NULL, keys, sizeof keys, &next), KN_OK);
    assert_non_null(next);
    assert_true(strlen(next) > 10);
    char *owner_next;
    assert_int_equal(list_page(BOB, ALICE, "cursors", 2, NULL, keys, sizeof keys, &owner_next),
                     KN_OK);
    assert_non_null(owner_next);
    assert_int_equal(list_page(BOB, ALICE, "cursors", 2, owner_next, keys, sizeof keys, NULL),
                     KN_OK);
    assert_string_equal(keys, "a11c/k2 a11c/k3");

    const char *garbage[] = {"!!!!", "not a cursor", "AAAA", "A", "=="};
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
        assert_int_equal(list_page(BOB, NULL, "cursors", 2, garbage[i], NULL, 0, NULL),
                         KN_ERR_INVALID_ARGUMENT);
        assert_string_equal(msg, "cursor is malformed");
    }
    /* Cut so that the base64 cannot be complete (length 1 mod 4). */
    char cut[512];
    snprintf(cut, sizeof cut, "%s", next);
    size_t len = strlen(cut);
    cut[len - (len % 4 + 3) % 4] = '\0';
    assert_int_equal(strlen(cut) % 4, 1);
    assert_int_equal(list_page(BOB, NULL, "cursors", 2, cut, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    /* Valid base64, wrong contents. */
    unsigned char bin[64] = {0};
    char text[128];
    bin[0] = 2; /* unknown format */
    bin[18] = 7;
    memcpy(bin + 19, "cursorsk1", 9);
    kn_crypto_base64_encode(text, sizeof text, bin, 28, KN_CRYPTO_BASE64URL);
    assert_int_equal(list_page(BOB, NULL, "cursors", 2, text, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    bin[0] = 1;
    kn_crypto_base64_encode(text, sizeof text, bin, 28, KN_CRYPTO_BASE64URL);
    assert_int_equal(list_page(BOB, NULL, "cursors", 2, text, keys, sizeof keys, NULL), KN_OK);
    assert_string_equal(keys, "a11c/k0 a11c/k1"); /* the nil owner sorts first */
    bin[18] = 200;                                /* collection longer than the cursor */
    kn_crypto_base64_encode(text, sizeof text, bin, 28, KN_CRYPTO_BASE64URL);
    assert_int_equal(list_page(BOB, NULL, "cursors", 2, text, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    bin[18] = 7;
    bin[27] = '\n'; /* a control character in the key */
    kn_crypto_base64_encode(text, sizeof text, bin, 28, KN_CRYPTO_BASE64URL);
    assert_int_equal(list_page(BOB, NULL, "cursors", 2, text, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "cursor is malformed");

    /* A good cursor for another listing. */
    assert_int_equal(list_page(BOB, NULL, "cursors-other", 2, next, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "another listing"));
    assert_int_equal(list_page(BOB, ALICE, "cursors", 2, next, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(list_page(BOB, NULL, "cursors", 2, owner_next, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(list_page(BOB, BOB, "cursors", 2, owner_next, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    kn_free(next);
    kn_free(owner_next);
}

/* --- validation ------------------------------------------------------------------------- */

/* Writes a good object 0 and `bad` as object 1: refused, naming object 1,
 * and object 0 is not written. */
static void assert_refused(kn_storage_write_op bad, const char *expect)
{
    kn_storage_write_op ops[2] = {{"valid", "good", NULL, "{}", NULL, 1, 1}, bad};
    kn_storage_ack *acks = (kn_storage_ack *)1;
    int rc = kn_storage_write(db, ALICE, ops, 2, &acks, msg, sizeof msg);
    if (rc != KN_ERR_INVALID_ARGUMENT || !strstr(msg, expect))
        fail_msg("expected INVALID_ARGUMENT \"%s\", got %s \"%s\"", expect, kn_err_name(rc), msg);
    assert_null(acks);
    assert_false(get(ALICE, "valid", "good", NULL, NULL));
}

static void invalid_objects_are_refused_naming_their_index(void **state)
{
    kn_storage_write_op ok = {"valid", "k", NULL, "{}", NULL, 1, 1}, op;
    const char *values[][2] = {
        {"{", "object 1: value is not valid JSON"},
        {"{\"a\":1} x", "object 1: value is not valid JSON"},
        {"", "object 1: value is not valid JSON"},
        {"[1,2]", "object 1: value must be a JSON object, not an array"},
        {"\"text\"", "object 1: value must be a JSON object, not a string"},
        {"42", "object 1: value must be a JSON object, not a number"},
        {"null", "object 1: value must be a JSON object, not null"},
        {"{\"a\":1,\"a\":2}", "object 1: value is not valid JSON: duplicate object key"},
        {"{\"a\":\"\\u0000\"}", "object 1: value is not valid JSON"},
        {"{\"a\":\"\xff\"}", "object 1: value is not valid JSON"},
    };
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        op = ok;
        op.value = values[i][0];
        assert_refused(op, values[i][1]);
    }
    op = ok;
    op.value = NULL;
    assert_refused(op, "object 1: value is missing");

    /* Size: the limit itself is fine, one byte more is not. */
    static char big[KN_STORAGE_VALUE_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    memcpy(big, "{\"p\":\"", 6);
    memcpy(big + KN_STORAGE_VALUE_MAX - 2, "\"}", 3);
    assert_int_equal(strlen(big), KN_STORAGE_VALUE_MAX);
    assert_int_equal(put(ALICE, "valid", "big", NULL, big, NULL, 1, 1, NULL), KN_OK);
    assert_true(get(ALICE, "valid", "big", NULL, NULL));
    memcpy(big + KN_STORAGE_VALUE_MAX - 2, "x\"}", 4);
    op = ok;
    op.value = big;
    assert_refused(op, "object 1: value is 65537 bytes; the limit is 65536");

    char long_name[KN_STORAGE_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    struct {
        const char *collection, *key;
        const char *expect;
    } names[] = {
        {NULL, "k", "object 1: collection is missing"},
        {"", "k", "object 1: collection is missing"},
        {"valid", NULL, "object 1: key is missing"},
        {"valid", "", "object 1: key is missing"},
        {long_name, "k", "object 1: collection must be 1-128 bytes"},
        {"valid", long_name, "object 1: key must be 1-128 bytes"},
        {"valid", "line\nbreak", "object 1: key must be 1-128 bytes of UTF-8 without control"},
        {"bad\xc3(utf8", "k", "object 1: collection must be 1-128 bytes of UTF-8"},
        {"valid", "\xed\xa0\x80", "object 1: key must be"}, /* a UTF-16 surrogate */
        {"valid", "\xc0\xaf", "object 1: key must be"},     /* overlong '/' */
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        op = ok;
        op.collection = names[i].collection;
        op.key = names[i].key;
        assert_refused(op, names[i].expect);
    }
    assert_int_equal(put(ALICE, "valid", long_name + 1, NULL, "{}", NULL, 1, 1, NULL), KN_OK);
    assert_int_equal(
        put(ALICE, "valid", "caf\xc3\xa9 \xf0\x9f\x8e\xae", NULL, "{}", NULL, 1, 1, NULL), KN_OK);

    op = ok;
    op.permission_read = 3;
    assert_refused(op,
                   "object 1: read permission must be 0 (none), 1 (owner) or 2 (public), not 3");
    op.permission_read = -1;
    assert_refused(op, "object 1: read permission");
    op = ok;
    op.permission_write = 2;
    assert_refused(op, "object 1: write permission must be 0 (none) or 1 (owner), not 2");
    op = ok;
    op.user_id = "not-a-uuid";
    assert_refused(op, "object 1: user_id is not a UUID");
    op = ok;
    op.version = "a version with spaces";
    assert_refused(op, "object 1: version must be");
    char long_version[KN_STORAGE_VERSION_MAX + 2];
    memset(long_version, 'f', sizeof long_version - 1);
    long_version[sizeof long_version - 1] = '\0';
    op.version = long_version;
    assert_refused(op, "object 1: version must be");

    /* Batches, callers, reads, deletes and lists. */
    static kn_storage_write_op many[KN_STORAGE_BATCH_MAX + 1];
    for (int i = 0; i <= KN_STORAGE_BATCH_MAX; i++)
        many[i] = ok;
    kn_storage_ack *acks;
    assert_int_equal(
        kn_storage_write(db, ALICE, many, KN_STORAGE_BATCH_MAX + 1, &acks, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "at most 100 objects per write, not 101");
    assert_int_equal(kn_storage_write(db, ALICE, many, 0, &acks, msg, sizeof msg), KN_OK);
    assert_null(acks);
    assert_int_equal(kn_storage_write(db, "nope", &ok, 1, &acks, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "caller must be a user id");
    assert_int_equal(kn_storage_write(db, SYSTEM, &ok, 1, &acks, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);

    kn_storage_id ids[2] = {{"valid", "k", NULL}, {"valid", "k", "0000"}};
    kn_storage_object *objs;
    size_t n;
    assert_int_equal(kn_storage_read(db, ALICE, ids, 2, &objs, &n, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "object 1: user_id is not a UUID");
    ids[1] = (kn_storage_id){"valid", NULL, NULL};
    assert_int_equal(kn_storage_read(db, ALICE, ids, 2, &objs, &n, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "object 1: key is missing");
    assert_int_equal(
        kn_storage_read(db, ALICE, ids, KN_STORAGE_BATCH_MAX + 1, &objs, &n, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    kn_storage_delete_op dels[2] = {{{"valid", "k", NULL}, NULL}, {{"", "k", NULL}, NULL}};
    assert_int_equal(kn_storage_delete(db, ALICE, dels, 2, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "object 1: collection is missing");

    assert_int_equal(list_page(ALICE, NULL, "valid", 0, NULL, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "limit must be 1-100, not 0");
    assert_int_equal(list_page(ALICE, NULL, "valid", 101, NULL, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(list_page(ALICE, NULL, "", 10, NULL, NULL, 0, NULL), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "collection is missing");
    assert_int_equal(list_page(ALICE, "bob", "valid", 10, NULL, NULL, 0, NULL),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "user_id is not a UUID");
}

/* --- owners ------------------------------------------------------------------------------ */

static void objects_need_an_existing_owner_and_go_with_their_user(void **state)
{
    assert_int_equal(
        put(SERVER, "owners", "x", "0ddba110-0000-4000-8000-000000000000", "{}", NULL, 1, 1, NULL),
        KN_ERR_NOT_FOUND);
    assert_string_equal(msg, "object 0: owner 0ddba110-0000-4000-8000-000000000000 does not exist");
    assert_int_equal(put(DAVE, "owners", "x", NULL, "{}", NULL, 2, 1, NULL), KN_OK);
    assert_int_equal(put(SERVER, "owners", "y", DAVE, "{}", NULL, 0, 0, NULL), KN_OK);
    assert_int_equal(put(SERVER, "owners", "sys", NULL, "{}", NULL, 0, 0, NULL), KN_OK);
    pgtest_sql(db, "DELETE FROM users WHERE id = '%s'", DAVE);
    assert_false(get(SERVER, "owners", "x", DAVE, NULL));
    assert_false(get(SERVER, "owners", "y", DAVE, NULL));
    assert_true(get(SERVER, "owners", "sys", NULL, NULL));
    /* A client whose account is gone cannot write any more. */
    assert_int_equal(put(DAVE, "owners", "z", NULL, "{}", NULL, 1, 1, NULL), KN_ERR_NOT_FOUND);
}

/* --- allocation failures ------------------------------------------------------------------ */

static int write_then_delete(void *arg)
{
    kn_storage_write_op ops[] = {
        {"oom", "a", ALICE, "{\"n\":1}", NULL, 2, 1},
        {"oom", "b", ALICE, "{\"n\":2}", NULL, 2, 1},
        {"oom", "c", NULL, "{\"n\":3}", NULL, 2, 1},
    };
    kn_storage_ack *acks = NULL;
    char m[256];
    int rc = kn_storage_write(db, SERVER, ops, 3, &acks, m, sizeof m);
    kn_free(acks);
    if (rc) return rc;
    kn_storage_delete_op dels[] = {{{"oom", "c", NULL}, NULL}};
    return kn_storage_delete(db, SERVER, dels, 1, m, sizeof m);
}

static int read_some(void *arg)
{
    kn_storage_id ids[] = {{"oom", "a", ALICE}, {"oom", "b", ALICE}, {"oom", "zz", ALICE}};
    kn_storage_object *objs = NULL;
    size_t n = 0;
    char m[256];
    int rc = kn_storage_read(db, BOB, ids, 3, &objs, &n, m, sizeof m);
    if (rc == KN_OK && n != 2) rc = KN_ERR_INTERNAL;
    kn_free(objs);
    return rc;
}

static int list_two_pages(void *arg)
{
    kn_storage_object *objs = NULL;
    size_t n = 0;
    char *next = NULL, *last = NULL, m[256];
    int rc = kn_storage_list(db, BOB, NULL, "oom", 1, NULL, &objs, &n, &next, m, sizeof m);
    kn_free(objs);
    objs = NULL;
    if (rc == KN_OK && !next) rc = KN_ERR_INTERNAL;
    if (rc == KN_OK)
        rc = kn_storage_list(db, BOB, NULL, "oom", 1, next, &objs, &n, &last, m, sizeof m);
    kn_free(objs);
    kn_free(next);
    kn_free(last);
    return rc;
}

static void storage_calls_survive_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(write_then_delete, NULL) >= 3);
    assert_true(failalloc_sweep(read_some, NULL) >= 4);
    assert_true(failalloc_sweep(list_two_pages, NULL) >= 2);
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(written_object_reads_back_with_its_version),
        cmocka_unit_test(acks_follow_the_order_of_the_batch),
        cmocka_unit_test(reads_follow_ownership_and_read_permission),
        cmocka_unit_test(clients_write_only_their_own_objects),
        cmocka_unit_test(read_only_objects_refuse_client_writes_and_deletes),
        cmocka_unit_test(deletes_follow_ownership_and_versions),
        cmocka_unit_test(lists_show_what_the_caller_may_read),
        cmocka_unit_test(version_star_writes_only_absent_objects),
        cmocka_unit_test(matching_version_succeeds_and_a_stale_one_names_the_object),
        cmocka_unit_test(a_failing_object_rolls_back_the_whole_batch),
        cmocka_unit_test(concurrent_writes_expecting_one_version_have_one_winner),
        cmocka_unit_test(list_pages_see_every_lasting_object_once_while_others_write),
        cmocka_unit_test(garbled_or_foreign_cursors_are_refused),
        cmocka_unit_test(invalid_objects_are_refused_naming_their_index),
        cmocka_unit_test(objects_need_an_existing_owner_and_go_with_their_user),
        cmocka_unit_test(storage_calls_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
