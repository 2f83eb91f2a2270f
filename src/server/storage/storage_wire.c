/* storage_wire: the storage routes (kn_storage_wire.h). Replies borrow the
 * service's strings until they are encoded. */
#include "kn_storage_wire.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_storage.h"

#include <stdio.h>

static char *text(const char *s)
{
    return (char *)(s ? s : "");
}

/* StorageObjects (a read) or StorageObjectList (a list, with its cursor). */
static int reply_objects(kn_req *r, kn_storage_object *objs, size_t n, const char *cursor,
                         bool list)
{
    Kaos__V1__StorageObject **ptrs;
    int rc =
        kn_entity_to_proto_list(&kn_storage_object_entity, objs, sizeof *objs, n, (void ***)&ptrs);
    if (rc) return rc;
    kn_envelope env = KN_ENVELOPE_INIT;
    Kaos__V1__StorageObjects read = KAOS__V1__STORAGE_OBJECTS__INIT;
    Kaos__V1__StorageObjectList page = KAOS__V1__STORAGE_OBJECT_LIST__INIT;
    if (list) {
        page.n_objects = n;
        page.objects = ptrs;
        page.cursor = text(cursor);
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_OBJECT_LIST;
        env.storage_object_list = &page;
    } else {
        read.n_objects = n;
        read.objects = ptrs;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_OBJECTS;
        env.storage_objects = &read;
    }
    rc = kn_req_reply(r, &env);
    kn_free(ptrs);
    return rc;
}

/* StorageWrite: the caller's own objects; an absent permission is 1 (owner). */
int kn_storage_wire_write(kn_req *req, char *msg, size_t cap)
{
    Kaos__V1__StorageWrite *r = kn_req_msg(req)->storage_write;
    size_t n = r->n_objects;
    kn_storage_write_op *ops = n ? kn_calloc(n, sizeof *ops) : NULL;
    if (n && !ops) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const Kaos__V1__WriteStorageObject *o = r->objects[i];
        ops[i] = (kn_storage_write_op){
            .collection = o->collection,
            .key = o->key,
            .user_id = NULL, /* the caller's own: a client names no other owner */
            .value = o->value && *o->value ? o->value : NULL, /* "" = missing */
            .version = o->version,
            .permission_read = o->read_case == KAOS__V1__WRITE_STORAGE_OBJECT__READ_PERMISSION_READ
                                   ? o->permission_read
                                   : KN_STORAGE_READ_OWNER,
            .permission_write =
                o->write_case == KAOS__V1__WRITE_STORAGE_OBJECT__WRITE_PERMISSION_WRITE
                    ? o->permission_write
                    : KN_STORAGE_WRITE_OWNER,
        };
    }
    kn_storage_ack *acks = NULL;
    int rc = kn_storage_write(kn_req_worker(req)->db, kn_req_caller(req)->user_id, ops, n, &acks,
                              msg, cap);
    kn_free(ops);
    if (rc) return rc;
    Kaos__V1__StorageAck **ptrs;
    rc = kn_entity_to_proto_list(&kn_storage_ack_entity, acks, sizeof *acks, n, (void ***)&ptrs);
    if (rc) goto done;
    Kaos__V1__StorageAcks out = KAOS__V1__STORAGE_ACKS__INIT;
    out.n_acks = n;
    out.acks = ptrs;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_ACKS;
    env.storage_acks = &out;
    rc = kn_req_reply(req, &env);
    kn_free(ptrs);
done:
    kn_free(acks);
    return rc;
}

/* StorageRead and StorageDelete name objects the same way. */
static kn_storage_id storage_id(const Kaos__V1__StorageObjectId *o)
{
    return (kn_storage_id){o->collection, o->key, o->user_id};
}

int kn_storage_wire_read(kn_req *req, char *msg, size_t cap)
{
    Kaos__V1__StorageRead *r = kn_req_msg(req)->storage_read;
    size_t n = r->n_object_ids, n_out = 0;
    kn_storage_id *ids = n ? kn_calloc(n, sizeof *ids) : NULL;
    if (n && !ids) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        ids[i] = storage_id(r->object_ids[i]);
    kn_storage_object *objs = NULL;
    int rc = kn_storage_read(kn_req_worker(req)->db, kn_req_caller(req)->user_id, ids, n, &objs,
                             &n_out, msg, cap);
    kn_free(ids);
    if (rc == KN_OK) rc = reply_objects(req, objs, n_out, NULL, false);
    kn_free(objs);
    return rc;
}

int kn_storage_wire_delete(kn_req *req, char *msg, size_t cap)
{
    Kaos__V1__StorageDelete *r = kn_req_msg(req)->storage_delete;
    size_t n = r->n_object_ids;
    kn_storage_delete_op *ops = n ? kn_calloc(n, sizeof *ops) : NULL;
    if (n && !ops) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        ops[i].id = storage_id(r->object_ids[i]);
        ops[i].version = r->object_ids[i]->version;
    }
    int rc =
        kn_storage_delete(kn_req_worker(req)->db, kn_req_caller(req)->user_id, ops, n, msg, cap);
    kn_free(ops);
    return rc ? rc : kn_req_ack(req);
}

int kn_storage_wire_list(kn_req *req, char *msg, size_t cap)
{
    Kaos__V1__StorageList *r = kn_req_msg(req)->storage_list;
    if (r->limit > KN_STORAGE_LIST_MAX) { /* the service takes an int; say it as it would */
        snprintf(msg, cap, "limit must be 1-%d, not %u", KN_STORAGE_LIST_MAX, r->limit);
        return KN_ERR_INVALID_ARGUMENT;
    }
    int limit = (int)r->limit;
    kn_storage_object *objs = NULL;
    size_t n = 0;
    char *cursor = NULL;
    int rc = kn_storage_list(kn_req_worker(req)->db, kn_req_caller(req)->user_id, r->user_id,
                             r->collection, limit, r->cursor, &objs, &n, &cursor, msg, cap);
    if (rc == KN_OK) rc = reply_objects(req, objs, n, cursor, true);
    kn_free(objs);
    kn_free(cursor);
    return rc;
}
