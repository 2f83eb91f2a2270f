/* console_storage: browse a collection (optionally one owner's), view an
 * object, write it with a version check, delete it — as the server (caller
 * NULL), through the storage service's functions. */
#include "console_internal.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The collections there are, for the page's picker (no service lists them). */
static const kn_db_stmt collections = {
    "console_storage_collections",
    "SELECT collection, count(*)::text FROM storage GROUP BY 1 ORDER BY 1 LIMIT 200", 0};

static int storage_collections(kn_console_call *c)
{
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(c->db, &collections, NULL, &rows);
    if (rc) return kn_db_fail(rc, c->msg, sizeof c->msg);
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < kn_db_rows_count(rows); i++) {
        kn_json *o = kn_json_object();
        kn_console__set_text(o, "collection", kn_db_rows_get(rows, i, 0));
        kn_json_object_set_new(o, "count",
                               kn_json_integer(strtoll(kn_db_rows_get(rows, i, 1), NULL, 10)));
        kn_json_array_append_new(arr, o);
    }
    kn_db_rows_free(rows);
    c->result = kn_console__list("collections", arr, NULL);
    return KN_OK;
}

static int storage_list(kn_console_call *c)
{
    const char *coll, *owner = kn_console__arg(c, "user_id"), *cur = kn_console__arg(c, "cursor");
    int64_t limit;
    int rc;
    if ((rc = kn_console__need(c, "collection", &coll)) ||
        (rc = kn_console__int_arg(c, "limit", 25, 1, KN_STORAGE_LIST_MAX, &limit)))
        return rc;
    kn_storage_object *objs = NULL;
    size_t n = 0;
    char *next = NULL;
    if ((rc = kn_storage_list(c->db, NULL, owner, coll, (int)limit, cur, &objs, &n, &next, c->msg,
                              sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++)
        kn_json_array_append_new(arr, kn_console__entity(&kn_storage_object_entity, &objs[i]));
    c->result = kn_console__list("objects", arr, next);
    kn_free(objs);
    kn_free(next);
    return KN_OK;
}

static int object_id(kn_console_call *c, kn_storage_id *id)
{
    int rc;
    if ((rc = kn_console__need(c, "collection", &id->collection)) ||
        (rc = kn_console__need(c, "key", &id->key)) ||
        (rc = kn_console__need(c, "user_id", &id->user_id)))
        return rc;
    snprintf(c->target, sizeof c->target, "%.100s/%.100s owner %.36s", id->collection, id->key,
             id->user_id);
    return KN_OK;
}

static int storage_get(kn_console_call *c)
{
    kn_storage_id id;
    int rc = object_id(c, &id);
    if (rc) return rc;
    kn_storage_object *objs = NULL;
    size_t n = 0;
    if ((rc = kn_storage_read(c->db, NULL, &id, 1, &objs, &n, c->msg, sizeof c->msg))) return rc;
    if (!n) {
        kn_free(objs);
        snprintf(c->msg, sizeof c->msg, "no such object");
        return KN_ERR_NOT_FOUND;
    }
    c->result = kn_console__entity(&kn_storage_object_entity, &objs[0]);
    kn_free(objs);
    return KN_OK;
}

/* value: JSON text of an object; version: the one read (a changed object
 * fails the check, FAILED_PRECONDITION), "*" to create only. */
static int storage_write(kn_console_call *c)
{
    kn_storage_id id;
    const char *value;
    int64_t pr, pw;
    int rc;
    if ((rc = object_id(c, &id)) || (rc = kn_console__need(c, "value", &value)) ||
        (rc = kn_console__int_arg(c, "permission_read", 1, 0, 2, &pr)) ||
        (rc = kn_console__int_arg(c, "permission_write", 1, 0, 1, &pw)))
        return rc;
    kn_storage_write_op op = {.collection = id.collection,
                              .key = id.key,
                              .user_id = id.user_id,
                              .value = value,
                              .version = kn_console__arg(c, "version"),
                              .permission_read = (int)pr,
                              .permission_write = (int)pw};
    kn_storage_ack *acks = NULL;
    if ((rc = kn_storage_write(c->db, NULL, &op, 1, &acks, c->msg, sizeof c->msg))) return rc;
    c->result = kn_json_object();
    kn_console__set_text(c->result, "version", acks[0].version);
    kn_free(acks);
    return KN_OK;
}

static int storage_delete(kn_console_call *c)
{
    kn_storage_delete_op op = {.version = kn_console__arg(c, "version")};
    int rc = object_id(c, &op.id);
    if (rc) return rc;
    return kn_storage_delete(c->db, NULL, &op, 1, c->msg, sizeof c->msg);
}

const kn_console_route kn_console__storage_routes[] = {
    {"GET", "storage/collections", KN_CONSOLE_READ_ONLY, storage_collections},
    {"GET", "storage", KN_CONSOLE_READ_ONLY, storage_list},
    {"GET", "storage/object", KN_CONSOLE_READ_ONLY, storage_get},
    {"POST", "storage/write", KN_CONSOLE_DEVELOPER, storage_write},
    {"POST", "storage/delete", KN_CONSOLE_DEVELOPER, storage_delete},
    {0},
};
