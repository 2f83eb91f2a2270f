/* kn_token: session and refresh tokens as standard JWTs (HS256).
 *
 * Header {"alg":"HS256","typ":"JWT"}; claims: uid (user id), usn (username),
 * tid (session id), iat and exp (Unix seconds), vrs (session variables, an
 * object of strings). The MAC is HMAC-SHA-256 from kn_crypto, compared in
 * constant time; any other alg (including "none") is refused. Session and
 * refresh tokens share the format and differ by key and lifetime.
 * Pure functions of their inputs (time is a parameter): thread-safe. */
#ifndef KN_TOKEN_H
#define KN_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define KN_TOKEN_MAX_LEN  8192
#define KN_TOKEN_MAX_VARS 32

typedef struct kn_token_var {
    char *key;
    char *value;
} kn_token_var;

typedef struct kn_token_claims {
    char user_id[37]; /* canonical UUID text */
    char username[129];
    char session_id[37];
    int64_t issued_at;  /* Unix seconds */
    int64_t expires_at; /* Unix seconds */
    kn_token_var *vars; /* owned; var_count entries */
    size_t var_count;
} kn_token_claims;

/* Sign claims into a token; *out is kn_malloc'd, NUL-terminated. */
int kn_token_sign(const kn_token_claims *claims, const uint8_t *key, size_t key_len, char **out);

/* Verify signature, format and expiry (exp <= now_sec is expired).
 * Fills *out (release with kn_token_claims_deinit). KN_ERR_TOKEN_INVALID for
 * a bad format or signature, KN_ERR_TOKEN_EXPIRED for an expired token. On
 * error *out is left zeroed. */
int kn_token_verify(const char *token, const uint8_t *key, size_t key_len, int64_t now_sec,
                    kn_token_claims *out);

/* Deep copy of vars into dst (dst->vars must be NULL). */
int kn_token_claims_set_vars(kn_token_claims *dst, const kn_token_var *vars, size_t count);
void kn_token_claims_deinit(kn_token_claims *claims); /* accepts zeroed */

#endif
