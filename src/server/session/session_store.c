/* session_store: session tokens and their user_session rows (kn_session.h,
 * "the session store").
 *
 * Invariants: a session is live exactly while its user_session row exists
 * and has not expired; each refresh token works once (a refresh consumes
 * the row and inserts the new session's). The store itself is immutable
 * after create, so every thread shares it. */
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_session.h"
#include "kn_uuid.h"

#include <stdio.h>
#include <string.h>

struct kn_session_store {
    uint8_t session_key[64];
    size_t session_key_len;
    uint8_t refresh_key[64];
    size_t refresh_key_len;
    int64_t session_expiry_sec, refresh_expiry_sec;
};

static const kn_db_stmt insert_session = {
    "session_insert",
    "INSERT INTO user_session (id, user_id, expires_at) VALUES ($1, $2, to_timestamp($3))", 3};
static const kn_db_stmt consume_session = {
    "session_consume",
    "DELETE FROM user_session WHERE id = $1 AND user_id = $2 AND expires_at > now() RETURNING id",
    2};
static const kn_db_stmt delete_session = {
    "session_delete", "DELETE FROM user_session WHERE id = $1 AND user_id = $2", 2};
static const kn_db_stmt delete_user_sessions = {"session_delete_user",
                                                "DELETE FROM user_session WHERE user_id = $1", 1};
static const kn_db_stmt session_state = {
    "session_state",
    "SELECT u.disable_time IS NOT NULL, EXISTS (SELECT 1 FROM user_session s"
    " WHERE s.id = $1 AND s.user_id = u.id AND s.expires_at > now())"
    " FROM users u WHERE u.id = $2",
    2};
static const kn_db_stmt find_user = {
    "session_find_user", "SELECT username, disable_time IS NOT NULL FROM users WHERE id = $1", 1};

int kn_session_store_create(const kn_session_store_config *cfg, kn_session_store **out)
{
    *out = NULL;
    if (cfg->session_key_len == 0 || cfg->session_key_len > 64 || cfg->refresh_key_len == 0 ||
        cfg->refresh_key_len > 64)
        return KN_ERR_INVALID_ARGUMENT;
    kn_session_store *a = kn_calloc(1, sizeof *a);
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

void kn_session_store_destroy(kn_session_store *a)
{
    if (!a) return;
    kn_crypto_wipe(a, sizeof *a);
    kn_free(a);
}

void kn_session_grant_deinit(kn_session_grant *s)
{
    if (!s) return;
    kn_free(s->token);
    kn_free(s->refresh_token);
    kn_token_claims_deinit(&s->claims);
    memset(s, 0, sizeof *s);
}

int kn_session_check_vars(const kn_token_var *vars, size_t n, char *msg, size_t cap)
{
    if (n > KN_TOKEN_MAX_VARS)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d session vars",
                          KN_TOKEN_MAX_VARS);
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(vars[i].key), vl = strlen(vars[i].value);
        if (kl == 0 || kl > KN_SESSION_VAR_KEY_MAX || vl > KN_SESSION_VAR_VALUE_MAX)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "session var keys must be 1-%d bytes and values at most %d bytes",
                              KN_SESSION_VAR_KEY_MAX, KN_SESSION_VAR_VALUE_MAX);
    }
    return KN_OK;
}

int kn_session_issue(const kn_session_store *a, kn_db *db, int64_t now, kn_session_grant *out)
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

int kn_session_refresh(const kn_session_store *a, kn_db *db, const char *refresh_token,
                       const kn_token_var *vars, size_t var_count, int64_t now,
                       kn_session_grant *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = kn_session_check_vars(vars, var_count, msg, cap);
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
    if (rc == KN_OK) rc = kn_session_issue(a, db, now, out);
    if (rc) {
        kn_session_grant_deinit(out);
        return kn_err_msg(rc, msg, cap, "cannot issue session");
    }
    return KN_OK;
}

int kn_session_logout(kn_db *db, const char *session_id, const char *user_id)
{
    const char *p[] = {session_id, user_id};
    return kn_db_query(db, &delete_session, p, NULL);
}

int kn_session_logout_all(kn_db *db, const char *user_id)
{
    const char *p[] = {user_id};
    return kn_db_query(db, &delete_user_sessions, p, NULL);
}

int kn_session_verify(const kn_session_store *a, const char *token, int64_t now,
                      kn_token_claims *out)
{
    return kn_token_verify(token, a->session_key, a->session_key_len, now, out);
}

/* Lower-case canonical UUID, the form Postgres prints; false if not one. */
static bool norm_id(const char *in, char out[37])
{
    if (!in || !kn_uuid_valid(in)) return false;
    for (int i = 0; i < 36; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] + 32 : in[i]);
    out[36] = '\0';
    return true;
}

int kn_session_live(kn_db *db, const char *session_id, const char *user_id, char *msg, size_t cap)
{
    char uid[37], sid[37];
    if (!norm_id(user_id, uid))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user id must be a UUID");
    if (!strcmp(uid, "00000000-0000-0000-0000-000000000000")) /* owns system storage only */
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user not found");
    if (!norm_id(session_id, sid))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "session id must be a UUID");
    kn_db_rows *rows = NULL;
    const char *p[] = {sid, uid};
    int rc = kn_db_query(db, &session_state, p, &rows);
    if (rc)
        return kn_err_msg(rc, msg, cap, "%s",
                          rc == KN_ERR_NOMEM     ? "out of memory"
                          : rc == KN_ERR_ABORTED ? "please retry"
                                                 : "database unavailable");
    bool found = kn_db_rows_count(rows) == 1;
    bool banned = found && kn_db_rows_get(rows, 0, 0)[0] == 't';
    bool live = found && kn_db_rows_get(rows, 0, 1)[0] == 't';
    kn_db_rows_free(rows);
    if (!found) return kn_err_msg(KN_ERR_UNAUTHENTICATED, msg, cap, "user no longer exists");
    if (banned) return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "account is banned");
    if (!live) return kn_err_msg(KN_ERR_UNAUTHENTICATED, msg, cap, "session has ended");
    return KN_OK;
}
