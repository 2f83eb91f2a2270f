/* auth: device, email and custom-id logins; the session store issues the
 * session once the user is known. Every finder also reports whether the
 * user is banned (disable_time set), so no login path can forget the check. */
#include "kn_auth.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <stdio.h>
#include <string.h>

struct kn_auth {
    const kn_session_store *sessions;
};

static const kn_db_stmt find_device = {
    "auth_find_device",
    "SELECT u.id, u.username, NULL, u.disable_time IS NOT NULL"
    " FROM user_device d JOIN users u ON u.id = d.user_id WHERE d.id = $1",
    1};
static const kn_db_stmt find_email = {
    "auth_find_email",
    "SELECT id, username, password, disable_time IS NOT NULL FROM users WHERE email = lower($1)",
    1};
static const kn_db_stmt find_custom = {
    "auth_find_custom",
    "SELECT id, username, NULL, disable_time IS NOT NULL FROM users WHERE custom_id = $1", 1};
static const kn_db_stmt insert_user = {
    "auth_insert_user",
    "INSERT INTO users (id, username, email, custom_id, password)"
    " VALUES ($1, $2, lower($3), $4, $5)",
    5};
static const kn_db_stmt insert_device = {
    "auth_insert_device", "INSERT INTO user_device (id, user_id) VALUES ($1, $2)", 2};
_Static_assert(KN_AUTH_PASSWORD_HASH_SIZE == KN_CRYPTO_PWHASH_STR_SIZE,
               "KN_AUTH_PASSWORD_HASH_SIZE must match kn_crypto's");

int kn_auth_create(const kn_auth_config *cfg, kn_auth **out)
{
    *out = NULL;
    if (!cfg->sessions) return KN_ERR_INVALID_ARGUMENT;
    kn_auth *a = kn_calloc(1, sizeof *a);
    if (!a) return KN_ERR_NOMEM;
    a->sessions = cfg->sessions;
    *out = a;
    return KN_OK;
}

void kn_auth_destroy(kn_auth *a)
{
    kn_free(a);
}

const kn_session_store *kn_auth_sessions(const kn_auth *a)
{
    return a->sessions;
}

/* Printable bytes only (no control characters or spaces): identifiers end up
 * in logs, URLs and other players' screens. */
static bool printable_id(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f) return false;
    return true;
}

static void random_username(char out[11])
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int i = 0; i < 10; i++)
        out[i] = letters[kn_crypto_random_uniform(sizeof letters - 1)];
    out[10] = '\0';
}

/* The ways to log in, each a column (or the device table) naming a user. */
typedef enum { BY_DEVICE, BY_EMAIL, BY_CUSTOM } id_kind;

static const kn_db_stmt *const finders[] = {&find_device, &find_email, &find_custom};
static const char *const not_found[] = {"device not found", "user account not found",
                                        "user account not found"};

/* Creates the user (and for a device its link) in one transaction.
 * KN_ERR_ALREADY_EXISTS with the constraint name tells the caller which race
 * or conflict happened. */
static int create_user(kn_db *db, id_kind kind, const char *id, const char *username,
                       const char *password_hash, char *user_id)
{
    kn_uuid_v4(user_id);
    const char *u[] = {user_id, username, kind == BY_EMAIL ? id : NULL,
                       kind == BY_CUSTOM ? id : NULL, password_hash};
    const char *d[] = {id, user_id};
    int rc = kn_db_begin(db);
    if (rc == KN_OK) rc = kn_db_query(db, &insert_user, u, NULL);
    if (rc == KN_OK && kind == BY_DEVICE) rc = kn_db_query(db, &insert_device, d, NULL);
    if (rc == KN_OK) return kn_db_commit(db);
    kn_db_rollback(db);
    return rc;
}

/* Find the user the identity names, or create it: a concurrent create of
 * the same identity loses on the unique constraint and then finds the
 * winner's user. For email, `password` is checked (existing user) or hashed
 * (new user) with argon2id. */
