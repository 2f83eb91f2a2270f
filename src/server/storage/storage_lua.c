/* storage_lua: the storage functions of `kaos` (docs/lua-api.md) — read,
 * write, delete and list storage objects from server code; registered with
 * the runtime as a binding (kn_storage_lua.h), reaching Lua only through
 * kn_lua_bind.h.
 *
 * They call the storage service (kn_storage_*) with the calling worker's
 * database connection (kn_lua_db) and caller NULL: server code acts with full rights,
 * as in Nakama, so an RPC that passes a client's request through must check
 * who is asking itself. A user_id of nil or "" names the system's objects
 * (for the list functions: every owner's objects). Values cross as Lua
 * tables (JSON objects); a write also takes JSON text.
 *
 * Errors: a refusal of the service, or an element of a batch that is not
 * what the service takes, is raised as error({code = N, message = "..."})
 * with N the wire code, as the account functions do (account_lua.c); a
 * wrong type of a plain argument is an ordinary Lua error (a script bug).
 * "object N" in messages counts from 0, as on the wire.
 *
 * Memory: service results are kn_malloc'd and kept in a holder userdata
 * with a __gc while tables are built from them, so a Lua error half-way
 * never leaks them. Strings handed to the service are Lua strings anchored
 * on the stack (Lua never moves a string), so nothing else is copied. */
#include "kn_storage_lua.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_storage.h"

#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define MSG_CAP 256

/* --- holding service results ------------------------------------------------- */

typedef struct holder {
    kn_storage_ack *acks;
    kn_storage_object *objs;
    char *cursor;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_free(h->acks);
    kn_free(h->objs);
    kn_free(h->cursor);
    memset(h, 0, sizeof *h);
    return 0;
}

static holder *new_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(holder), "kaos.storage_holder", holder_gc);
}

/* --- results as tables ---------------------------------------------------------- */

/* An object, with the field names of the wire's StorageObject. */
static void push_object(lua_State *L, const kn_storage_object *o)
{
    kn_lua_push_entity(L, &kn_storage_object_entity, o);
}

static void push_objects(lua_State *L, const kn_storage_object *objs, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_object(L, &objs[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* --- arguments ----------------------------------------------------------------- */

/* An int for the service; values past the int range stay out of range. */
static int clamp_int(lua_Integer v)
{
    return v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
}

/* The service takes C strings: a Lua string with a NUL byte inside would
 * silently name another object (or store a shorter value), so it is refused. */
static const char *whole(lua_State *L, int idx, size_t index, const char *what)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (s && strlen(s) != len)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "object %zu: %s contains a NUL byte", index,
                            what);
    return s;
}

/* Plain argument `arg`: a string (an ordinary Lua error otherwise), or NULL
 * when optional and nil or absent. */
static const char *arg_string(lua_State *L, int arg, bool optional, const char *what)
{
    if (optional && lua_isnoneornil(L, arg)) return NULL;
    luaL_checkstring(L, arg);
    return whole(L, arg, 0, what);
}

/* The JSON text of the value at idx: a table is encoded (an empty table is
 * {}) and the text kept in anchor[slot], which keeps it alive; a string is
 * taken as JSON text; nil is missing (the service says so). */
static const char *value_text(lua_State *L, int idx, size_t index, int anchor, int slot)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNIL || t == LUA_TNONE) return NULL;
    if (t == LUA_TSTRING) return whole(L, idx, index, "value");
    if (t != LUA_TTABLE)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT,
                            "object %zu: value must be a table or JSON text, not a %s", index,
                            lua_typename(L, t));
    const char *why;
    int rc = kn_lua_push_json(L, idx, NULL, &why);
    if (rc == KN_ERR_NOMEM) kn_lua_raise_coded(L, rc, "out of memory");
    if (rc) kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "object %zu: value: %s", index, why);
    lua_pushvalue(L, -1);
    lua_rawseti(L, anchor, slot);
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the text, anchored */
    return s;
}

/* Field `name` of the table at idx: a string, or NULL when absent. The
 * string stays alive as long as the table does. */
