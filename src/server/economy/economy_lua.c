/* economy_lua: the economy functions of `kaos` (docs/lua-api.md) — wallet
 * updates, the ledger and multi-updates, for server code only; registered
 * with the runtime as a binding (kn_economy_lua.h), reaching Lua only
 * through kn_lua_bind.h.
 *
 * Changesets and metadata cross as tables (or JSON text) and are encoded
 * with kn_lua_push_json; the encoded texts are anchored in one table at a
 * fixed stack slot while the service runs, so nothing is copied. Results are
 * kept in a holder userdata with a __gc while tables are built from them.
 * Refusals of the service are raised as error({code = N, message = "..."});
 * a wrong type of a plain argument is an ordinary Lua error (a script bug). */
#include "kn_economy_lua.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <limits.h>
#include <string.h>

#define MSG_CAP 320

/* --- holding results ---------------------------------------------------------- */

typedef struct holder {
    kn_wallet_result *results;
    size_t n_results;
    kn_wallet_ledger_entry *entries;
    size_t n_entries;
    kn_storage_ack *acks;
    char *cursor;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = lua_touserdata(L, 1);
    kn_wallet_results_free(h->results, h->n_results);
    kn_wallet_ledger_free(h->entries, h->n_entries);
    kn_free(h->acks);
    kn_free(h->cursor);
    memset(h, 0, sizeof *h);
    return 0;
}

static holder *new_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(holder), "kaos.economy_holder", holder_gc);
}

/* --- arguments ------------------------------------------------------------------ */

/* The JSON text of the value at idx for `what` of element i: a table is
 * encoded and kept in the anchor table at stack slot `anchor`; a string is
 * taken as JSON text; nil is NULL. */
static const char *json_arg(lua_State *L, int idx, int anchor, const char *what, const char *part,
                            size_t i)
{
    idx = lua_absindex(L, idx);
    int t = lua_type(L, idx);
    if (t == LUA_TNIL || t == LUA_TNONE) return NULL;
    if (t == LUA_TSTRING) return lua_tostring(L, idx); /* anchored by its owner */
    if (t != LUA_TTABLE)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "%s %zu: %s must be a table, not a %s",
                            part, i, what, lua_typename(L, t));
    const char *why;
    int rc = kn_lua_push_json(L, idx, NULL, &why);
    if (rc == KN_ERR_NOMEM) kn_lua_raise_coded(L, rc, "out of memory");
    if (rc) kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "%s %zu: %s: %s", part, i, what, why);
    const char *s = lua_tostring(L, -1);
    lua_rawseti(L, anchor, (lua_Integer)lua_rawlen(L, anchor) + 1);
    return s;
}

/* Field `name` of the table at idx: a string or NULL when absent. */
static const char *field_string(lua_State *L, int idx, const char *name, const char *part, size_t i)
{
    int t = lua_getfield(L, idx, name);
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL; /* the table keeps it */
    lua_pop(L, 1);
    if (t != LUA_TNIL && t != LUA_TSTRING)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "%s %zu: %s must be a string, not a %s",
                            part, i, name, lua_typename(L, t));
    return s;
}

static int field_int(lua_State *L, int idx, const char *name, const char *part, size_t i,
                     int absent)
{
    int t = lua_getfield(L, idx, name);
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (t == LUA_TNIL) return absent;
    if (!isnum)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "%s %zu: %s must be an integer", part, i,
                            name);
    return v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
}

static const char *field_json(lua_State *L, int idx, const char *name, int anchor, const char *part,
                              size_t i)
{
    lua_getfield(L, idx, name);
    const char *s = json_arg(L, -1, anchor, name, part, i);
    lua_pop(L, 1); /* a string stays alive in the element, an encoding in the anchor */
    return s;
}

/* A list argument (nil = empty) of at most max tables; its length. */
static size_t list_length(lua_State *L, int idx, size_t max, const char *part)
{
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = lua_rawlen(L, idx);
    if (n > max)
        kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "at most %zu %ss, not %zu", max, part, n);
    for (size_t i = 0; i < n; i++) {
        int t = lua_rawgeti(L, idx, (lua_Integer)i + 1);
        lua_pop(L, 1);
        if (t != LUA_TTABLE)
            kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "%s %zu must be a table, not a %s",
                                part, i, lua_typename(L, t));
    }
    return n;
}

