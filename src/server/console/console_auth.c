/* console_auth: console users, sessions and the audit log in Postgres.
 *
 * Passwords are argon2id strings (kn_crypto_pwhash_str); a session is
 * stored under the SHA-256 of its token, so a read of the table opens no
 * session. Login compares a password even for an unknown user (against a
 * fixed hash), so the time taken does not say which usernames exist. */
#include "kn_console.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const kn_db_stmt insert_user = {
    "console_user_insert",
    "INSERT INTO console_user (username, role, password) VALUES ($1, $2, $3)", 3};
static const kn_db_stmt update_password = {
    "console_user_passwd",
    "UPDATE console_user SET password = $2, update_time = now() WHERE username = $1"
    " RETURNING id::text",
    2};
static const kn_db_stmt end_user_sessions = {
    "console_user_sessions_end", "DELETE FROM console_session WHERE user_id = $1::bigint", 1};
static const kn_db_stmt delete_user = {"console_user_delete",
                                       "DELETE FROM console_user WHERE username = $1", 1};
static const kn_db_stmt count_users = {"console_user_count",
                                       "SELECT count(*)::text FROM console_user", 0};
static const kn_db_stmt find_user = {
    "console_user_find", "SELECT id::text, role, password FROM console_user WHERE username = $1",
    1};
static const kn_db_stmt insert_session = {
    "console_session_insert",
    "INSERT INTO console_session (token_hash, user_id, csrf, expire_time)"
    " VALUES ($1, $2::bigint, $3, now() + make_interval(secs => $4::bigint))",
    4};
static const kn_db_stmt find_session = {
    "console_session_find",
    "SELECT u.id::text, u.username, u.role, s.csrf FROM console_session s"
    " JOIN console_user u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expire_time > now()",
    1};
static const kn_db_stmt delete_session = {
    "console_session_delete",
    "DELETE FROM console_session WHERE token_hash = $1 OR expire_time < now() - interval '1 day'",
    1};
static const kn_db_stmt insert_audit = {
    "console_audit_insert",
    "INSERT INTO console_audit (username, role, action, target, detail, result, address)"
    " VALUES ($1, $2, $3, $4, $5, $6::int, $7)",
    7};

static int check_username(const char *u, char *msg, size_t cap)
{
    size_t n = u ? strlen(u) : 0;
    if (!n || n > KN_CONSOLE_USERNAME_MAX) goto bad;
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '@' || c == '-'))
            goto bad;
    }
    return KN_OK;
bad:
    snprintf(msg, cap, "a console username is 1-%d of A-Z a-z 0-9 _ . @ -",
             KN_CONSOLE_USERNAME_MAX);
    return KN_ERR_INVALID_ARGUMENT;
}

static int check_password(const char *p, char *msg, size_t cap)
{
    size_t n = p ? strlen(p) : 0;
    if (n < KN_CONSOLE_PASSWORD_MIN || n > 1024) {
        snprintf(msg, cap, "a console password is %d-1024 bytes", KN_CONSOLE_PASSWORD_MIN);
        return KN_ERR_INVALID_ARGUMENT;
    }
    return KN_OK;
}

/* Checks a username and a new password and hashes the password. */
static int checked_hash(const char *username, const char *password,
                        char hash[KN_CRYPTO_PWHASH_STR_SIZE], char *msg, size_t cap)
{
    int rc;
    if ((rc = check_username(username, msg, cap)) || (rc = check_password(password, msg, cap)))
        return rc;
    return kn_crypto_pwhash_str(hash, password, strlen(password));
}

/* Hex SHA-256 of a token: the session's key in the table. */
static void token_key(const char *token, char hex[2 * KN_CRYPTO_SHA256_SIZE + 1])
{
    uint8_t h[KN_CRYPTO_SHA256_SIZE];
    kn_crypto_sha256(h, token, strlen(token));
    kn_crypto_hex_encode(hex, 2 * KN_CRYPTO_SHA256_SIZE + 1, h, sizeof h);
}

