/* kn_crypto: the project's one door to libsodium, shared by the server and the
 * SDK. It offers exactly the primitives KaosNet uses, under project names:
 * the CSPRNG, constant-time comparison and wiping, SHA-256 and HMAC-SHA-256
 * (tokens, storage versions, kaos.* hashing), argon2id password strings,
 * X25519, BLAKE2b, SipHash (cookies), ChaCha20-Poly1305 IETF (the sealed
 * channel), and the base64/hex codings those values travel in.
 *
 * Invariants:
 *  - only kn_crypto.c includes <sodium.h> (scripts/check-includes.sh says so);
 *  - every KN_CRYPTO_* size equals libsodium's (asserted at compile time), so
 *    tokens, stored versions and the wire stay byte-identical;
 *  - kn_crypto_init() runs once before any other call (main, the SDK's client
 *    create, each test); after that every function is thread-safe and touches
 *    only what is passed in.
 * Fallible functions return 0 or a negative KN_ERR_* code. */
#ifndef KN_CRYPTO_H
#define KN_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_CRYPTO_SHA256_SIZE      32  /* crypto_hash_sha256_BYTES */
#define KN_CRYPTO_HMAC_SHA256_SIZE 32  /* crypto_auth_hmacsha256_BYTES */
#define KN_CRYPTO_X25519_SIZE      32  /* public, secret and shared keys */
#define KN_CRYPTO_AEAD_KEY_SIZE    32  /* ChaCha20-Poly1305 IETF key */
#define KN_CRYPTO_AEAD_NONCE_SIZE  12  /* crypto_aead_chacha20poly1305_IETF_NPUBBYTES */
#define KN_CRYPTO_AEAD_TAG_SIZE    16  /* crypto_aead_chacha20poly1305_IETF_ABYTES */
#define KN_CRYPTO_SHORTHASH_SIZE   8   /* SipHash-2-4 output */
#define KN_CRYPTO_SHORTHASH_KEY    16  /* SipHash-2-4 key */
#define KN_CRYPTO_BLAKE2B_MIN      16  /* crypto_generichash_BYTES_MIN */
#define KN_CRYPTO_BLAKE2B_MAX      64  /* crypto_generichash_BYTES_MAX */
#define KN_CRYPTO_PWHASH_STR_SIZE  128 /* crypto_pwhash_STRBYTES, NUL included */

/* Start the library (idempotent, thread-safe). KN_ERR_INTERNAL when it cannot. */
int kn_crypto_init(void);

/* --- randomness and memory ------------------------------------------------------------------ */

void kn_crypto_random(void *buf, size_t len);
uint32_t kn_crypto_random_u32(void);
/* Uniform in [0, upper) without modulo bias; 0 when upper < 2. */
uint32_t kn_crypto_random_uniform(uint32_t upper);
/* Zeroes buf in a way the compiler may not remove (for keys and secrets). */
void kn_crypto_wipe(void *buf, size_t len);
/* True when the len bytes are equal; time depends on len only. */
bool kn_crypto_equal(const void *a, const void *b, size_t len);

/* --- hashes and MACs ---------------------------------------------------------------------------
 */

void kn_crypto_sha256(uint8_t out[KN_CRYPTO_SHA256_SIZE], const void *in, size_t len);

/* Incremental SHA-256 for input produced in pieces (a JSON dump). The state
 * lives on the caller's stack; its bytes are libsodium's, never read. */
typedef struct kn_crypto_sha256_state {
    _Alignas(16) unsigned char opaque[128];
} kn_crypto_sha256_state;
void kn_crypto_sha256_init(kn_crypto_sha256_state *st);
void kn_crypto_sha256_update(kn_crypto_sha256_state *st, const void *in, size_t len);
/* Writes the digest and wipes the state. */
void kn_crypto_sha256_final(kn_crypto_sha256_state *st, uint8_t out[KN_CRYPTO_SHA256_SIZE]);

/* HMAC-SHA-256 (RFC 2104) with a key of any length; the state is wiped. */
void kn_crypto_hmac_sha256(uint8_t out[KN_CRYPTO_HMAC_SHA256_SIZE], const void *key, size_t key_len,
                           const void *msg, size_t len);

/* Unkeyed BLAKE2b with an out_len-byte digest (KN_CRYPTO_BLAKE2B_MIN..MAX;
 * out of range is a programmer error, asserted). */
void kn_crypto_blake2b(uint8_t *out, size_t out_len, const void *in, size_t len);

/* SipHash-2-4 of in under a 16-byte key. */
void kn_crypto_shorthash(uint8_t out[KN_CRYPTO_SHORTHASH_SIZE], const void *in, size_t len,
                         const uint8_t key[KN_CRYPTO_SHORTHASH_KEY]);