/* The wallet update tables of the list at idx into ops. */
static void wallet_ops(lua_State *L, int idx, size_t n, int anchor, kn_wallet_update_op *ops)
{
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1); /* kept alive by the list */
        int e = lua_gettop(L);
        ops[i].user_id = field_string(L, e, "user_id", "wallet update", i);
        ops[i].changeset = field_json(L, e, "changeset", anchor, "wallet update", i);
        ops[i].metadata = field_json(L, e, "metadata", anchor, "wallet update", i);
        lua_getfield(L, e, "allow_negative");
        ops[i].allow_negative = lua_toboolean(L, -1);
        lua_settop(L, e - 1);
    }
}

static const char *const account_fields[] = {"username", "display_name", "avatar_url",
                                             "lang_tag", "location",     "timezone"};

static void account_ops(lua_State *L, int idx, size_t n, int anchor, kn_multi_account_op *ops)
{
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        int e = lua_gettop(L);
        const char *v[6];
        for (size_t f = 0; f < 6; f++)
            v[f] = field_string(L, e, account_fields[f], "account update", i);
        ops[i] = (kn_multi_account_op){
            .user_id = field_string(L, e, "user_id", "account update", i),
            .changes = {v[0], v[1], v[2], v[3], v[4], v[5],
                        field_json(L, e, "metadata", anchor, "account update", i)},
        };
        lua_settop(L, e - 1);
    }
}

static void write_ops(lua_State *L, int idx, size_t n, int anchor, kn_storage_write_op *ops)
{
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        int e = lua_gettop(L);
        ops[i] = (kn_storage_write_op){
            .collection = field_string(L, e, "collection", "storage write", i),
            .key = field_string(L, e, "key", "storage write", i),
            .user_id = field_string(L, e, "user_id", "storage write", i),
            .value = field_json(L, e, "value", anchor, "storage write", i),
            .version = field_string(L, e, "version", "storage write", i),
            .permission_read =
                field_int(L, e, "permission_read", "storage write", i, KN_STORAGE_READ_OWNER),
            .permission_write =
                field_int(L, e, "permission_write", "storage write", i, KN_STORAGE_WRITE_OWNER),
        };
        lua_settop(L, e - 1);
    }
}

static void delete_ops(lua_State *L, int idx, size_t n, kn_storage_delete_op *ops)
{
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        int e = lua_gettop(L);
        ops[i] = (kn_storage_delete_op){
            .id = {field_string(L, e, "collection", "storage delete", i),
                   field_string(L, e, "key", "storage delete", i),
                   field_string(L, e, "user_id", "storage delete", i)},
            .version = field_string(L, e, "version", "storage delete", i),
        };
        lua_settop(L, e - 1);
    }
}

/* --- results as tables ------------------------------------------------------------ */

/* t[key] = the JSON object `text` as a table, for the table on top. */
static void set_json(lua_State *L, const char *key, const char *text)
{
    kn_lua_push_stored_json(L, text, strlen(text));
    lua_setfield(L, -2, key);
}

static void push_result(lua_State *L, const kn_wallet_result *r)
{
    lua_createtable(L, 0, 4);
    kn_lua_set_string(L, "user_id", r->user_id);
    set_json(L, "updated", r->updated);
    set_json(L, "previous", r->previous);
    kn_lua_set_string(L, "ledger_id", r->ledger_id);
}

