/* account: profiles, public user lookup, deletion, bans, link and unlink.
 *
 * Invariants: every input is validated before the first query, so a refused
 * request has written nothing; an account never loses its last login method,
 * because every unlink locks the user row before counting what is left; the
 * SQL sits next to the code that runs it, one static kn_db_stmt each. */
#include "kn_account.h"
#include "kn_auth.h"
#include "kn_db.h"
#include "kn_session.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_text.h"
#include "kn_json.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KN_ENTITY_DEFINE(kn_user_entity, kn_user, USER);

/* The public columns, in kn_user order; the account adds three after them. */
#define USER_COLUMNS                                                                               \
    "id, username, display_name, avatar_url, lang_tag, location, timezone, metadata::text,"        \
    " floor(extract(epoch FROM create_time))::bigint,"                                             \
    " floor(extract(epoch FROM update_time))::bigint"
#define USER_NCOLS 10

static const kn_db_stmt get_account = {
    "account_get",
    "SELECT " USER_COLUMNS ", email, custom_id,"
    " COALESCE(floor(extract(epoch FROM disable_time))::bigint, 0), wallet::text"
    " FROM users WHERE id = $1",
    1};
static const kn_db_stmt get_devices = {
    "account_get_devices", "SELECT id FROM user_device WHERE user_id = $1 ORDER BY create_time, id",
    1};
/* NULL leaves a column alone; '' clears the optional text columns. */
static const kn_db_stmt update_account = {
    "account_update",
    "UPDATE users SET"
    " username = COALESCE($2::text, username),"
    " display_name = CASE WHEN $3::text IS NULL THEN display_name ELSE NULLIF($3::text, '') END,"
    " avatar_url = CASE WHEN $4::text IS NULL THEN avatar_url ELSE NULLIF($4::text, '') END,"
    " lang_tag = COALESCE($5::text, lang_tag),"
    " location = CASE WHEN $6::text IS NULL THEN location ELSE NULLIF($6::text, '') END,"
    " timezone = CASE WHEN $7::text IS NULL THEN timezone ELSE NULLIF($7::text, '') END,"
    " metadata = COALESCE($8::jsonb, metadata),"
    " update_time = now()"
    " WHERE id = $1 RETURNING id",
    8};
static const kn_db_stmt get_users = {
    "account_users_get",
    "SELECT " USER_COLUMNS " FROM users"
    " WHERE (id = ANY ($1::uuid[]) OR username = ANY ($2::text[]))"
    " AND id <> '00000000-0000-0000-0000-000000000000' ORDER BY username",
    2};
static const kn_db_stmt delete_user = {"account_delete",
                                       "DELETE FROM users WHERE id = $1 RETURNING id", 1};
static const kn_db_stmt ban_user = {
    "account_ban",
    "UPDATE users SET disable_time = COALESCE(disable_time, now()) WHERE id = $1 RETURNING id", 1};
static const kn_db_stmt unban_user = {
    "account_unban", "UPDATE users SET disable_time = NULL WHERE id = $1 RETURNING id", 1};
static const kn_db_stmt insert_device = {
    "account_link_device",
    "INSERT INTO user_device (id, user_id) SELECT $1, id FROM users WHERE id = $2"
    " ON CONFLICT (id) DO NOTHING RETURNING id",
    2};
static const kn_db_stmt device_owner = {"account_device_owner",
                                        "SELECT user_id FROM user_device WHERE id = $1", 1};
static const kn_db_stmt user_exists = {"account_user_exists", "SELECT 1 FROM users WHERE id = $1",
                                       1};
static const kn_db_stmt email_owner = {
    "account_email_owner",
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1),"
    " (SELECT id FROM users WHERE email = lower($2) AND id <> $1)",
    2};
static const kn_db_stmt set_email = {
    "account_link_email",
    "UPDATE users SET email = lower($2), password = $3, update_time = now() WHERE id = $1"
    " RETURNING id",
    3};
static const kn_db_stmt set_custom = {
    "account_link_custom",
    "UPDATE users SET custom_id = $2, update_time = now() WHERE id = $1 RETURNING id", 2};
