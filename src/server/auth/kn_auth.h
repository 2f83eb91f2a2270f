/* kn_auth: the authentication service: device, email and custom logins,
 * and the identifier and password rules. The session itself (tokens, rows,
 * refresh, logout, liveness) is the session store's (kn_session.h), which a
 * login calls once it knows the user.
 *
 * One C API used by the wire handlers and, later, by the Lua runtime.
 * Functions taking a kn_db run on an API worker (they block on Postgres).
 * A kn_auth is immutable after create, so it is shared by every thread.
 * Failures return a kn_err and a one-line reason for the client in `msg`.
 *
 * Bans: a user whose users.disable_time is set (kn_account_ban) cannot log in
 * or refresh: device, email and custom login and kn_session_refresh return
 * PERMISSION_DENIED "account is banned". For email the password is checked
 * first, so only someone who knows it learns that the account is banned.
 *
 * The identifier checks and the password hash below are also used by the
 * account service when it links a login method to an existing user, so a
 * device id, email or custom id is accepted by the same rules either way. */
#ifndef KN_AUTH_H
#define KN_AUTH_H

#include "kn_session.h"
#include "kn_token.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_auth kn_auth;

typedef struct kn_auth_config {
    const kn_session_store *sessions; /* issues the sessions logins grant (borrowed) */
} kn_auth_config;

#define KN_AUTH_DEVICE_ID_MIN 10
#define KN_AUTH_DEVICE_ID_MAX 128
#define KN_AUTH_USERNAME_MAX  128
#define KN_AUTH_CUSTOM_ID_MIN 6
#define KN_AUTH_CUSTOM_ID_MAX 128
#define KN_AUTH_EMAIL_MIN 10
#define KN_AUTH_EMAIL_MAX 255
#define KN_AUTH_PASSWORD_MIN 8
#define KN_AUTH_PASSWORD_MAX 128
/* Room for an argon2id hash string (KN_CRYPTO_PWHASH_STR_SIZE). */
#define KN_AUTH_PASSWORD_HASH_SIZE 128

int kn_auth_create(const kn_auth_config *cfg, kn_auth **out);
void kn_auth_destroy(kn_auth *auth); /* accepts NULL */
/* The session store the logins issue sessions from. */
const kn_session_store *kn_auth_sessions(const kn_auth *auth);

/* Authenticate by device id; creates the user (and a username when none is
 * given) if create is true. Unknown device with create=false: NOT_FOUND;
 * username taken: ALREADY_EXISTS. */
int kn_auth_device(const kn_auth *auth, kn_db *db, const char *device_id, const char *username,
                   bool create, const kn_token_var *vars, size_t var_count, int64_t now_sec,
                   kn_session_grant *out, char *msg, size_t msg_cap);

/* Authenticate with email + password. Passwords are hashed with argon2id
 * (kn_crypto_pwhash_str, interactive limits) — slow on purpose, so
 * only on API workers. Wrong password: UNAUTHENTICATED "invalid credentials";
 * unknown email with create=false: NOT_FOUND. */
int kn_auth_email(const kn_auth *auth, kn_db *db, const char *email, const char *password,
                  const char *username, bool create, const kn_token_var *vars, size_t var_count,
                  int64_t now_sec, kn_session_grant *out, char *msg, size_t msg_cap);
int kn_auth_check_email(const char *email, const char *password, const char *username,
                        const kn_token_var *vars, size_t var_count, char *msg, size_t msg_cap);

/* Authenticate with a custom id (an account id from another system). */
int kn_auth_custom(const kn_auth *auth, kn_db *db, const char *custom_id, const char *username,
                   bool create, const kn_token_var *vars, size_t var_count, int64_t now_sec,
                   kn_session_grant *out, char *msg, size_t msg_cap);

/* Validate a device authentication request without touching anything
 * (the first thing kn_auth_device does). */
int kn_auth_check_device(const char *device_id, const char *username, const kn_token_var *vars,
                         size_t var_count, char *msg, size_t msg_cap);

/* Single-identifier checks: KN_OK or INVALID_ARGUMENT with the rule in msg.
 * Usernames are 1-128 printable bytes without spaces (NULL and "" are
 * refused here; logins treat them as "pick one for me" before calling). */
int kn_auth_check_username(const char *username, char *msg, size_t msg_cap);
int kn_auth_check_device_id(const char *device_id, char *msg, size_t msg_cap);
int kn_auth_check_custom_id(const char *custom_id, char *msg, size_t msg_cap);
int kn_auth_check_email_password(const char *email, const char *password, char *msg,
                                 size_t msg_cap);

/* Hash `password` with argon2id (kn_crypto_pwhash_str, interactive limits) into
 * `out` as a NUL-terminated string. Slow and memory-hungry on purpose: API
 * workers only. KN_ERR_NOMEM when the memory for hashing is not available. */
int kn_auth_hash_password(const char *password, char out[KN_AUTH_PASSWORD_HASH_SIZE]);

#endif
