/* auth: device, email and custom-id authentication, token issue and refresh.
 * Every finder also reports whether the user is banned (disable_time set), so
 * no login path can forget the check. */
#include "kn_auth.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <stdio.h>
#include <string.h>

struct kn_auth {
    uint8_t session_key[64];
    size_t session_key_len;
    uint8_t refresh_key[64];
    size_t refresh_key_len;
    int64_t session_expiry_sec, refresh_expiry_sec;
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
static const kn_db_stmt insert_session = {
    "auth_insert_session",
    "INSERT INTO user_session (id, user_id, expires_at) VALUES ($1, $2, to_timestamp($3))", 3};
static const kn_db_stmt consume_session = {
    "auth_consume_session",
    "DELETE FROM user_session WHERE id = $1 AND user_id = $2 AND expires_at > now() RETURNING id",
    2};
static const kn_db_stmt delete_session = {
    "auth_delete_session", "DELETE FROM user_session WHERE id = $1 AND user_id = $2", 2};
static const kn_db_stmt delete_user_sessions = {
    "auth_delete_user_sessions", "DELETE FROM user_session WHERE user_id = $1", 1};
static const kn_db_stmt insert_device = {
    "auth_insert_device", "INSERT INTO user_device (id, user_id) VALUES ($1, $2)", 2};
static const kn_db_stmt find_user = {
    "auth_find_user", "SELECT username, disable_time IS NOT NULL FROM users WHERE id = $1", 1};

_Static_assert(KN_AUTH_PASSWORD_HASH_SIZE == KN_CRYPTO_PWHASH_STR_SIZE,
               "KN_AUTH_PASSWORD_HASH_SIZE must match kn_crypto's");

int kn_auth_create(const kn_auth_config *cfg, kn_auth **out)
{
    *out = NULL;
    if (cfg->session_key_len == 0 || cfg->session_key_len > 64 || cfg->refresh_key_len == 0 ||
        cfg->refresh_key_len > 64)
        return KN_ERR_INVALID_ARGUMENT;
    kn_auth *a = kn_calloc(1, sizeof *a);
    if (!a) return KN_ERR_NOMEM;
    memcpy(a->session_key, cfg->session_key, cfg->session_key_len);
    a->session_key_len = cfg->session_key_len;
    memcpy(a->refresh_key, cfg->refresh_key, cfg->refresh_key_len);
    a->refresh_key_len = cfg->refresh_key_len;
    a->session_expiry_sec = cfg->session_expiry_sec;
    a->refresh_expiry_sec = cfg->refresh_expiry_sec;
    *out = a;
    return KN_OK;
}

void kn_auth_destroy(kn_auth *a)
{
    if (!a) return;
    kn_crypto_wipe(a, sizeof *a);
    kn_free(a);
}

void kn_auth_session_deinit(kn_auth_session *s)
{
    if (!s) return;
    kn_free(s->token);
    kn_free(s->refresh_token);
    kn_token_claims_deinit(&s->claims);
    memset(s, 0, sizeof *s);
}

/* Printable bytes only (no control characters or spaces): identifiers end up
 * in logs, URLs and other players' screens. */
static bool printable_id(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f) return false;
    return true;
}

int kn_auth_check_vars(const kn_token_var *vars, size_t n, char *msg, size_t cap)
{
    if (n > KN_TOKEN_MAX_VARS)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d session vars",
                          KN_TOKEN_MAX_VARS);
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(vars[i].key), vl = strlen(vars[i].value);
        if (kl == 0 || kl > KN_AUTH_VAR_KEY_MAX || vl > KN_AUTH_VAR_VALUE_MAX)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "session var keys must be 1-%d bytes and values at most %d bytes",
                              KN_AUTH_VAR_KEY_MAX, KN_AUTH_VAR_VALUE_MAX);
    }
    return KN_OK;
}

/* Signs both tokens for claims already filled (except times) and records
 * the refresh token as valid. */
static int issue(const kn_auth *a, kn_db *db, int64_t now, kn_auth_session *out)
{
    out->claims.issued_at = now;
    out->claims.expires_at = now + a->session_expiry_sec;
    int rc = kn_token_sign(&out->claims, a->session_key, a->session_key_len, &out->token);
    if (rc) return rc;
    kn_token_claims refresh = out->claims; /* shallow: same vars, other expiry */
    refresh.expires_at = now + a->refresh_expiry_sec;
    rc = kn_token_sign(&refresh, a->refresh_key, a->refresh_key_len, &out->refresh_token);
    if (rc) return rc;
    char exp[24];
    snprintf(exp, sizeof exp, "%lld", (long long)refresh.expires_at);
    const char *p[] = {out->claims.session_id, out->claims.user_id, exp};
    return kn_db_query(db, &insert_session, p, NULL);
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
                          kn_auth_session *out, char *msg, size_t cap)
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
        (rc = issue(a, db, now, out))) {
        kn_auth_session_deinit(out);
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
    return rc ? rc : kn_auth_check_vars(vars, var_count, msg, cap);
}

int kn_auth_device(const kn_auth *a, kn_db *db, const char *device_id, const char *username,
                   bool create, const kn_token_var *vars, size_t var_count, int64_t now,
                   kn_auth_session *out, char *msg, size_t cap)
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
    return rc ? rc : kn_auth_check_vars(vars, var_count, msg, cap);
}