static const kn_db_stmt lock_user = {
    "account_lock_user",
    "SELECT email IS NOT NULL, custom_id IS NOT NULL FROM users WHERE id = $1 FOR UPDATE", 1};
/* Run after lock_user in the same transaction: a fresh snapshot, so it sees
 * what a concurrent unlink committed before the lock was granted. */
static const kn_db_stmt count_devices = {
    "account_count_devices",
    "SELECT count(*), count(*) FILTER (WHERE id = $2) FROM user_device WHERE user_id = $1", 2};
static const kn_db_stmt remove_device = {
    "account_unlink_device", "DELETE FROM user_device WHERE id = $2 AND user_id = $1", 2};
static const kn_db_stmt remove_email = {
    "account_unlink_email",
    "UPDATE users SET email = NULL, password = NULL, update_time = now() WHERE id = $1", 1};
static const kn_db_stmt remove_custom = {
    "account_unlink_custom", "UPDATE users SET custom_id = NULL, update_time = now() WHERE id = $1",
    1};

/* Database and memory failures were logged by kn_db; the client gets a word. */
static int fail_db(int rc, char *msg, size_t cap)
{
    const char *why = rc == KN_ERR_NOMEM     ? "out of memory"
                      : rc == KN_ERR_ABORTED ? "please retry"
                                             : "database unavailable";
    return kn_err_msg(rc, msg, cap, "%s", why);
}

#define NIL_USER "00000000-0000-0000-0000-000000000000"

/* --- validation ------------------------------------------------------------ */

/* Copies a canonical UUID into `out` in lower case, the form Postgres prints,
 * so ids compare with strcmp. */
static bool norm_id(const char *in, char out[37])
{
    if (!in || !kn_uuid_valid(in)) return false;
    for (int i = 0; i < 36; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] + 32 : in[i]);
    out[36] = '\0';
    return true;
}

static int check_user_id(const char *user_id, char out[37], char *msg, size_t cap)
{
    if (!norm_id(user_id, out))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user id must be a UUID");
    /* The nil UUID owns system storage objects (docs/storage.md); it is not
     * an account anyone can read, change, ban or delete. */
    if (!strcmp(out, NIL_USER)) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
    return KN_OK;
}

static int check_text(const char *what, const char *s, size_t max, bool spaces, char *msg,
                      size_t cap)
{
    if (!s) return KN_OK;
    if (strlen(s) > max || !kn_text_valid(s, spaces))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "%s must be at most %zu bytes of UTF-8 without control characters%s",
                          what, max, spaces ? "" : " or spaces");
    return KN_OK;
}

static int check_lang_tag(const char *s, char *msg, size_t cap)
{
    size_t l = s ? strlen(s) : 0;
    bool ok = l >= 1 && l <= KN_ACCOUNT_LANG_TAG_MAX;
    for (size_t i = 0; ok && i < l; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_';
    if (!ok)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "lang_tag must be 1-%d letters, digits, '-' or '_'",
                          KN_ACCOUNT_LANG_TAG_MAX);
    return KN_OK;
}

/* The JSON parser also refuses broken UTF-8 and \u0000, which jsonb cannot store. */
static int check_metadata(const char *s, char *msg, size_t cap)
{
    if (strlen(s) > KN_ACCOUNT_METADATA_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "metadata must be at most %d bytes",
                          KN_ACCOUNT_METADATA_MAX);
    kn_json *j = kn_json_parse(s, strlen(s), 0, NULL);
    bool object = kn_json_is_object(j);
    kn_json_decref(j);
    if (!object)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "metadata must be a JSON object");
    return KN_OK;
}

static int check_update(const kn_account_changes *u, char *msg, size_t cap)
{
    int rc = KN_OK;
    if (u->username) rc = kn_auth_check_username(u->username, msg, cap);
    if (!rc)
        rc = check_text("display_name", u->display_name, KN_ACCOUNT_DISPLAY_NAME_MAX, true, msg,
                        cap);
    if (!rc)
        rc = check_text("avatar_url", u->avatar_url, KN_ACCOUNT_AVATAR_URL_MAX, false, msg, cap);
    if (!rc && u->lang_tag) rc = check_lang_tag(u->lang_tag, msg, cap);
    if (!rc) rc = check_text("location", u->location, KN_ACCOUNT_LOCATION_MAX, true, msg, cap);
    if (!rc) rc = check_text("timezone", u->timezone, KN_ACCOUNT_TIMEZONE_MAX, true, msg, cap);
    if (!rc && u->metadata) rc = check_metadata(u->metadata, msg, cap);
    return rc;
}