static void random_token(char *out, size_t cap)
{
    uint8_t raw[32];
    kn_crypto_random(raw, sizeof raw);
    kn_crypto_base64_encode(out, cap, raw, sizeof raw, KN_CRYPTO_BASE64URL);
    kn_crypto_wipe(raw, sizeof raw);
}

int kn_console_user_add(kn_db *db, const char *username, const char *password, kn_console_role role,
                        char *msg, size_t msg_cap)
{
    char hash[KN_CRYPTO_PWHASH_STR_SIZE];
    int rc = checked_hash(username, password, hash, msg, msg_cap);
    if (rc) return rc;
    const char *params[] = {username, kn_console_role_name(role), hash};
    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, &insert_user, params, &rows);
    kn_db_rows_free(rows);
    if (rc == KN_ERR_ALREADY_EXISTS) {
        snprintf(msg, msg_cap, "console user %s exists", username);
        return rc;
    }
    return rc ? kn_db_fail(rc, msg, msg_cap) : KN_OK;
}

int kn_console_user_passwd(kn_db *db, const char *username, const char *password, char *msg,
                           size_t msg_cap)
{
    char hash[KN_CRYPTO_PWHASH_STR_SIZE];
    int rc = checked_hash(username, password, hash, msg, msg_cap);
    if (rc) return rc;
    const char *params[] = {username, hash};
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(db, &update_password, params, &rows)))
        return kn_db_fail(rc, msg, msg_cap);
    if (!kn_db_rows_count(rows)) {
        kn_db_rows_free(rows);
        snprintf(msg, msg_cap, "no console user %s", username);
        return KN_ERR_NOT_FOUND;
    }
    const char *id[] = {kn_db_rows_get(rows, 0, 0)};
    kn_db_rows *gone = NULL;
    rc = kn_db_query(db, &end_user_sessions, id, &gone);
    kn_db_rows_free(gone);
    kn_db_rows_free(rows);
    return rc ? kn_db_fail(rc, msg, msg_cap) : KN_OK;
}

int kn_console_user_remove(kn_db *db, const char *username, char *msg, size_t msg_cap)
{
    const char *params[] = {username};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &delete_user, params, &rows);
    if (rc) return kn_db_fail(rc, msg, msg_cap);
    size_t n = kn_db_rows_affected(rows);
    kn_db_rows_free(rows);
    if (!n) {
        snprintf(msg, msg_cap, "no console user %s", username);
        return KN_ERR_NOT_FOUND;
    }
    return KN_OK;
}

int kn_console_bootstrap(kn_db *db, const char *password, char *generated, size_t cap,
                         bool *created, char *msg, size_t msg_cap)
{
    *created = false;
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &count_users, NULL, &rows);
    if (rc) return kn_db_fail(rc, msg, msg_cap);
    bool empty = !strcmp(kn_db_rows_get(rows, 0, 0), "0");
    kn_db_rows_free(rows);
    if (!empty) return KN_OK;
    char pw[64];
    if (password && *password) {
        snprintf(pw, sizeof pw, "%s", password);
    } else {
        uint8_t raw[18];
        kn_crypto_random(raw, sizeof raw);
        kn_crypto_base64_encode(pw, sizeof pw, raw, sizeof raw, KN_CRYPTO_BASE64URL);
        if (generated) snprintf(generated, cap, "%s", pw);
    }
    rc = kn_console_user_add(db, "admin", pw, KN_CONSOLE_ADMIN, msg, msg_cap);
    kn_crypto_wipe(pw, sizeof pw);
    if (rc == KN_ERR_ALREADY_EXISTS) return KN_OK; /* another node made it first */
    if (!rc) *created = true;
    return rc;
}

/* An argon2id string of a random password, made once: an unknown user
 * costs one verification too. */
static char dummy[KN_CRYPTO_PWHASH_STR_SIZE];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
    char pw[48];
    random_token(pw, sizeof pw);
    if (kn_crypto_pwhash_str(dummy, pw, strlen(pw))) dummy[0] = '\0';
}