static int find_or_create(const kn_auth *a, kn_db *db, id_kind kind, const char *id,
                          const char *password, const char *username, bool create,
                          const kn_token_var *vars, size_t var_count, int64_t now,
                          kn_session_grant *out, char *msg, size_t cap)
{
    int rc;
    for (int attempt = 0; attempt < 5; attempt++) {
        kn_db_rows *rows = NULL;
        const char *p[] = {id};
        if ((rc = kn_db_query(db, finders[kind], p, &rows)))
            return kn_err_msg(rc, msg, cap, "database unavailable");
        if (kn_db_rows_count(rows) == 1) {
            const char *hash = kn_db_rows_get(rows, 0, 2);
            if (kind == BY_EMAIL &&
                (!hash || kn_crypto_pwhash_verify(hash, password, strlen(password)) != 0)) {
                kn_db_rows_free(rows);
                return kn_err_msg(KN_ERR_UNAUTHENTICATED, msg, cap, "invalid credentials");
            }
            if (!strcmp(kn_db_rows_get(rows, 0, 3), "t")) {
                kn_db_rows_free(rows);
                return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "account is banned");
            }
            snprintf(out->claims.user_id, sizeof out->claims.user_id, "%s",
                     kn_db_rows_get(rows, 0, 0));
            snprintf(out->claims.username, sizeof out->claims.username, "%s",
                     kn_db_rows_get(rows, 0, 1));
            kn_db_rows_free(rows);
            break;
        }
        kn_db_rows_free(rows);
        if (!create) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "%s", not_found[kind]);

        char hash[KN_AUTH_PASSWORD_HASH_SIZE] = "";
        if (kind == BY_EMAIL && kn_auth_hash_password(password, hash) != KN_OK)
            return kn_err_msg(KN_ERR_NOMEM, msg, cap, "server busy; retry");
        char generated[11];
        const char *name = (username && *username) ? username : NULL;
        if (!name) random_username(generated);
        rc = create_user(db, kind, id, name ? name : generated, kind == BY_EMAIL ? hash : NULL,
                         out->claims.user_id);
        if (rc == KN_OK) {
            snprintf(out->claims.username, sizeof out->claims.username, "%s",
                     name ? name : generated);
            out->created = true;
            break;
        }
        out->claims.user_id[0] = '\0';
        if (rc != KN_ERR_ALREADY_EXISTS) return kn_err_msg(rc, msg, cap, "database unavailable");
        if (!strcmp(kn_db_constraint(db), "users_username_key") && name)
            return kn_err_msg(KN_ERR_ALREADY_EXISTS, msg, cap, "username is already in use");
        /* identity race or generated-name clash: look again / draw a new name */
    }
    if (!out->claims.user_id[0]) return kn_err_msg(KN_ERR_ABORTED, msg, cap, "please retry");

    kn_uuid_v4(out->claims.session_id);
    if ((rc = kn_token_claims_set_vars(&out->claims, vars, var_count)) ||
        (rc = kn_session_issue(a->sessions, db, now, out))) {
        kn_session_grant_deinit(out);
        return kn_err_msg(rc, msg, cap, "cannot issue session");
    }
    return KN_OK;
}

int kn_auth_check_username(const char *username, char *msg, size_t cap)
{
    size_t l = username ? strlen(username) : 0;
    if (l == 0 || l > KN_AUTH_USERNAME_MAX || !printable_id(username))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "username must be 1-%d printable bytes without spaces",
                          KN_AUTH_USERNAME_MAX);
    return KN_OK;
}