/* --- reading rows ----------------------------------------------------------- */

static int dup_col(const kn_db_rows *rows, size_t r, size_t c, char **out)
{
    const char *v = kn_db_rows_get(rows, r, c);
    *out = v ? kn_strdup(v) : NULL;
    return (v && !*out) ? KN_ERR_NOMEM : KN_OK;
}

static int64_t int_col(const kn_db_rows *rows, size_t r, size_t c)
{
    const char *v = kn_db_rows_get(rows, r, c);
    return v ? strtoll(v, NULL, 10) : 0;
}

static bool bool_col(const kn_db_rows *rows, size_t r, size_t c)
{
    const char *v = kn_db_rows_get(rows, r, c);
    return v && v[0] == 't';
}

void kn_user_deinit(kn_user *u)
{
    if (!u) return;
    kn_free(u->username);
    kn_free(u->display_name);
    kn_free(u->avatar_url);
    kn_free(u->lang_tag);
    kn_free(u->location);
    kn_free(u->timezone);
    kn_free(u->metadata);
    memset(u, 0, sizeof *u);
}

/* Fills `u` from the USER_COLUMNS of row r; on failure the caller deinits. */
static int read_user(const kn_db_rows *rows, size_t r, kn_user *u)
{
    snprintf(u->id, sizeof u->id, "%s", kn_db_rows_get(rows, r, 0));
    u->create_time = int_col(rows, r, 8);
    u->update_time = int_col(rows, r, 9);
    char **fields[] = {&u->username, &u->display_name, &u->avatar_url, &u->lang_tag,
                       &u->location, &u->timezone,     &u->metadata};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (dup_col(rows, r, i + 1, fields[i])) return KN_ERR_NOMEM;
    return KN_OK;
}

/* --- get and update ----------------------------------------------------------- */

void kn_account_deinit(kn_account *a)
{
    if (!a) return;
    kn_user_deinit(&a->user);
    kn_free(a->email);
    kn_free(a->custom_id);
    kn_free(a->wallet);
    for (size_t i = 0; i < a->device_count; i++)
        kn_free(a->device_ids[i]);
    kn_free(a->device_ids);
    memset(a, 0, sizeof *a);
}

static int read_devices(const kn_db_rows *rows, kn_account *a)
{
    size_t n = kn_db_rows_count(rows);
    if (n == 0) return KN_OK;
    a->device_ids = kn_calloc(n, sizeof *a->device_ids);
    if (!a->device_ids) return KN_ERR_NOMEM;
    for (; a->device_count < n; a->device_count++)
        if (dup_col(rows, a->device_count, 0, &a->device_ids[a->device_count])) return KN_ERR_NOMEM;
    return KN_OK;
}

int kn_account_get(kn_db *db, const char *user_id, kn_account *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    if (rc) return rc;
    kn_db_rows *rows = NULL;
    const char *p[] = {id};
    if ((rc = kn_db_query(db, &get_account, p, &rows))) return fail_db(rc, msg, cap);
    if (kn_db_rows_count(rows) != 1) {
        kn_db_rows_free(rows);
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
    }
    rc = read_user(rows, 0, &out->user);
    if (!rc) rc = dup_col(rows, 0, USER_NCOLS, &out->email);
    if (!rc) rc = dup_col(rows, 0, USER_NCOLS + 1, &out->custom_id);
    out->disable_time = int_col(rows, 0, USER_NCOLS + 2);
    if (!rc) rc = dup_col(rows, 0, USER_NCOLS + 3, &out->wallet);
    kn_db_rows_free(rows);
    rows = NULL;
    if (!rc) rc = kn_db_query(db, &get_devices, p, &rows);
    if (!rc) rc = read_devices(rows, out);
    kn_db_rows_free(rows);
    if (rc) {
        kn_account_deinit(out);
        return fail_db(rc, msg, cap);
    }
    return KN_OK;
}