static const char *field_string(lua_State *L, int idx, const char *name, size_t index)
{
    int t = lua_getfield(L, idx, name);
    const char *s = t == LUA_TSTRING ? whole(L, -1, index, name) : NULL;
    lua_pop(L, 1);
    if (t != LUA_TNIL && t != LUA_TSTRING)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "object %zu: %s must be a string, not a %s",
                            index, name, lua_typename(L, t));
    return s;
}

/* The collection, key and user_id fields of the batch element at idx,
 * checked in that order (the first bad one is the error). */
static kn_storage_id field_id(lua_State *L, int idx, size_t index)
{
    kn_storage_id id;
    id.collection = field_string(L, idx, "collection", index);
    id.key = field_string(L, idx, "key", index);
    id.user_id = field_string(L, idx, "user_id", index);
    return id;
}

static int field_int(lua_State *L, int idx, const char *name, size_t index, int absent)
{
    int t = lua_getfield(L, idx, name);
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (t == LUA_TNIL) return absent;
    if (t != LUA_TNUMBER || !isnum)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "object %zu: %s must be an integer", index,
                            name);
    return clamp_int(v);
}

/* The batch table at idx: its length, at most KN_STORAGE_BATCH_MAX, and
 * every element a table. */
static size_t batch_length(lua_State *L, int idx, const char *what)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = lua_rawlen(L, idx);
    if (n > KN_STORAGE_BATCH_MAX)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "at most %d objects per %s, not %zu",
                            KN_STORAGE_BATCH_MAX, what, n);
    for (size_t i = 0; i < n; i++) {
        int t = lua_rawgeti(L, idx, (lua_Integer)i + 1);
        lua_pop(L, 1);
        if (t != LUA_TTABLE)
            kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "object %zu must be a table, not a %s",
                                i, lua_typename(L, t));
    }
    return n;
}

/* --- service calls --------------------------------------------------------------- */

static int read_ids(lua_State *L, kn_db *db, const kn_storage_id *ids, size_t n, holder *h,
                    size_t *n_out)
{
    char msg[MSG_CAP] = "";
    int rc = kn_storage_read(db, NULL, ids, n, &h->objs, n_out, msg, sizeof msg);
    return rc ? kn_lua_raise_coded(L, rc, msg) : 0;
}

static void write_ops(lua_State *L, kn_db *db, const kn_storage_write_op *ops, size_t n, holder *h)
{
    char msg[MSG_CAP] = "";
    int rc = kn_storage_write(db, NULL, ops, n, &h->acks, msg, sizeof msg);
    if (rc) kn_lua_raise_coded(L, rc, msg);
}

static void delete_ops(lua_State *L, kn_db *db, const kn_storage_delete_op *ops, size_t n)
{
    char msg[MSG_CAP] = "";
    int rc = kn_storage_delete(db, NULL, ops, n, msg, sizeof msg);
    if (rc) kn_lua_raise_coded(L, rc, msg);
}

/* --- single objects -------------------------------------------------------------- */

/* storage_read(user_id, collection, key) -> object or nil */
static int k_storage_read(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "storage_read");
    kn_storage_id id = {arg_string(L, 2, false, "collection"), arg_string(L, 3, false, "key"),
                        arg_string(L, 1, true, "user_id")};
    holder *h = new_holder(L);
    size_t n = 0;
    read_ids(L, db, &id, 1, h, &n);
    if (n)
        push_object(L, &h->objs[0]);
    else
        lua_pushnil(L);
    return 1;
}

/* storage_write(user_id, collection, key, value [, version [, read [, write]]]) -> version */
static int k_storage_write(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "storage_write");
    kn_storage_write_op op = {
        .collection = arg_string(L, 2, false, "collection"),
        .key = arg_string(L, 3, false, "key"),
        .user_id = arg_string(L, 1, true, "user_id"),
        .version = arg_string(L, 5, true, "version"),
        .permission_read = clamp_int(luaL_optinteger(L, 6, KN_STORAGE_READ_OWNER)),
        .permission_write = clamp_int(luaL_optinteger(L, 7, KN_STORAGE_WRITE_OWNER)),
    };
    luaL_checkany(L, 4);
    lua_settop(L, 7);
    lua_newtable(L); /* 8: anchors an encoded value */
    op.value = value_text(L, 4, 0, 8, 1);
    holder *h = new_holder(L);
    write_ops(L, db, &op, 1, h);
    lua_pushstring(L, h->acks[0].version);
    return 1;
}

