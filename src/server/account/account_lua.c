/* account_lua: the account functions of `kaos` — logins, the account
 * service, bans and logout, for server code (docs/lua-api.md); registered
 * with the runtime as a binding (kn_account_lua.h).
 *
 * Each one calls the same C service as the wire handler (kn_auth_*,
 * kn_account_*) with the calling worker's database connection (kn_lua_db)
 * and the binding's kn_account_lua, so rules, limits and messages are the
 * wire's. It reaches Lua only through kn_lua_bind.h. A
 * service error is raised as error({code = N, message = "..."}) with N its
 * wire code, so a script can pcall it and an uncaught one reaches the client
 * with that code. A wrong argument type is an ordinary Lua error (a script
 * bug: INTERNAL for the client, the traceback in the log).
 *
 * Memory: what the services return is kn_malloc'd; it sits in a holder
 * userdata with a __gc while Lua tables are built from it, so a Lua memory
 * error half-way never leaks it. */
#include "kn_account_lua.h"
#include "kn_account.h"
#include "kn_auth.h"
#include "kn_error.h"
#include "kn_time.h"
#include "kn_uuid.h"

#include <stdbool.h>
#include <string.h>

#define MSG_CAP 256

static int done(lua_State *L, int rc, const char *msg)
{
    return rc ? kn_lua_raise_coded(L, rc, msg) : 0;
}

/* The binding's dependencies (kn_account_lua.h). */
static const kn_account_lua *deps(lua_State *L)
{
    return kn_lua_binding_ud(L);
}

static void end_sessions(lua_State *L, const char *user_id, const char *session_id,
                         kn_session_end why)
{
    const kn_account_lua *d = deps(L);
    d->end_sessions(d->end_sessions_ud, user_id, session_id, why);
}

static int64_t now_sec(void)
{
    return kn_time_wall_ms() / 1000;
}

/* --- holding service results ------------------------------------------------- */

typedef struct holder {
    kn_account account;
    kn_user *users;
    size_t n_users;
} holder;

static void holder_release(holder *h)
{
    kn_account_deinit(&h->account);
    kn_users_free(h->users, h->n_users);
    h->users = NULL;
    h->n_users = 0;
}

static int holder_gc(lua_State *L)
{
    holder_release(lua_touserdata(L, 1));
    return 0;
}

static holder *new_holder(lua_State *L)
{
    return kn_lua_holder(L, sizeof(holder), "kaos.account_holder", holder_gc);
}

/* --- results as tables --------------------------------------------------------- */

/* The public profile, with the field names of the wire's User. */
static void push_user(lua_State *L, const kn_user *u)
{
    kn_lua_push_entity(L, &kn_user_entity, u);
}

/* --- logins ----------------------------------------------------------------------- */

static bool opt_create(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? true : lua_toboolean(L, idx);
}

/* A login from server code needs no session: the one the service started
 * (with a refresh token nobody holds) is ended at once. Returns user_id,
 * username, created. */
static int login_result(lua_State *L, kn_db *db, int rc, kn_session_grant *as, const char *msg)
{
    if (rc) {
        kn_session_grant_deinit(as);
        return kn_lua_raise_coded(L, rc, msg);
    }
    (void)kn_session_logout(db, as->claims.session_id, as->claims.user_id);
    char user_id[sizeof as->claims.user_id], username[sizeof as->claims.username];
    memcpy(user_id, as->claims.user_id, sizeof user_id);
    memcpy(username, as->claims.username, sizeof username);
    bool created = as->created;
    kn_session_grant_deinit(as);
    lua_pushstring(L, user_id);
    lua_pushstring(L, username);
    lua_pushboolean(L, created);
    return 3;
}

/* kn_auth_device and kn_auth_custom: a login by one id. */
typedef int (*id_login)(const kn_auth *auth, kn_db *db, const char *id, const char *username,
                        bool create, const kn_token_var *vars, size_t var_count, int64_t now_sec,
                        kn_session_grant *out, char *msg, size_t msg_cap);

/* authenticate_device / authenticate_custom (id [, username [, create = true]]) */
static int login_by_id(lua_State *L, const char *fn_name, id_login login)
{
    kn_db *db = kn_lua_db(L, fn_name);
    const char *id = luaL_checkstring(L, 1);
    const char *username = luaL_optstring(L, 2, NULL);
    bool create = opt_create(L, 3);
    kn_session_grant as;
    char msg[MSG_CAP] = "";
    int rc =
        login(deps(L)->auth, db, id, username, create, NULL, 0, now_sec(), &as, msg, sizeof msg);
    return login_result(L, db, rc, &as, msg);
}

static int k_authenticate_device(lua_State *L)
{
    return login_by_id(L, "authenticate_device", kn_auth_device);
}

static int k_authenticate_custom(lua_State *L)
{
    return login_by_id(L, "authenticate_custom", kn_auth_custom);
}