static void push_results(lua_State *L, const kn_wallet_result *r, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_result(L, &r[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void push_entry(lua_State *L, const kn_wallet_ledger_entry *e)
{
    lua_createtable(L, 0, 6);
    kn_lua_set_string(L, "id", e->id);
    kn_lua_set_string(L, "user_id", e->user_id);
    set_json(L, "changeset", e->changeset);
    set_json(L, "metadata", e->metadata);
    kn_lua_set_integer(L, "create_time", e->create_time);
    kn_lua_set_integer(L, "update_time", e->update_time);
}

/* --- functions ---------------------------------------------------------------------- */

/* wallet_update(user_id, changeset [, metadata [, update_ledger [, allow_negative]]])
 * -> updated, previous (tables), ledger_id or nil */
static int k_wallet_update(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "wallet_update");
    lua_settop(L, 5);
    lua_newtable(L); /* 6: anchors */
    kn_wallet_update_op op = {
        .user_id = luaL_checkstring(L, 1),
        .changeset = json_arg(L, 2, 6, "changeset", "wallet update", 0),
        .metadata = json_arg(L, 3, 6, "metadata", "wallet update", 0),
        .allow_negative = lua_toboolean(L, 5),
    };
    bool ledger = lua_toboolean(L, 4);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_wallets_update(db, &op, 1, ledger, &h->results, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    h->n_results = 1;
    kn_lua_push_stored_json(L, h->results[0].updated, strlen(h->results[0].updated));
    kn_lua_push_stored_json(L, h->results[0].previous, strlen(h->results[0].previous));
    if (*h->results[0].ledger_id)
        lua_pushstring(L, h->results[0].ledger_id);
    else
        lua_pushnil(L);
    return 3;
}

/* wallets_update({{user_id =, changeset =, metadata =, allow_negative =}, ...}
 * [, update_ledger]) -> {{user_id, updated, previous, ledger_id}, ...}, all or nothing */
static int k_wallets_update(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "wallets_update");
    lua_settop(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t n = list_length(L, 1, KN_WALLET_BATCH_MAX, "wallet update");
    lua_newtable(L); /* 3: anchors */
    kn_wallet_update_op ops[KN_WALLET_BATCH_MAX];
    wallet_ops(L, 1, n, 3, ops);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_wallets_update(db, ops, n, lua_toboolean(L, 2), &h->results, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    h->n_results = n;
    push_results(L, h->results, n);
    return 1;
}

/* wallet_ledger_list(user_id [, limit [, cursor]]) -> entries, cursor or nil */
static int k_wallet_ledger_list(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "wallet_ledger_list");
    const char *user_id = luaL_checkstring(L, 1);
    lua_Integer limit = luaL_optinteger(L, 2, KN_WALLET_LEDGER_MAX);
    const char *cursor = luaL_optstring(L, 3, NULL);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int lim = limit < 0 || limit > INT_MAX ? -1 : (int)limit;
    int rc = kn_wallet_ledger_list(db, user_id, lim, cursor, &h->entries, &h->n_entries, &h->cursor,
                                   msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n_entries, 0);
    for (size_t i = 0; i < h->n_entries; i++) {
        push_entry(L, &h->entries[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    if (h->cursor)
        lua_pushstring(L, h->cursor);
    else
        lua_pushnil(L);
    return 2;
}

/* wallet_ledger_update(id, metadata) -> the entry */
static int k_wallet_ledger_update(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "wallet_ledger_update");
    const char *id = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    lua_newtable(L); /* 3: anchors */
    const char *metadata = json_arg(L, 2, 3, "metadata", "ledger entry", 0);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_wallet_ledger_update(db, id, metadata, &h->entries, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    h->n_entries = 1;
    push_entry(L, &h->entries[0]);
    return 1;
}

/* multi_update(account_updates, storage_writes, storage_deletes, wallet_updates
 * [, update_ledger]) -> storage acks, wallet results; one transaction */
static int k_multi_update(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "multi_update");
    lua_settop(L, 5);
    size_t na = list_length(L, 1, KN_MULTI_ACCOUNT_MAX, "account update");
    size_t nw = list_length(L, 2, KN_STORAGE_BATCH_MAX, "storage write");
    size_t nd = list_length(L, 3, KN_STORAGE_BATCH_MAX, "storage delete");
    size_t nu = list_length(L, 4, KN_WALLET_BATCH_MAX, "wallet update");
    lua_newtable(L); /* 6: anchors */
    kn_multi_account_op accounts[KN_MULTI_ACCOUNT_MAX];
    kn_storage_write_op writes[KN_STORAGE_BATCH_MAX];
    kn_storage_delete_op deletes[KN_STORAGE_BATCH_MAX];
    kn_wallet_update_op wallets[KN_WALLET_BATCH_MAX];
    account_ops(L, 1, na, 6, accounts);
    write_ops(L, 2, nw, 6, writes);
    delete_ops(L, 3, nd, deletes);
    wallet_ops(L, 4, nu, 6, wallets);
    kn_multi_ops ops = {accounts, na, writes, nw, deletes, nd, wallets, nu, lua_toboolean(L, 5)};
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_multi_update(db, &ops, &h->acks, &h->results, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    h->n_results = nu;
    lua_createtable(L, (int)nw, 0);
    for (size_t i = 0; i < nw; i++) {
        kn_lua_push_entity(L, &kn_storage_ack_entity, &h->acks[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    push_results(L, h->results, nu);
    return 2;
}

const luaL_Reg kn_economy_lua_funcs[] = {
    {"wallet_update", k_wallet_update},
    {"wallets_update", k_wallets_update},
    {"wallet_ledger_list", k_wallet_ledger_list},
    {"wallet_ledger_update", k_wallet_ledger_update},
    {"multi_update", k_multi_update},
    {NULL, NULL},
};