int kn_auth_check_device_id(const char *device_id, char *msg, size_t cap)
{
    size_t l = device_id ? strlen(device_id) : 0;
    if (l < KN_AUTH_DEVICE_ID_MIN || l > KN_AUTH_DEVICE_ID_MAX || !printable_id(device_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "device id must be %d-%d printable bytes without spaces",
                          KN_AUTH_DEVICE_ID_MIN, KN_AUTH_DEVICE_ID_MAX);
    return KN_OK;
}

int kn_auth_check_custom_id(const char *custom_id, char *msg, size_t cap)
{
    size_t l = custom_id ? strlen(custom_id) : 0;
    if (l < KN_AUTH_CUSTOM_ID_MIN || l > KN_AUTH_CUSTOM_ID_MAX || !printable_id(custom_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "custom id must be %d-%d printable bytes without spaces",
                          KN_AUTH_CUSTOM_ID_MIN, KN_AUTH_CUSTOM_ID_MAX);
    return KN_OK;
}

int kn_auth_check_email_password(const char *email, const char *password, char *msg, size_t cap)
{
    size_t el = email ? strlen(email) : 0, pl = password ? strlen(password) : 0;
    if (el < KN_AUTH_EMAIL_MIN || el > KN_AUTH_EMAIL_MAX || !strchr(email, '@') ||
        !printable_id(email))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "email must be %d-%d printable bytes with an '@'", KN_AUTH_EMAIL_MIN,
                          KN_AUTH_EMAIL_MAX);
    if (pl < KN_AUTH_PASSWORD_MIN || pl > KN_AUTH_PASSWORD_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "password must be %d-%d bytes",
                          KN_AUTH_PASSWORD_MIN, KN_AUTH_PASSWORD_MAX);
    return KN_OK;
}

int kn_auth_hash_password(const char *password, char out[KN_AUTH_PASSWORD_HASH_SIZE])
{
    return kn_crypto_pwhash_str(out, password, strlen(password));
}

int kn_auth_check_device(const char *device_id, const char *username, const kn_token_var *vars,
                         size_t var_count, char *msg, size_t cap)
{
    int rc = kn_auth_check_device_id(device_id, msg, cap);
    if (rc == KN_OK && username && *username) rc = kn_auth_check_username(username, msg, cap);
    return rc ? rc : kn_session_check_vars(vars, var_count, msg, cap);
}

int kn_auth_device(const kn_auth *a, kn_db *db, const char *device_id, const char *username,
                   bool create, const kn_token_var *vars, size_t var_count, int64_t now,
                   kn_session_grant *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = kn_auth_check_device(device_id, username, vars, var_count, msg, cap);
    if (rc) return rc;
    return find_or_create(a, db, BY_DEVICE, device_id, NULL, username, create, vars, var_count,
                          now, out, msg, cap);
}

int kn_auth_check_email(const char *email, const char *password, const char *username,
                        const kn_token_var *vars, size_t var_count, char *msg, size_t cap)
{
    int rc = kn_auth_check_email_password(email, password, msg, cap);
    if (rc == KN_OK && username && *username) rc = kn_auth_check_username(username, msg, cap);
    return rc ? rc : kn_session_check_vars(vars, var_count, msg, cap);
}

int kn_auth_email(const kn_auth *a, kn_db *db, const char *email, const char *password,
                  const char *username, bool create, const kn_token_var *vars, size_t var_count,
                  int64_t now, kn_session_grant *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = kn_auth_check_email(email, password, username, vars, var_count, msg, cap);
    if (rc) return rc;
    return find_or_create(a, db, BY_EMAIL, email, password, username, create, vars, var_count,
                          now, out, msg, cap);
}

int kn_auth_custom(const kn_auth *a, kn_db *db, const char *custom_id, const char *username,
                   bool create, const kn_token_var *vars, size_t var_count, int64_t now,
                   kn_session_grant *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = kn_auth_check_custom_id(custom_id, msg, cap);
    if (rc == KN_OK && username && *username) rc = kn_auth_check_username(username, msg, cap);
    if (rc == KN_OK) rc = kn_session_check_vars(vars, var_count, msg, cap);
    if (rc) return rc;
    return find_or_create(a, db, BY_CUSTOM, custom_id, NULL, username, create, vars, var_count,
                          now, out, msg, cap);
}
