/* JWT tokens: sign/verify, expiry, tampering, wrong key, alg confusion. */
#include "failalloc.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_token.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t other_key[32] = "ffffffffffffffffffffffffffffffff";

static void make_claims(kn_token_claims *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->user_id, "6f1e2c1a-7b7e-4c1e-9d3a-2b1f0e4d5c6b");
    strcpy(c->username, "alice");
    strcpy(c->session_id, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
    c->issued_at = 1000;
    c->expires_at = 2000;
}

static char *sign(const kn_token_claims *c, const uint8_t *k)
{
    char *t;
    assert_int_equal(kn_token_sign(c, k, 32, &t), KN_OK);
    return t;
}

static void signed_token_verifies_with_its_claims(void **state)
{
    kn_token_claims c;
    make_claims(&c);
    kn_token_var vars[] = {{"region", "eu"}, {"tier", "gold"}};
    assert_int_equal(kn_token_claims_set_vars(&c, vars, 2), KN_OK);
    char *t = sign(&c, key);
    assert_int_equal(strncmp(t, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37), 0);
    kn_token_claims out;
    assert_int_equal(kn_token_verify(t, key, 32, 1500, &out), KN_OK);
    assert_string_equal(out.user_id, c.user_id);
    assert_string_equal(out.username, "alice");
    assert_string_equal(out.session_id, c.session_id);
    assert_int_equal(out.expires_at, 2000);
    assert_int_equal(out.issued_at, 1000);
    assert_int_equal(out.var_count, 2);
    /* jansson keeps insertion order */
    assert_string_equal(out.vars[0].key, "region");
    assert_string_equal(out.vars[1].value, "gold");
    kn_token_claims_deinit(&out);
    kn_token_claims_deinit(&c);
    kn_free(t);
}

static void expired_token_is_refused(void **state)
{
    kn_token_claims c, out;
    make_claims(&c);
    char *t = sign(&c, key);
    assert_int_equal(kn_token_verify(t, key, 32, 2000, &out), KN_ERR_TOKEN_EXPIRED);
    assert_int_equal(kn_token_verify(t, key, 32, 1999, &out), KN_OK);
    kn_token_claims_deinit(&out);
    kn_free(t);
}

static void tampered_token_is_refused(void **state)
{
    kn_token_claims c, out;
    make_claims(&c);
    char *t = sign(&c, key);
    size_t len = strlen(t);
    /* Flip one character in each part in turn. */
    size_t dot1 = strcspn(t, "."), dot2 = dot1 + 1 + strcspn(t + dot1 + 1, ".");
    size_t positions[] = {3, dot1 + 5, dot2 + 3, len - 1};
    for (size_t i = 0; i < 4; i++) {
        char *copy = kn_strdup(t);
        copy[positions[i]] = copy[positions[i]] == 'A' ? 'B' : 'A';
        assert_int_equal(kn_token_verify(copy, key, 32, 1500, &out), KN_ERR_TOKEN_INVALID);
        kn_free(copy);
    }
    kn_free(t);
}

static void wrong_key_is_refused(void **state)
{
    kn_token_claims c, out;
    make_claims(&c);
    char *t = sign(&c, other_key);
    assert_int_equal(kn_token_verify(t, key, 32, 1500, &out), KN_ERR_TOKEN_INVALID);
    kn_free(t);
}

static void alg_none_and_garbage_are_refused(void **state)
{
    kn_token_claims out;
    /* {"alg":"none","typ":"JWT"} . claims . (empty signature) */
    const char *none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
                       "eyJ1aWQiOiJ4IiwidXNuIjoieCIsInRpZCI6IngiLCJleHAiOjk5OTk5OTk5OTl9.";
    assert_int_equal(kn_token_verify(none, key, 32, 1500, &out), KN_ERR_TOKEN_INVALID);
    assert_int_equal(kn_token_verify("", key, 32, 1500, &out), KN_ERR_TOKEN_INVALID);
    assert_int_equal(kn_token_verify("a.b", key, 32, 1500, &out), KN_ERR_TOKEN_INVALID);
    assert_int_equal(kn_token_verify(NULL, key, 32, 1500, &out), KN_ERR_TOKEN_INVALID);
    assert_int_equal(kn_token_verify("a.b.c.d", key, 32, 1500, &out), KN_ERR_TOKEN_INVALID);
}

static void token_signed_with_valid_mac_but_bad_claims_is_refused(void **state)
{
    /* A correctly signed payload that is not our claim set (missing uid). */
    const char *payload = "{\"exp\":9999999999}";
    char b64[128], token[512];
    kn_crypto_base64_encode(b64, sizeof b64, (const unsigned char *)payload, strlen(payload),
                            KN_CRYPTO_BASE64URL);
    snprintf(token, sizeof token, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.%s", b64);
    uint8_t mac[32];
    kn_crypto_hmac_sha256(mac, key, 32, token, strlen(token));
    size_t n = strlen(token);
    token[n++] = '.';
    kn_crypto_base64_encode(token + n, sizeof token - n, mac, 32, KN_CRYPTO_BASE64URL);
    kn_token_claims out;
    assert_int_equal(kn_token_verify(token, key, 32, 1500, &out), KN_ERR_TOKEN_INVALID);
}

static int sign_and_verify(void *arg)
{
    kn_token_claims c, out;
    make_claims(&c);
    kn_token_var vars[] = {{"k", "v"}};
    int rc = kn_token_claims_set_vars(&c, vars, 1);
    char *t = NULL;
    if (rc == KN_OK) rc = kn_token_sign(&c, key, 32, &t);
    if (rc == KN_OK) {
        rc = kn_token_verify(t, key, 32, 1500, &out);
        kn_token_claims_deinit(&out);
    }
    kn_free(t);
    kn_token_claims_deinit(&c);
    return rc;
}

static void sign_and_verify_survive_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(sign_and_verify, NULL) >= 4);
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signed_token_verifies_with_its_claims),
        cmocka_unit_test(expired_token_is_refused),
        cmocka_unit_test(tampered_token_is_refused),
        cmocka_unit_test(wrong_key_is_refused),
        cmocka_unit_test(alg_none_and_garbage_are_refused),
        cmocka_unit_test(token_signed_with_valid_mac_but_bad_claims_is_refused),
        cmocka_unit_test(sign_and_verify_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