int kn_account_update(kn_db *db, const char *user_id, const kn_account_changes *u, char *msg,
                      size_t cap)
{
    assert(u);
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    if (!rc) rc = check_update(u, msg, cap);
    if (rc) return rc;
    const char *p[] = {id,          u->username, u->display_name, u->avatar_url,
                       u->lang_tag, u->location, u->timezone,     u->metadata};
    bool any = false;
    for (size_t i = 1; i < sizeof p / sizeof *p; i++)
        any = any || p[i];
    if (!any) return KN_OK;

    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, &update_account, p, &rows);
    size_t n = kn_db_rows_count(rows);
    kn_db_rows_free(rows);
    if (rc == KN_ERR_ALREADY_EXISTS && !strcmp(kn_db_constraint(db), "users_username_key"))
        return kn_err_msg(rc, msg, cap, "username is taken");
    if (rc) return fail_db(rc, msg, cap);
    if (n != 1) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
    return KN_OK;
}

/* --- public profiles ------------------------------------------------------------ */

void kn_users_free(kn_user *users, size_t n)
{
    if (!users) return;
    for (size_t i = 0; i < n; i++)
        kn_user_deinit(&users[i]);
    kn_free(users);
}

static int check_users_get(const char *const *ids, size_t n_ids, const char *const *usernames,
                           size_t n_usernames, char *msg, size_t cap)
{
    if (n_ids > KN_USERS_GET_MAX || n_usernames > KN_USERS_GET_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d ids and %d usernames",
                          KN_USERS_GET_MAX, KN_USERS_GET_MAX);
    for (size_t i = 0; i < n_ids; i++)
        if (!ids[i] || !kn_uuid_valid(ids[i]))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user ids must be UUIDs");
    for (size_t i = 0; i < n_usernames; i++) {
        int rc = kn_auth_check_username(usernames[i], msg, cap);
        if (rc) return rc;
    }
    return KN_OK;
}

int kn_users_get(kn_db *db, const char *const *ids, size_t n_ids, const char *const *usernames,
                 size_t n_usernames, kn_user **out, size_t *n_out, char *msg, size_t cap)
{
    assert((ids || n_ids == 0) && (usernames || n_usernames == 0));
    *out = NULL;
    *n_out = 0;
    int rc = check_users_get(ids, n_ids, usernames, n_usernames, msg, cap);
    if (rc || (n_ids == 0 && n_usernames == 0)) return rc;

    char *id_list = kn_db_text_array(ids, n_ids);
    char *name_list = kn_db_text_array(usernames, n_usernames);
    kn_db_rows *rows = NULL;
    const char *p[] = {id_list, name_list};
    rc = (id_list && name_list) ? kn_db_query(db, &get_users, p, &rows) : KN_ERR_NOMEM;
    kn_free(id_list);
    kn_free(name_list);
    size_t n = kn_db_rows_count(rows);
    kn_user *users = NULL;
    if (!rc && n > 0 && !(users = kn_calloc(n, sizeof *users))) rc = KN_ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        rc = read_user(rows, i, &users[i]);
    kn_db_rows_free(rows);
    if (rc) {
        kn_users_free(users, n); /* rows past a failure are still zeroed */
        return fail_db(rc, msg, cap);
    }
    *out = users;
    *n_out = n;
    return KN_OK;
}

/* --- delete, ban, session check ----------------------------------------------- */

/* Runs a statement that RETURNs one row per user touched: NOT_FOUND on none. */
static int touch_user(kn_db *db, const kn_db_stmt *stmt, const char *id, char *msg, size_t cap)
{
    kn_db_rows *rows = NULL;
    const char *p[] = {id};
    int rc = kn_db_query(db, stmt, p, &rows);
    size_t n = kn_db_rows_count(rows);
    kn_db_rows_free(rows);
    if (rc) return fail_db(rc, msg, cap);
    return n == 1 ? KN_OK : kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
}