/* authenticate_email(email, password [, username [, create = true]]) */
static int k_authenticate_email(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "authenticate_email");
    const char *email = luaL_checkstring(L, 1);
    const char *password = luaL_checkstring(L, 2);
    const char *username = luaL_optstring(L, 3, NULL);
    bool create = opt_create(L, 4);
    kn_session_grant as;
    char msg[MSG_CAP] = "";
    int rc = kn_auth_email(deps(L)->auth, db, email, password, username, create, NULL, 0, now_sec(),
                           &as, msg, sizeof msg);
    return login_result(L, db, rc, &as, msg);
}

/* --- the account ------------------------------------------------------------------ */

/* account_get_id(user_id) -> {user = {...}, email, custom_id, device_ids, disable_time,
 * wallet = {currency = balance, ...}} */
static int k_account_get_id(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "account_get_id");
    const char *user_id = luaL_checkstring(L, 1);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_account_get(db, user_id, &h->account, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    const kn_account *a = &h->account;
    lua_createtable(L, 0, 6);
    push_user(L, &a->user);
    lua_setfield(L, -2, "user");
    kn_lua_set_string(L, "email", a->email);
    kn_lua_set_string(L, "custom_id", a->custom_id);
    lua_createtable(L, (int)a->device_count, 0);
    for (size_t i = 0; i < a->device_count; i++) {
        lua_pushstring(L, a->device_ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "device_ids");
    kn_lua_set_integer(L, "disable_time", a->disable_time);
    kn_lua_push_stored_json(L, a->wallet, a->wallet ? strlen(a->wallet) : 0);
    lua_setfield(L, -2, "wallet");
    holder_release(h);
    return 1;
}

static const char *const change_fields[] = {"username", "display_name", "avatar_url", "lang_tag",
                                            "location", "timezone",     "metadata"};
enum { N_CHANGE_FIELDS = sizeof change_fields / sizeof change_fields[0], METADATA = 6 };

/* Metadata given as a table: its JSON text into stack slot `slot`. */
static const char *metadata_text(lua_State *L, int value, int slot)
{
    const char *why;
    int rc = kn_lua_push_json(L, value, NULL, &why);
    if (rc == KN_ERR_NOMEM) kn_lua_raise_coded(L, rc, "out of memory");
    if (rc) kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT, "metadata: %s", why);
    lua_replace(L, slot);
    return lua_tostring(L, slot);
}

/* account_update_id(user_id, changes): the keys of `changes` are the fields
 * to change (absent = unchanged); metadata may be a table or JSON text. */
static int k_account_update_id(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "account_update_id");
    const char *user_id = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_pushnil(L); /* slot 3: metadata as JSON text, when given as a table */
    const char *values[N_CHANGE_FIELDS] = {NULL};
    char msg[MSG_CAP] = "";
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return kn_lua_raise_coded(L, KN_ERR_INVALID_ARGUMENT,
                                      "account fields are named by strings");
        const char *key = lua_tostring(L, -2);
        int f = 0;
        while (f < N_CHANGE_FIELDS && strcmp(key, change_fields[f]))
            f++;
        if (f == N_CHANGE_FIELDS)
            return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT,
                                       "unknown account field \"%.64s\"", key);
        if (f == METADATA && lua_type(L, -1) == LUA_TTABLE) {
            values[f] = metadata_text(L, lua_gettop(L), 3);
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            values[f] = lua_tostring(L, -1); /* the table keeps it alive */
        } else {
            return kn_lua_raise_codedf(L, KN_ERR_INVALID_ARGUMENT,
                                       "account field %s must be a string%s", key,
                                       f == METADATA ? " or a table" : "");
        }
        lua_pop(L, 1);
    }
    kn_account_changes ch = {
        .username = values[0],
        .display_name = values[1],
        .avatar_url = values[2],
        .lang_tag = values[3],
        .location = values[4],
        .timezone = values[5],
        .metadata = values[6],
    };
    return done(L, kn_account_update(db, user_id, &ch, msg, sizeof msg), msg);
}

