/* kn_token: JWT encode/decode with HMAC-SHA-256 (kn_crypto) and JSON claims (kn_json). */
#include "kn_token.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_mem.h"

#include <string.h>

static const char header_b64[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; /* {"alg":"HS256","typ":"JWT"} */

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
    kn_json *vars = kn_json_object();
    kn_json *obj = NULL;
    if (!vars) goto fail;
    for (size_t i = 0; i < c->var_count; i++)
        if (kn_json_object_set_new(vars, c->vars[i].key, kn_json_string(c->vars[i].value)))
            goto fail;
    /* Key order is the payload's byte order (objects keep insertion order). */
    obj = kn_json_object();
    if (!obj || kn_json_object_set_new(obj, "uid", kn_json_string(c->user_id)) ||
        kn_json_object_set_new(obj, "usn", kn_json_string(c->username)) ||
        kn_json_object_set_new(obj, "tid", kn_json_string(c->session_id)) ||
        kn_json_object_set_new(obj, "iat", kn_json_integer(c->issued_at)) ||
        kn_json_object_set_new(obj, "exp", kn_json_integer(c->expires_at)) ||
        kn_json_object_set_new(obj, "vrs", kn_json_incref(vars)))
        goto fail;
    payload = kn_json_dump(obj, KN_JSON_COMPACT);
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
    kn_json_free_text(payload);
    kn_json_decref(obj);
    kn_json_decref(vars);
    return rc;
}

static int copy_str(char *dst, size_t cap, kn_json *v)
{
    const char *s = kn_json_string_value(v);
    if (!s || strlen(s) >= cap) return KN_ERR_TOKEN_INVALID;
    memcpy(dst, s, strlen(s) + 1);
    return KN_OK;
}

static int parse_claims(kn_json *obj, kn_token_claims *out)
{
    if (!kn_json_is_object(obj)) return KN_ERR_TOKEN_INVALID;
    if (copy_str(out->user_id, sizeof out->user_id, kn_json_object_get(obj, "uid")) ||
        copy_str(out->username, sizeof out->username, kn_json_object_get(obj, "usn")) ||
        copy_str(out->session_id, sizeof out->session_id, kn_json_object_get(obj, "tid")))
        return KN_ERR_TOKEN_INVALID;
    kn_json *exp = kn_json_object_get(obj, "exp"), *iat = kn_json_object_get(obj, "iat");
    if (!kn_json_is_integer(exp)) return KN_ERR_TOKEN_INVALID;
    out->expires_at = kn_json_integer_value(exp);
    out->issued_at = kn_json_is_integer(iat) ? kn_json_integer_value(iat) : 0;
    kn_json *vrs = kn_json_object_get(obj, "vrs");
    if (!vrs) return KN_OK;
    if (!kn_json_is_object(vrs) || kn_json_object_size(vrs) > KN_TOKEN_MAX_VARS)
        return KN_ERR_TOKEN_INVALID;
    size_t n = kn_json_object_size(vrs);
    if (n == 0) return KN_OK;
    out->vars = kn_calloc(n, sizeof *out->vars);
    if (!out->vars) return KN_ERR_NOMEM;
    const char *k;
    kn_json *v;
    kn_json_object_foreach(vrs, k, v)
    {
        if (!kn_json_is_string(v)) return KN_ERR_TOKEN_INVALID;
        kn_token_var *var = &out->vars[out->var_count++];
        var->key = kn_strdup(k);
        var->value = kn_strdup(kn_json_string_value(v));
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
    kn_json *obj = NULL;
    if (kn_crypto_base64_decode((uint8_t *)json, b64_len, dot1 + 1, b64_len, NULL, &json_len, NULL,
                                KN_CRYPTO_BASE64URL) == 0) {
        obj = kn_json_parse(json, json_len, KN_JSON_REJECT_DUPLICATES, NULL);
        rc = obj ? parse_claims(obj, out) : KN_ERR_TOKEN_INVALID;
    }
    kn_json_decref(obj);
    kn_free(json);
    if (rc == KN_OK && out->expires_at <= now_sec) rc = KN_ERR_TOKEN_EXPIRED;
    if (rc) kn_token_claims_deinit(out);
    return rc;
}