/* --- passwords (argon2id, interactive limits) --------------------------------------------------
 */

/* Writes a NUL-terminated hash string (salted, self-describing) into out.
 * KN_ERR_NOMEM when the memory for hashing is not available. */
int kn_crypto_pwhash_str(char out[KN_CRYPTO_PWHASH_STR_SIZE], const char *password, size_t len);
/* 0 when password matches the string; KN_ERR_UNAUTHENTICATED otherwise
 * (wrong password, malformed string, or no memory to check). */
int kn_crypto_pwhash_verify(const char *str, const char *password, size_t len);

/* --- X25519 and the sealed channel --------------------------------------------------------- */

/* A fresh random key pair. */
void kn_crypto_x25519_keypair(uint8_t pk[KN_CRYPTO_X25519_SIZE], uint8_t sk[KN_CRYPTO_X25519_SIZE]);
/* shared = X25519(sk, pk). KN_ERR_INVALID_ARGUMENT when pk is a low-order
 * point (the result would be all zeroes: not a real key). */
int kn_crypto_x25519(uint8_t shared[KN_CRYPTO_X25519_SIZE], const uint8_t sk[KN_CRYPTO_X25519_SIZE],
                     const uint8_t pk[KN_CRYPTO_X25519_SIZE]);

/* ChaCha20-Poly1305 (IETF). Seal writes len + KN_CRYPTO_AEAD_TAG_SIZE bytes
 * to out (ciphertext then tag); out may equal plain. */
void kn_crypto_aead_seal(uint8_t *out, const uint8_t *plain, size_t len, const uint8_t *ad,
                         size_t ad_len, const uint8_t nonce[KN_CRYPTO_AEAD_NONCE_SIZE],
                         const uint8_t key[KN_CRYPTO_AEAD_KEY_SIZE]);
/* Opens len bytes (ciphertext then tag) into out (len - tag bytes, written to
 * *out_len; out_len may be NULL). KN_ERR_PERMISSION_DENIED when the tag does
 * not check or len is shorter than a tag; out is then unspecified. */
int kn_crypto_aead_open(uint8_t *out, size_t *out_len, const uint8_t *in, size_t len,
                        const uint8_t *ad, size_t ad_len,
                        const uint8_t nonce[KN_CRYPTO_AEAD_NONCE_SIZE],
                        const uint8_t key[KN_CRYPTO_AEAD_KEY_SIZE]);

/* --- base64 and hex ----------------------------------------------------------------------------
 */

/* The two base64 alphabets in use (values are libsodium's variants). */
typedef enum kn_crypto_base64 {
    KN_CRYPTO_BASE64 = 1,    /* RFC 4648 standard alphabet, padded: kaos.base64_*, hooks' JSON */
    KN_CRYPTO_BASE64URL = 7, /* URL-safe alphabet, no padding: tokens, storage cursors */
} kn_crypto_base64;

/* Characters needed to encode bin_len bytes, the NUL included; a constant
 * expression when bin_len is (the same as sodium_base64_ENCODED_LEN). */
#define KN_CRYPTO_BASE64_LEN(bin_len, variant)                                                     \
    ((variant) == KN_CRYPTO_BASE64URL                                                              \
         ? (bin_len) / 3 * 4 + ((bin_len) % 3 ? (bin_len) % 3 + 1 : 0) + 1                         \
         : ((bin_len) + 2) / 3 * 4 + 1)

/* Encodes into txt (cap >= KN_CRYPTO_BASE64_LEN(len), asserted by libsodium). */
void kn_crypto_base64_encode(char *txt, size_t cap, const void *bin, size_t len,
                             kn_crypto_base64 variant);
/* Decodes txt[0..txt_len), skipping any character of `ignore` (may be NULL),
 * into bin (at most cap bytes; count in *bin_len). With end NULL the whole
 * text must be valid base64; with end set, decoding stops at the first
 * invalid character and *end points at it. KN_ERR_INVALID_ARGUMENT otherwise
 * (bad input, or more than cap bytes). */
int kn_crypto_base64_decode(uint8_t *bin, size_t cap, const char *txt, size_t txt_len,
                            const char *ignore, size_t *bin_len, const char **end,
                            kn_crypto_base64 variant);

/* Lower-case hex of bin into hex (cap >= 2 * len + 1), NUL-terminated. */
void kn_crypto_hex_encode(char *hex, size_t cap, const void *bin, size_t len);
/* Decodes hex[0..hex_len), skipping characters of `ignore` (may be NULL),
 * into bin (at most cap bytes; count in *bin_len). KN_ERR_INVALID_ARGUMENT
 * when the text is not all hex or does not fit. */
int kn_crypto_hex_decode(uint8_t *bin, size_t cap, const char *hex, size_t hex_len,
                         const char *ignore, size_t *bin_len);

#endif