/* users_get_id({ids}) / users_get_username({usernames}) -> a list of users */
static int get_users(lua_State *L, bool by_id)
{
    kn_db *db = kn_lua_db(L, by_id ? "users_get_id" : "users_get_username");
    size_t n;
    const char **list = kn_lua_string_list(L, 1, false, by_id ? "ids" : "usernames", &n);
    holder *h = new_holder(L);
    char msg[MSG_CAP] = "";
    int rc = kn_users_get(db, by_id ? list : NULL, by_id ? n : 0, by_id ? NULL : list,
                          by_id ? 0 : n, &h->users, &h->n_users, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    lua_createtable(L, (int)h->n_users, 0);
    for (size_t i = 0; i < h->n_users; i++) {
        push_user(L, &h->users[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    holder_release(h);
    return 1;
}

static int k_users_get_id(lua_State *L)
{
    return get_users(L, true);
}

static int k_users_get_username(lua_State *L)
{
    return get_users(L, false);
}

/* account_delete_id(user_id): the account goes, and every connection of
 * the user is closed (DISCONNECT_BANNED). */
static int k_account_delete_id(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "account_delete_id");
    const char *user_id = luaL_checkstring(L, 1);
    char msg[MSG_CAP] = "";
    int rc = kn_account_delete(db, user_id, msg, sizeof msg);
    if (rc) return kn_lua_raise_coded(L, rc, msg);
    end_sessions(L, user_id, NULL, KN_SESSION_END_DELETE);
    return 0;
}

/* users_ban_id({ids}) / users_unban_id({ids}), in order; the first failure
 * is raised (the users before it are already done). A ban also closes every
 * connection of the user (DISCONNECT_BANNED). */
static int ban(lua_State *L, bool on)
{
    kn_db *db = kn_lua_db(L, on ? "users_ban_id" : "users_unban_id");
    size_t n;
    const char **ids = kn_lua_string_list(L, 1, false, "ids", &n);
    char msg[MSG_CAP] = "";
    for (size_t i = 0; i < n; i++) {
        int rc = on ? kn_account_ban(db, ids[i], msg, sizeof msg)
                    : kn_account_unban(db, ids[i], msg, sizeof msg);
        if (rc) return kn_lua_raise_coded(L, rc, msg);
        if (on) end_sessions(L, ids[i], NULL, KN_SESSION_END_BAN);
    }
    return 0;
}

static int k_users_ban_id(lua_State *L)
{
    return ban(L, true);
}

static int k_users_unban_id(lua_State *L)
{
    return ban(L, false);
}

/* --- link and unlink ---------------------------------------------------------------- */

static int k_link_device(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "link_device");
    const char *user_id = luaL_checkstring(L, 1), *id = luaL_checkstring(L, 2);
    char msg[MSG_CAP] = "";
    return done(L, kn_account_link_device(db, user_id, id, msg, sizeof msg), msg);
}

static int k_link_email(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "link_email");
    const char *user_id = luaL_checkstring(L, 1), *email = luaL_checkstring(L, 2);
    const char *password = luaL_checkstring(L, 3);
    char msg[MSG_CAP] = "";
    return done(L, kn_account_link_email(db, user_id, email, password, msg, sizeof msg), msg);
}

static int k_link_custom(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "link_custom");
    const char *user_id = luaL_checkstring(L, 1), *id = luaL_checkstring(L, 2);
    char msg[MSG_CAP] = "";
    return done(L, kn_account_link_custom(db, user_id, id, msg, sizeof msg), msg);
}

static int k_unlink_device(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "unlink_device");
    const char *user_id = luaL_checkstring(L, 1), *id = luaL_checkstring(L, 2);
    char msg[MSG_CAP] = "";
    return done(L, kn_account_unlink_device(db, user_id, id, msg, sizeof msg), msg);
}

static int k_unlink_email(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "unlink_email");
    const char *user_id = luaL_checkstring(L, 1);
    char msg[MSG_CAP] = "";
    return done(L, kn_account_unlink_email(db, user_id, msg, sizeof msg), msg);
}

static int k_unlink_custom(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "unlink_custom");
    const char *user_id = luaL_checkstring(L, 1);
    char msg[MSG_CAP] = "";
    return done(L, kn_account_unlink_custom(db, user_id, msg, sizeof msg), msg);
}

/* --- sessions ---------------------------------------------------------------------------- */

/* session_logout(user_id [, session_id]): that session (or every session)
 * of the user ends: refresh tokens stop working, tokens cannot be resumed,
 * and connections bound to them stay open but unauthenticated. */
static int k_session_logout(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "session_logout");
    const char *user_id = luaL_checkstring(L, 1);
    const char *session_id = luaL_optstring(L, 2, NULL);
    if (!kn_uuid_valid(user_id))
        return kn_lua_raise_coded(L, KN_ERR_INVALID_ARGUMENT, "user id must be a UUID");
    if (session_id && !kn_uuid_valid(session_id))
        return kn_lua_raise_coded(L, KN_ERR_INVALID_ARGUMENT, "session id must be a UUID");
    int rc = session_id ? kn_session_logout(db, session_id, user_id)
                        : kn_session_logout_all(db, user_id);
    if (rc) return kn_lua_raise_coded(L, rc, "database unavailable");
    end_sessions(L, user_id, session_id, KN_SESSION_END_LOGOUT);
    return 0;
}

const luaL_Reg kn_account_lua_funcs[] = {
    {"authenticate_device", k_authenticate_device},
    {"authenticate_email", k_authenticate_email},
    {"authenticate_custom", k_authenticate_custom},
    {"account_get_id", k_account_get_id},
    {"account_update_id", k_account_update_id},
    {"account_delete_id", k_account_delete_id},
    {"users_get_id", k_users_get_id},
    {"users_get_username", k_users_get_username},
    {"users_ban_id", k_users_ban_id},
    {"users_unban_id", k_users_unban_id},
    {"link_device", k_link_device},
    {"link_email", k_link_email},
    {"link_custom", k_link_custom},
    {"unlink_device", k_unlink_device},
    {"unlink_email", k_unlink_email},
    {"unlink_custom", k_unlink_custom},
    {"session_logout", k_session_logout},
    {NULL, NULL},
};
