/* kn_token: JWT encode/decode with HMAC-SHA-256 (kn_crypto) and jansson. */
#include "kn_token.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <jansson.h>
#include <string.h>

static const char header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; /* {"alg":"HS256","typ":"JWT"} */

static void mac(const uint8_t *key, size_t key_len, const char *msg, size_t len,
                uint8_t out[KN_CRYPTO_HMAC_SHA256_SIZE])
{
    kn_crypto_hmac_sha256(out, key, key_len, msg, len);
}

void kn_token_claims_deinit(kn_token_claims *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->var_count; i++) {
        kn_free(c->vars[i].key);
        kn_free(c->vars[i].value);
    }
    kn_free(c->vars);
    memset(c, 0, sizeof *c);
}

int kn_token_claims_set_vars(kn_token_claims *dst, const kn_token_var *vars, size_t count)
{
    if (count == 0) return KN_OK;
    if (count > KN_TOKEN_MAX_VARS) return KN_ERR_INVALID_ARGUMENT;
    dst->vars = kn_calloc(count, sizeof *dst->vars);
    if (!dst->vars) return KN_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        dst->vars[i].key = kn_strdup(vars[i].key);
        dst->vars[i].value = kn_strdup(vars[i].value);
        dst->var_count = i + 1;
        if (!dst->vars[i].key || !dst->vars[i].value) return KN_ERR_NOMEM;
    }
    return KN_OK;
}

int kn_token_sign(const kn_token_claims *c, const uint8_t *key, size_t key_len, char **out)
{
    *out = NULL;
    int rc = KN_ERR_NOMEM;
    char *payload = NULL, *token = NULL;
    json_t *vars = json_object();
    json_t *obj = NULL;
    if (!vars) goto fail;
    for (size_t i = 0; i < c->var_count; i++)
        if (json_object_set_new(vars, c->vars[i].key, json_string(c->vars[i].value))) goto fail;
    obj = json_pack("{s:s, s:s, s:s, s:I, s:I, s:O}", "uid", c->user_id, "usn", c->username,
                    "tid", c->session_id, "iat", (json_int_t)c->issued_at, "exp",
                    (json_int_t)c->expires_at, "vrs", vars);
    if (!obj) goto fail;
    payload = json_dumps(obj, JSON_COMPACT);
    if (!payload) goto fail;

    size_t plen = strlen(payload);
    size_t b64_payload = KN_CRYPTO_BASE64_LEN(plen, KN_CRYPTO_BASE64URL);
    size_t b64_mac = KN_CRYPTO_BASE64_LEN(KN_CRYPTO_HMAC_SHA256_SIZE, KN_CRYPTO_BASE64URL);
    size_t cap = sizeof header_b64 + b64_payload + b64_mac + 2;
    if (cap > KN_TOKEN_MAX_LEN) {
        rc = KN_ERR_INVALID_ARGUMENT;
        goto fail;
    }
    token = kn_malloc(cap);
    if (!token) goto fail;
    size_t n = sizeof header_b64 - 1;
    memcpy(token, header_b64, n);
    token[n++] = '.';
    kn_crypto_base64_encode(token + n, cap - n, payload, plen, KN_CRYPTO_BASE64URL);
    n += strlen(token + n);
    uint8_t m[KN_CRYPTO_HMAC_SHA256_SIZE];
    mac(key, key_len, token, n, m);
    token[n++] = '.';
    kn_crypto_base64_encode(token + n, cap - n, m, sizeof m, KN_CRYPTO_BASE64URL);
    *out = token;
    token = NULL;
    rc = KN_OK;
fail:
    kn_free(token);
    free(payload); /* jansson allocates with its own allocator (see kn_token_verify) */
    json_decref(obj);
    json_decref(vars);
    return rc;
}

static int copy_str(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= cap) return KN_ERR_TOKEN_INVALID;
    memcpy(dst, s, strlen(s) + 1);
    return KN_OK;
}

