/* libFuzzer target: session/refresh token verification (tokens arrive from
 * clients). Half the runs sign the fuzzer's bytes as claims-ish input with
 * the real key first, so the JSON claim parser behind the MAC is reached. */
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[32] = "fuzz-key-fuzz-key-fuzz-key-fuzz";

/* Builds header.base64(data).mac so the payload parser sees arbitrary JSON. */
static char *sign_raw(const uint8_t *data, size_t size)
{
    static const char header[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.";
    size_t b64 = KN_CRYPTO_BASE64_LEN(size, KN_CRYPTO_BASE64URL);
    size_t cap = sizeof header + b64 + 64;
    char *t = malloc(cap);
    memcpy(t, header, sizeof header - 1);
    size_t n = sizeof header - 1;
    kn_crypto_base64_encode(t + n, cap - n, data, size, KN_CRYPTO_BASE64URL);
    n += strlen(t + n);
    uint8_t mac[32];
    kn_crypto_hmac_sha256(mac, key, sizeof key, t, n);
    t[n++] = '.';
    kn_crypto_base64_encode(t + n, cap - n, mac, sizeof mac, KN_CRYPTO_BASE64URL);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (kn_crypto_init() != 0) abort();
        ready = 1;
    }
    if (size > KN_TOKEN_MAX_LEN) return 0;
    kn_token_claims c;
    if (size && (data[0] & 1)) {
        char *t = sign_raw(data + 1, size - 1);
        if (kn_token_verify(t, key, sizeof key, 1000, &c) == KN_OK) {
            /* whatever verified must survive a re-sign and verify */
            char *again;
            if (kn_token_sign(&c, key, sizeof key, &again) != KN_OK) abort();
            kn_token_claims d;
            int rc = kn_token_verify(again, key, sizeof key, 1000, &d);
            if (rc != KN_OK || strcmp(c.user_id, d.user_id) || d.var_count != c.var_count) abort();
            kn_token_claims_deinit(&d);
            kn_free(again);
            kn_token_claims_deinit(&c);
        }
        free(t);
        return 0;
    }
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    if (kn_token_verify(s, key, sizeof key, 1000, &c) == KN_OK) kn_token_claims_deinit(&c);
    free(s);
    return 0;
}