int kn_account_delete(kn_db *db, const char *user_id, char *msg, size_t cap)
{
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    return rc ? rc : touch_user(db, &delete_user, id, msg, cap);
}

int kn_account_ban(kn_db *db, const char *user_id, char *msg, size_t cap)
{
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    if (rc) return rc;
    if ((rc = kn_db_begin(db))) return fail_db(rc, msg, cap);
    if ((rc = touch_user(db, &ban_user, id, msg, cap))) {
        kn_db_rollback(db);
        return rc;
    }
    /* No refresh token of the user works after the ban (same transaction). */
    if ((rc = kn_session_logout_all(db, id)) || (rc = kn_db_commit(db))) {
        kn_db_rollback(db);
        return fail_db(rc, msg, cap);
    }
    return KN_OK;
}

int kn_account_unban(kn_db *db, const char *user_id, char *msg, size_t cap)
{
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    return rc ? rc : touch_user(db, &unban_user, id, msg, cap);
}

/* --- link ----------------------------------------------------------------------- */

int kn_account_link_device(kn_db *db, const char *user_id, const char *device_id, char *msg,
                           size_t cap)
{
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    if (!rc) rc = kn_auth_check_device_id(device_id, msg, cap);
    if (rc) return rc;
    /* Insert, or find out why not: the device is ours already, someone
     * else's, or the user is gone. A device unlinked between the two looks
     * is simply tried again. */
    for (int attempt = 0; attempt < 3; attempt++) {
        kn_db_rows *rows = NULL;
        const char *ins[] = {device_id, id};
        if ((rc = kn_db_query(db, &insert_device, ins, &rows))) return fail_db(rc, msg, cap);
        size_t inserted = kn_db_rows_count(rows);
        kn_db_rows_free(rows);
        if (inserted == 1) return KN_OK;

        const char *dev[] = {device_id};
        if ((rc = kn_db_query(db, &device_owner, dev, &rows))) return fail_db(rc, msg, cap);
        const char *owner = kn_db_rows_get(rows, 0, 0);
        bool mine = owner && !strcmp(owner, id), other = owner && !mine;
        kn_db_rows_free(rows);
        if (mine) return KN_OK;
        if (other)
            return kn_err_msg(KN_ERR_ALREADY_EXISTS, msg, cap,
                              "device id is linked to another account");

        const char *u[] = {id};
        if ((rc = kn_db_query(db, &user_exists, u, &rows))) return fail_db(rc, msg, cap);
        size_t users = kn_db_rows_count(rows);
        kn_db_rows_free(rows);
        if (users == 0) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
    }
    return kn_err_msg(KN_ERR_ABORTED, msg, cap, "please retry");
}

int kn_account_link_email(kn_db *db, const char *user_id, const char *email, const char *password,
                          char *msg, size_t cap)
{
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    if (!rc) rc = kn_auth_check_email_password(email, password, msg, cap);
    if (rc) return rc;
    /* Cheap checks before the deliberately slow hash. */
    kn_db_rows *rows = NULL;
    const char *q[] = {id, email};
    if ((rc = kn_db_query(db, &email_owner, q, &rows))) return fail_db(rc, msg, cap);
    bool exists = bool_col(rows, 0, 0), taken = kn_db_rows_get(rows, 0, 1) != NULL;
    kn_db_rows_free(rows);
    if (!exists) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
    if (taken)
        return kn_err_msg(KN_ERR_ALREADY_EXISTS, msg, cap, "email is linked to another account");

    char hash[KN_AUTH_PASSWORD_HASH_SIZE];
    if (kn_auth_hash_password(password, hash))
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "server busy; retry");
    const char *p[] = {id, email, hash};
    rc = kn_db_query(db, &set_email, p, &rows);
    size_t n = kn_db_rows_count(rows);
    kn_db_rows_free(rows);
    if (rc == KN_ERR_ALREADY_EXISTS) /* taken since the check */
        return kn_err_msg(rc, msg, cap, "email is linked to another account");
    if (rc) return fail_db(rc, msg, cap);
    return n == 1 ? KN_OK : kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
}