/* storage_delete(user_id, collection, key [, version]) */
static int k_storage_delete(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "storage_delete");
    kn_storage_delete_op op = {
        .id = {arg_string(L, 2, false, "collection"), arg_string(L, 3, false, "key"),
               arg_string(L, 1, true, "user_id")},
        .version = arg_string(L, 4, true, "version"),
    };
    delete_ops(L, db, &op, 1);
    return 0;
}

/* storage_list(user_id, collection, limit [, cursor]) -> objects, cursor or nil */
static int k_storage_list(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "storage_list");
    const char *user_id = arg_string(L, 1, true, "user_id");
    const char *collection = arg_string(L, 2, false, "collection");
    int limit = clamp_int(luaL_checkinteger(L, 3));
    const char *cursor = arg_string(L, 4, true, "cursor");
    holder *h = new_holder(L);
    size_t n = 0;
    char msg[MSG_CAP] = "";
    int rc = kn_storage_list(db, NULL, user_id, collection, limit, cursor, &h->objs, &n, &h->cursor,
                             msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    push_objects(L, h->objs, n);
    if (h->cursor)
        lua_pushstring(L, h->cursor);
    else
        lua_pushnil(L);
    return 2;
}

/* A random wait of 0 to 2^lost ms, at most 16 ms: lost races spread out. */
static void backoff(lua_Integer lost)
{
    uint32_t cap_us = (lost < 4 ? 1000u << lost : 16000u);
    uint32_t us = kn_crypto_random_uniform(cap_us + 1);
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
}

/* storage_write_retry(user_id, collection, key, fn [, attempts]) -> version, value
 *
 * Read-modify-write with optimistic concurrency: reads the object, calls
 * fn(value, object) (value nil and object nil when absent) and writes what
 * fn returns (a table or JSON text) expecting the version it read ("*" when
 * absent), keeping the object's permissions. When another write won the
 * race (FAILED_PRECONDITION) it waits a random 0 to 2^k ms (k the
 * attempts lost so far, at most 16 ms), so racers that lost together do
 * not meet again in lockstep, then reads again and calls fn again, at most
 * `attempts` times (default 5, 1-20; the waits add up to under 0.3 s),
 * then raises ABORTED. fn returning nil writes nothing and returns nil. fn
 * must have no other effects: it may run several times. */
#define RETRY_DEFAULT 5
#define RETRY_MAX     20

static int k_storage_write_retry(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "storage_write_retry");
    kn_storage_id id = {arg_string(L, 2, false, "collection"), arg_string(L, 3, false, "key"),
                        arg_string(L, 1, true, "user_id")};
    luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_Integer attempts = luaL_optinteger(L, 5, RETRY_DEFAULT);
    if (attempts < 1 || attempts > RETRY_MAX)
        return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "attempts must be 1-%d, not %lld",
                                   RETRY_MAX, (long long)attempts);
    lua_settop(L, 5);
    char msg[MSG_CAP] = "";
    for (lua_Integer a = 0; a < attempts; a++) {
        lua_settop(L, 5);
        lua_newtable(L);           /* 6: anchors the encoded value */
        holder *h = new_holder(L); /* 7 */
        size_t n = 0;
        read_ids(L, db, &id, 1, h, &n);
        char version[KN_STORAGE_VERSION_LEN + 1] = "*";
        int pr = KN_STORAGE_READ_OWNER, pw = KN_STORAGE_WRITE_OWNER;
        lua_pushvalue(L, 4);
        if (n) {
            snprintf(version, sizeof version, "%s", h->objs[0].version);
            pr = h->objs[0].permission_read;
            pw = h->objs[0].permission_write;
            kn_lua_push_stored_json(L, h->objs[0].value, h->objs[0].value_len);
            push_object(L, &h->objs[0]);
        } else {
            lua_pushnil(L);
            lua_pushnil(L);
        }
        lua_call(L, 2, 1); /* 8: the new value; an error in fn is the script's */
        if (lua_isnil(L, 8)) {
            lua_pushnil(L);
            return 1;
        }
        kn_storage_write_op op = {id.collection, id.key, id.user_id, value_text(L, 8, 0, 6, 1),
                                  version,       pr,     pw};
        int rc = kn_storage_write(db, NULL, &op, 1, &h->acks, msg, sizeof msg);
        if (rc == KN_ERR_FAILED_PRECONDITION) {
            backoff(a);
            continue;
        }
        if (rc) return kn_lua_raise_coded(L, rc, msg);
        lua_pushstring(L, h->acks[0].version);
        lua_pushvalue(L, 8);
        return 2;
    }
    return kn_lua_raise_codedf(L, KN_ERR_ABORTED, "gave up after %lld attempts: %s",
                               (long long)attempts, msg);
}

