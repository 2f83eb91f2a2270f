/* kn_crypto: libsodium behind project names. This is the only file of the
 * project that includes <sodium.h>; every size the header promises is checked
 * against libsodium's here, so a library change that would alter a token, a
 * stored version or the wire fails the build instead. */
#include "kn_crypto.h"
#include "kn_error.h"

#include <assert.h>
#include <sodium.h>

_Static_assert(KN_CRYPTO_SHA256_SIZE == crypto_hash_sha256_BYTES, "sha256 size");
_Static_assert(KN_CRYPTO_HMAC_SHA256_SIZE == crypto_auth_hmacsha256_BYTES, "hmac size");
_Static_assert(KN_CRYPTO_X25519_SIZE == crypto_scalarmult_BYTES, "x25519 size");
_Static_assert(KN_CRYPTO_X25519_SIZE == crypto_scalarmult_SCALARBYTES, "x25519 scalar size");
_Static_assert(KN_CRYPTO_X25519_SIZE == crypto_box_PUBLICKEYBYTES, "box public key size");
_Static_assert(KN_CRYPTO_X25519_SIZE == crypto_box_SECRETKEYBYTES, "box secret key size");
_Static_assert(KN_CRYPTO_AEAD_KEY_SIZE == crypto_aead_chacha20poly1305_IETF_KEYBYTES, "aead key");
_Static_assert(KN_CRYPTO_AEAD_NONCE_SIZE == crypto_aead_chacha20poly1305_IETF_NPUBBYTES,
               "aead nonce");
_Static_assert(KN_CRYPTO_AEAD_TAG_SIZE == crypto_aead_chacha20poly1305_IETF_ABYTES, "aead tag");
_Static_assert(KN_CRYPTO_SHORTHASH_SIZE == crypto_shorthash_BYTES, "shorthash size");
_Static_assert(KN_CRYPTO_SHORTHASH_KEY == crypto_shorthash_KEYBYTES, "shorthash key");
_Static_assert(KN_CRYPTO_BLAKE2B_MIN == crypto_generichash_BYTES_MIN, "blake2b min");
_Static_assert(KN_CRYPTO_BLAKE2B_MAX == crypto_generichash_BYTES_MAX, "blake2b max");
_Static_assert(KN_CRYPTO_PWHASH_STR_SIZE == crypto_pwhash_STRBYTES, "pwhash string size");
_Static_assert(sizeof(kn_crypto_sha256_state) >= sizeof(crypto_hash_sha256_state),
               "sha256 state room");
_Static_assert(_Alignof(kn_crypto_sha256_state) >= _Alignof(crypto_hash_sha256_state),
               "sha256 state alignment");
_Static_assert(KN_CRYPTO_BASE64 == sodium_base64_VARIANT_ORIGINAL, "base64 variant");
_Static_assert(KN_CRYPTO_BASE64URL == sodium_base64_VARIANT_URLSAFE_NO_PADDING, "base64url");
/* The length macro must agree with libsodium's for every remainder mod 3. */
#define SAME_BASE64_LEN(n)                                                                         \
    (KN_CRYPTO_BASE64_LEN(n, KN_CRYPTO_BASE64) ==                                                  \
         sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) &&                           \
     KN_CRYPTO_BASE64_LEN(n, KN_CRYPTO_BASE64URL) ==                                               \
         sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
_Static_assert(SAME_BASE64_LEN(0) && SAME_BASE64_LEN(31) && SAME_BASE64_LEN(32) &&
                   SAME_BASE64_LEN(33),
               "KN_CRYPTO_BASE64_LEN must equal sodium_base64_ENCODED_LEN");

int kn_crypto_init(void)
{
    /* 1 means "already started": fine, callers may each start it. */
    return sodium_init() < 0 ? KN_ERR_INTERNAL : KN_OK;
}

/* --- randomness and memory ----------------------------------------------------------------- */