int kn_account_link_custom(kn_db *db, const char *user_id, const char *custom_id, char *msg,
                           size_t cap)
{
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    if (!rc) rc = kn_auth_check_custom_id(custom_id, msg, cap);
    if (rc) return rc;
    kn_db_rows *rows = NULL;
    const char *p[] = {id, custom_id};
    rc = kn_db_query(db, &set_custom, p, &rows);
    size_t n = kn_db_rows_count(rows);
    kn_db_rows_free(rows);
    if (rc == KN_ERR_ALREADY_EXISTS)
        return kn_err_msg(rc, msg, cap, "custom id is linked to another account");
    if (rc) return fail_db(rc, msg, cap);
    return n == 1 ? KN_OK : kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
}

/* --- unlink ---------------------------------------------------------------------- */

typedef enum { METHOD_DEVICE, METHOD_EMAIL, METHOD_CUSTOM } method;

static const kn_db_stmt *const removers[] = {&remove_device, &remove_email, &remove_custom};
static const char *const not_linked[] = {"device id is not linked to this account",
                                         "no email is linked to this account",
                                         "no custom id is linked to this account"};

/* Inside the transaction: lock, count, remove. */
static int unlink_locked(kn_db *db, const char *id, method m, const char *device_id, char *msg,
                         size_t cap)
{
    kn_db_rows *rows = NULL;
    const char *p[] = {id, device_id};
    int rc = kn_db_query(db, &lock_user, p, &rows);
    if (rc) return fail_db(rc, msg, cap);
    if (kn_db_rows_count(rows) != 1) {
        kn_db_rows_free(rows);
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
    }
    bool has_email = bool_col(rows, 0, 0), has_custom = bool_col(rows, 0, 1);
    kn_db_rows_free(rows);
    if ((rc = kn_db_query(db, &count_devices, p, &rows))) return fail_db(rc, msg, cap);
    int64_t devices = int_col(rows, 0, 0), has_device = int_col(rows, 0, 1);
    kn_db_rows_free(rows);

    bool has = m == METHOD_DEVICE ? has_device > 0 : m == METHOD_EMAIL ? has_email : has_custom;
    if (!has) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "%s", not_linked[m]);
    if (devices + has_email + has_custom <= 1)
        return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap,
                          "cannot unlink the last login method");
    if ((rc = kn_db_query(db, removers[m], p, NULL))) return fail_db(rc, msg, cap);
    return KN_OK;
}

static int unlink_method(kn_db *db, const char *user_id, method m, const char *device_id, char *msg,
                         size_t cap)
{
    char id[37];
    int rc = check_user_id(user_id, id, msg, cap);
    if (!rc && m == METHOD_DEVICE) rc = kn_auth_check_device_id(device_id, msg, cap);
    if (rc) return rc;
    if ((rc = kn_db_begin(db))) return fail_db(rc, msg, cap);
    if ((rc = unlink_locked(db, id, m, device_id, msg, cap))) {
        kn_db_rollback(db);
        return rc;
    }
    if ((rc = kn_db_commit(db))) return fail_db(rc, msg, cap);
    return KN_OK;
}

int kn_account_unlink_device(kn_db *db, const char *user_id, const char *device_id, char *msg,
                             size_t cap)
{
    return unlink_method(db, user_id, METHOD_DEVICE, device_id, msg, cap);
}

int kn_account_unlink_email(kn_db *db, const char *user_id, char *msg, size_t cap)
{
    return unlink_method(db, user_id, METHOD_EMAIL, NULL, msg, cap);
}

int kn_account_unlink_custom(kn_db *db, const char *user_id, char *msg, size_t cap)
{
    return unlink_method(db, user_id, METHOD_CUSTOM, NULL, msg, cap);
}

/* --- the profile checks, for services whose records carry the same fields -- */

int kn_account_check_text(const char *what, const char *s, size_t max, bool spaces, char *msg,
                          size_t cap)
{
    return check_text(what, s, max, spaces, msg, cap);
}

int kn_account_check_lang_tag(const char *s, char *msg, size_t cap)
{
    return check_lang_tag(s, msg, cap);
}

int kn_account_check_metadata(const char *s, char *msg, size_t cap)
{
    return check_metadata(s, msg, cap);
}