int kn_console_login(kn_db *db, const char *username, const char *password, int64_t ttl_sec,
                     char token[KN_CONSOLE_TOKEN_LEN + 1], kn_console_who *who, char *msg,
                     size_t msg_cap)
{
    pthread_once(&dummy_once, make_dummy);
    memset(who, 0, sizeof *who);
    const char *params[] = {username ? username : ""};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &find_user, params, &rows);
    if (rc) return kn_db_fail(rc, msg, msg_cap);
    bool found = kn_db_rows_count(rows) == 1;
    const char *hash = found ? kn_db_rows_get(rows, 0, 2) : dummy;
    const char *pw = password ? password : "";
    rc = kn_crypto_pwhash_verify(hash, pw, strlen(pw));
    if (rc || !found || kn_console_role_parse(kn_db_rows_get(rows, 0, 1), &who->role)) {
        kn_db_rows_free(rows);
        snprintf(msg, msg_cap, "wrong username or password");
        return KN_ERR_UNAUTHENTICATED;
    }
    const char *id = kn_db_rows_get(rows, 0, 0);
    who->user_id = strtoll(id, NULL, 10);
    snprintf(who->username, sizeof who->username, "%s", username);
    random_token(token, KN_CONSOLE_TOKEN_LEN + 1);
    random_token(who->csrf, sizeof who->csrf);
    char key[2 * KN_CRYPTO_SHA256_SIZE + 1], ttl[24];
    token_key(token, key);
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_sec > 0 ? ttl_sec : 3600);
    const char *sp[] = {key, id, who->csrf, ttl};
    kn_db_rows *ins = NULL;
    rc = kn_db_query(db, &insert_session, sp, &ins);
    kn_db_rows_free(ins);
    kn_db_rows_free(rows);
    return rc ? kn_db_fail(rc, msg, msg_cap) : KN_OK;
}

int kn_console_session_get(kn_db *db, const char *token, kn_console_who *who)
{
    memset(who, 0, sizeof *who);
    if (!token || strlen(token) != KN_CONSOLE_TOKEN_LEN) return KN_ERR_UNAUTHENTICATED;
    char key[2 * KN_CRYPTO_SHA256_SIZE + 1];
    token_key(token, key);
    const char *params[] = {key};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &find_session, params, &rows);
    if (rc) return rc;
    if (kn_db_rows_count(rows) != 1 ||
        kn_console_role_parse(kn_db_rows_get(rows, 0, 2), &who->role)) {
        kn_db_rows_free(rows);
        return KN_ERR_UNAUTHENTICATED;
    }
    who->user_id = strtoll(kn_db_rows_get(rows, 0, 0), NULL, 10);
    snprintf(who->username, sizeof who->username, "%s", kn_db_rows_get(rows, 0, 1));
    snprintf(who->csrf, sizeof who->csrf, "%s", kn_db_rows_get(rows, 0, 3));
    kn_db_rows_free(rows);
    return KN_OK;
}

int kn_console_logout(kn_db *db, const char *token)
{
    char key[2 * KN_CRYPTO_SHA256_SIZE + 1];
    token_key(token ? token : "", key);
    const char *params[] = {key};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &delete_session, params, &rows);
    kn_db_rows_free(rows);
    return rc;
}

int kn_console_audit(kn_db *db, const kn_console_who *who, const char *action, const char *target,
                     const char *detail, int result, const char *address)
{
    char res[16];
    snprintf(res, sizeof res, "%d", kn_err_to_wire(result));
    const char *params[] = {who ? who->username : "",
                            who ? kn_console_role_name(who->role) : "",
                            action,
                            target ? target : "",
                            detail ? detail : "",
                            res,
                            address ? address : ""};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &insert_audit, params, &rows);
    kn_db_rows_free(rows);
    if (rc) KN_ERROR("console: could not write the audit row of %s: %s", action, kn_err_text(rc));
    return rc;
}