/* --- batches ----------------------------------------------------------------------- */

/* storage_read_batch({{collection =, key =, user_id =}, ...}) -> the objects
 * that exist, in the order asked */
static int k_storage_read_batch(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "storage_read_batch");
    size_t n = batch_length(L, 1, "read");
    kn_storage_id ids[KN_STORAGE_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1); /* the batch keeps it alive */
        ids[i] = field_id(L, -1, i);
        lua_pop(L, 1);
    }
    holder *h = new_holder(L);
    size_t got = 0;
    read_ids(L, db, ids, n, h, &got);
    push_objects(L, h->objs, got);
    return 1;
}

/* storage_write_batch({{collection =, key =, user_id =, value =, version =,
 * permission_read =, permission_write =}, ...}) -> acks, all or nothing */
static int k_storage_write_batch(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "storage_write_batch");
    size_t n = batch_length(L, 1, "write");
    lua_settop(L, 1);
    lua_createtable(L, (int)n, 0); /* 2: anchors encoded values */
    kn_storage_write_op ops[KN_STORAGE_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1); /* 3: the element, kept alive by the batch */
        ops[i] = (kn_storage_write_op){
            .collection = field_string(L, 3, "collection", i),
            .key = field_string(L, 3, "key", i),
            .user_id = field_string(L, 3, "user_id", i),
            .version = field_string(L, 3, "version", i),
            .permission_read = field_int(L, 3, "permission_read", i, KN_STORAGE_READ_OWNER),
            .permission_write = field_int(L, 3, "permission_write", i, KN_STORAGE_WRITE_OWNER),
        };
        lua_getfield(L, 3, "value");
        ops[i].value = value_text(L, 4, i, 2, (int)i + 1);
        lua_settop(L, 2);
    }
    holder *h = new_holder(L);
    write_ops(L, db, ops, n, h);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        kn_lua_push_entity(L, &kn_storage_ack_entity, &h->acks[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* storage_delete_batch({{collection =, key =, user_id =, version =}, ...}),
 * all or nothing */
static int k_storage_delete_batch(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "storage_delete_batch");
    size_t n = batch_length(L, 1, "delete");
    kn_storage_delete_op ops[KN_STORAGE_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        ops[i] = (kn_storage_delete_op){
            .id = field_id(L, -1, i),
            .version = field_string(L, -1, "version", i),
        };
        lua_pop(L, 1);
    }
    delete_ops(L, db, ops, n);
    return 0;
}

const luaL_Reg kn_storage_lua_funcs[] = {
    {"storage_read", k_storage_read},
    {"storage_write", k_storage_write},
    {"storage_delete", k_storage_delete},
    {"storage_list", k_storage_list},
    {"storage_read_batch", k_storage_read_batch},
    {"storage_write_batch", k_storage_write_batch},
    {"storage_delete_batch", k_storage_delete_batch},
    {"storage_write_retry", k_storage_write_retry},
    {NULL, NULL},
};