void kn_crypto_random(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

uint32_t kn_crypto_random_u32(void)
{
    return randombytes_random();
}

uint32_t kn_crypto_random_uniform(uint32_t upper)
{
    return randombytes_uniform(upper);
}

void kn_crypto_wipe(void *buf, size_t len)
{
    sodium_memzero(buf, len);
}

bool kn_crypto_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

/* --- hashes and MACs ------------------------------------------------------------------------- */

void kn_crypto_sha256(uint8_t out[KN_CRYPTO_SHA256_SIZE], const void *in, size_t len)
{
    crypto_hash_sha256(out, in, len);
}

void kn_crypto_sha256_init(kn_crypto_sha256_state *st)
{
    crypto_hash_sha256_init((crypto_hash_sha256_state *)st->opaque);
}

void kn_crypto_sha256_update(kn_crypto_sha256_state *st, const void *in, size_t len)
{
    crypto_hash_sha256_update((crypto_hash_sha256_state *)st->opaque, in, len);
}

void kn_crypto_sha256_final(kn_crypto_sha256_state *st, uint8_t out[KN_CRYPTO_SHA256_SIZE])
{
    crypto_hash_sha256_final((crypto_hash_sha256_state *)st->opaque, out);
    sodium_memzero(st, sizeof *st);
}

void kn_crypto_hmac_sha256(uint8_t out[KN_CRYPTO_HMAC_SHA256_SIZE], const void *key, size_t key_len,
                           const void *msg, size_t len)
{
    /* The streaming form takes a key of any length (the one-shot form wants
     * exactly 32 bytes); token keys and kaos.hmac_sha256 keys vary. */
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

void kn_crypto_blake2b(uint8_t *out, size_t out_len, const void *in, size_t len)
{
    assert(out_len >= KN_CRYPTO_BLAKE2B_MIN && out_len <= KN_CRYPTO_BLAKE2B_MAX);
    crypto_generichash(out, out_len, in, len, NULL, 0);
}

void kn_crypto_shorthash(uint8_t out[KN_CRYPTO_SHORTHASH_SIZE], const void *in, size_t len,
                         const uint8_t key[KN_CRYPTO_SHORTHASH_KEY])
{
    crypto_shorthash(out, in, len, key);
}

/* --- passwords ------------------------------------------------------------------------------- */

int kn_crypto_pwhash_str(char out[KN_CRYPTO_PWHASH_STR_SIZE], const char *password, size_t len)
{
    if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return KN_ERR_NOMEM;
    return KN_OK;
}

int kn_crypto_pwhash_verify(const char *str, const char *password, size_t len)
{
    return crypto_pwhash_str_verify(str, password, len) == 0 ? KN_OK : KN_ERR_UNAUTHENTICATED;
}

/* --- X25519 and the sealed channel ----------------------------------------------------------- */

void kn_crypto_x25519_keypair(uint8_t pk[KN_CRYPTO_X25519_SIZE], uint8_t sk[KN_CRYPTO_X25519_SIZE])
{
    crypto_box_keypair(pk, sk);
}

int kn_crypto_x25519(uint8_t shared[KN_CRYPTO_X25519_SIZE], const uint8_t sk[KN_CRYPTO_X25519_SIZE],
                     const uint8_t pk[KN_CRYPTO_X25519_SIZE])
{
    return crypto_scalarmult(shared, sk, pk) == 0 ? KN_OK : KN_ERR_INVALID_ARGUMENT;
}

void kn_crypto_aead_seal(uint8_t *out, const uint8_t *plain, size_t len, const uint8_t *ad,
                         size_t ad_len, const uint8_t nonce[KN_CRYPTO_AEAD_NONCE_SIZE],
                         const uint8_t key[KN_CRYPTO_AEAD_KEY_SIZE])
{
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, plain, len, ad, ad_len, NULL, nonce, key);
}

int kn_crypto_aead_open(uint8_t *out, size_t *out_len, const uint8_t *in, size_t len,
                        const uint8_t *ad, size_t ad_len,
                        const uint8_t nonce[KN_CRYPTO_AEAD_NONCE_SIZE],
                        const uint8_t key[KN_CRYPTO_AEAD_KEY_SIZE])
{
    unsigned long long n = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &n, NULL, in, len, ad, ad_len, nonce, key) !=
        0)
        return KN_ERR_PERMISSION_DENIED;
    if (out_len) *out_len = (size_t)n;
    return KN_OK;
}

/* --- base64 and hex -------------------------------------------------------------------------- */

void kn_crypto_base64_encode(char *txt, size_t cap, const void *bin, size_t len,
                             kn_crypto_base64 variant)
{
    sodium_bin2base64(txt, cap, bin, len, (int)variant);
}

int kn_crypto_base64_decode(uint8_t *bin, size_t cap, const char *txt, size_t txt_len,
                            const char *ignore, size_t *bin_len, const char **end,
                            kn_crypto_base64 variant)
{
    if (sodium_base642bin(bin, cap, txt, txt_len, ignore, bin_len, end, (int)variant) != 0)
        return KN_ERR_INVALID_ARGUMENT;
    return KN_OK;
}

void kn_crypto_hex_encode(char *hex, size_t cap, const void *bin, size_t len)
{
    sodium_bin2hex(hex, cap, bin, len);
}

int kn_crypto_hex_decode(uint8_t *bin, size_t cap, const char *hex, size_t hex_len,
                         const char *ignore, size_t *bin_len)
{
    if (sodium_hex2bin(bin, cap, hex, hex_len, ignore, bin_len, NULL) != 0)
        return KN_ERR_INVALID_ARGUMENT;
    return KN_OK;
}