int kn_auth_email(const kn_auth *a, kn_db *db, const char *email, const char *password,
                  const char *username, bool create, const kn_token_var *vars, size_t var_count,
                  int64_t now, kn_auth_session *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = kn_auth_check_email(email, password, username, vars, var_count, msg, cap);
    if (rc) return rc;
    return find_or_create(a, db, BY_EMAIL, email, password, username, create, vars, var_count,
                          now, out, msg, cap);
}

int kn_auth_custom(const kn_auth *a, kn_db *db, const char *custom_id, const char *username,
                   bool create, const kn_token_var *vars, size_t var_count, int64_t now,
                   kn_auth_session *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = kn_auth_check_custom_id(custom_id, msg, cap);
    if (rc == KN_OK && username && *username) rc = kn_auth_check_username(username, msg, cap);
    if (rc == KN_OK) rc = kn_auth_check_vars(vars, var_count, msg, cap);
    if (rc) return rc;
    return find_or_create(a, db, BY_CUSTOM, custom_id, NULL, username, create, vars, var_count,
                          now, out, msg, cap);
}

int kn_auth_refresh(const kn_auth *a, kn_db *db, const char *refresh_token,
                    const kn_token_var *vars, size_t var_count, int64_t now,
                    kn_auth_session *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = kn_auth_check_vars(vars, var_count, msg, cap);
    if (rc) return rc;
    kn_token_claims old;
    rc = kn_token_verify(refresh_token, a->refresh_key, a->refresh_key_len, now, &old);
    if (rc == KN_ERR_TOKEN_EXPIRED) return kn_err_msg(rc, msg, cap, "refresh token expired");
    if (rc == KN_ERR_NOMEM) return kn_err_msg(rc, msg, cap, "out of memory");
    if (rc) return kn_err_msg(KN_ERR_TOKEN_INVALID, msg, cap, "refresh token invalid");

    /* The user may have been deleted or banned since; the username may have
     * changed. Looked up before the token is consumed: a ban also deletes the
     * user's refresh tokens, and a banned user should hear that it is banned
     * rather than that the token was used. */
    kn_db_rows *rows = NULL;
    const char *p[] = {old.user_id};
    rc = kn_db_query(db, &find_user, p, &rows);
    if (rc == KN_OK && kn_db_rows_count(rows) != 1) rc = KN_ERR_NOT_FOUND;
    if (rc == KN_OK && !strcmp(kn_db_rows_get(rows, 0, 1), "t")) rc = KN_ERR_PERMISSION_DENIED;
    if (rc) {
        kn_db_rows_free(rows);
        kn_token_claims_deinit(&old);
        if (rc == KN_ERR_PERMISSION_DENIED) return kn_err_msg(rc, msg, cap, "account is banned");
        return kn_err_msg(rc == KN_ERR_NOT_FOUND ? KN_ERR_UNAUTHENTICATED : rc, msg, cap,
                          rc == KN_ERR_NOT_FOUND ? "user no longer exists"
                                                 : "database unavailable");
    }
    snprintf(out->claims.user_id, sizeof out->claims.user_id, "%s", old.user_id);
    snprintf(out->claims.username, sizeof out->claims.username, "%s", kn_db_rows_get(rows, 0, 0));
    kn_db_rows_free(rows);
    rows = NULL;

    /* Rotation: each refresh token works once; logout revoked it too. */
    const char *sp[] = {old.session_id, old.user_id};
    rc = kn_db_query(db, &consume_session, sp, &rows);
    size_t consumed = kn_db_rows_count(rows);
    kn_db_rows_free(rows);
    if (rc || consumed != 1) {
        memset(&out->claims, 0, sizeof out->claims);
        kn_token_claims_deinit(&old);
        if (rc) return kn_err_msg(rc, msg, cap, "database unavailable");
        return kn_err_msg(KN_ERR_UNAUTHENTICATED, msg, cap,
                          "refresh token already used or revoked");
    }
    kn_uuid_v4(out->claims.session_id);
    if (var_count) {
        rc = kn_token_claims_set_vars(&out->claims, vars, var_count);
    } else {
        out->claims.vars = old.vars; /* move */
        out->claims.var_count = old.var_count;
        old.vars = NULL;
        old.var_count = 0;
    }
    kn_token_claims_deinit(&old);
    if (rc == KN_OK) rc = issue(a, db, now, out);
    if (rc) {
        kn_auth_session_deinit(out);
        return kn_err_msg(rc, msg, cap, "cannot issue session");
    }
    return KN_OK;
}

int kn_auth_logout(const kn_auth *a, kn_db *db, const char *session_id, const char *user_id)
{
    (void)a;
    const char *p[] = {session_id, user_id};
    return kn_db_query(db, &delete_session, p, NULL);
}

int kn_auth_logout_all(const kn_auth *a, kn_db *db, const char *user_id)
{
    (void)a;
    const char *p[] = {user_id};
    return kn_db_query(db, &delete_user_sessions, p, NULL);
}

int kn_auth_verify_session(const kn_auth *a, const char *token, int64_t now, kn_token_claims *out)
{
    return kn_token_verify(token, a->session_key, a->session_key_len, now, out);
}