static int parse_claims(json_t *obj, kn_token_claims *out)
{
    if (!json_is_object(obj)) return KN_ERR_TOKEN_INVALID;
    if (copy_str(out->user_id, sizeof out->user_id, json_object_get(obj, "uid")) ||
        copy_str(out->username, sizeof out->username, json_object_get(obj, "usn")) ||
        copy_str(out->session_id, sizeof out->session_id, json_object_get(obj, "tid")))
        return KN_ERR_TOKEN_INVALID;
    json_t *exp = json_object_get(obj, "exp"), *iat = json_object_get(obj, "iat");
    if (!json_is_integer(exp)) return KN_ERR_TOKEN_INVALID;
    out->expires_at = json_integer_value(exp);
    out->issued_at = json_is_integer(iat) ? json_integer_value(iat) : 0;
    json_t *vrs = json_object_get(obj, "vrs");
    if (!vrs) return KN_OK;
    if (!json_is_object(vrs) || json_object_size(vrs) > KN_TOKEN_MAX_VARS)
        return KN_ERR_TOKEN_INVALID;
    size_t n = json_object_size(vrs);
    if (n == 0) return KN_OK;
    out->vars = kn_calloc(n, sizeof *out->vars);
    if (!out->vars) return KN_ERR_NOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(vrs, k, v)
    {
        if (!json_is_string(v)) return KN_ERR_TOKEN_INVALID;
        kn_token_var *var = &out->vars[out->var_count++];
        var->key = kn_strdup(k);
        var->value = kn_strdup(json_string_value(v));
        if (!var->key || !var->value) return KN_ERR_NOMEM;
    }
    return KN_OK;
}

int kn_token_verify(const char *token, const uint8_t *key, size_t key_len, int64_t now_sec,
                    kn_token_claims *out)
{
    memset(out, 0, sizeof *out);
    if (!token) return KN_ERR_TOKEN_INVALID;
    size_t len = strnlen(token, KN_TOKEN_MAX_LEN + 1);
    if (len > KN_TOKEN_MAX_LEN) return KN_ERR_TOKEN_INVALID;
    const char *dot1 = memchr(token, '.', len);
    if (!dot1) return KN_ERR_TOKEN_INVALID;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2) return KN_ERR_TOKEN_INVALID;
    /* We only ever issue one header; anything else (alg none, RS256...) is refused. */
    if ((size_t)(dot1 - token) != sizeof header_b64 - 1 ||
        memcmp(token, header_b64, sizeof header_b64 - 1))
        return KN_ERR_TOKEN_INVALID;

    uint8_t want[KN_CRYPTO_HMAC_SHA256_SIZE], got[KN_CRYPTO_HMAC_SHA256_SIZE];
    size_t got_len = 0;
    const char *sig = dot2 + 1;
    if (kn_crypto_base64_decode(got, sizeof got, sig, len - (size_t)(sig - token), NULL, &got_len,
                                NULL, KN_CRYPTO_BASE64URL) ||
        got_len != sizeof got)
        return KN_ERR_TOKEN_INVALID;
    mac(key, key_len, token, (size_t)(dot2 - token), want);
    if (!kn_crypto_equal(want, got, sizeof want)) return KN_ERR_TOKEN_INVALID;

    size_t b64_len = (size_t)(dot2 - dot1 - 1);
    char *json = kn_malloc(b64_len + 1);
    if (!json) return KN_ERR_NOMEM;
    size_t json_len = 0;
    int rc = KN_ERR_TOKEN_INVALID;
    json_t *obj = NULL;
    if (kn_crypto_base64_decode((uint8_t *)json, b64_len, dot1 + 1, b64_len, NULL, &json_len, NULL,
                                KN_CRYPTO_BASE64URL) == 0) {
        obj = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, NULL);
        rc = obj ? parse_claims(obj, out) : KN_ERR_TOKEN_INVALID;
    }
    json_decref(obj);
    kn_free(json);
    if (rc == KN_OK && out->expires_at <= now_sec) rc = KN_ERR_TOKEN_EXPIRED;
    if (rc) kn_token_claims_deinit(out);
    return rc;
}
