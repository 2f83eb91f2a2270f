/* kn_crypto, tested through its header only: known-answer vectors from the
 * RFCs (SHA-256: FIPS 180-2 as in RFC 6234; HMAC-SHA-256: RFC 4231; BLAKE2b:
 * RFC 7693; X25519: RFC 7748; base64: RFC 4648; SipHash-2-4: the reference
 * vectors) prove the wrapper passes bytes through unchanged, so tokens,
 * storage versions and the wire stay what they were before it existed. */
#include "kn_crypto.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void assert_hex(const uint8_t *bin, size_t len, const char *want)
{
    char hex[2 * 64 + 1];
    assert_true(len <= 64);
    kn_crypto_hex_encode(hex, sizeof hex, bin, len);
    assert_string_equal(hex, want);
}

static void sha256_matches_the_standard_vectors(void **state)
{
    (void)state;
    uint8_t h[KN_CRYPTO_SHA256_SIZE];
    kn_crypto_sha256(h, "", 0);
    assert_hex(h, sizeof h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    kn_crypto_sha256(h, "abc", 3);
    assert_hex(h, sizeof h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    kn_crypto_sha256(h, two, strlen(two));
    assert_hex(h, sizeof h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void sha256_in_pieces_equals_sha256_at_once(void **state)
{
    (void)state;
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    kn_crypto_sha256_state st;
    kn_crypto_sha256_init(&st);
    for (size_t i = 0; i < strlen(two); i += 5) {
        size_t n = strlen(two) - i < 5 ? strlen(two) - i : 5;
        kn_crypto_sha256_update(&st, two + i, n);
    }
    uint8_t h[KN_CRYPTO_SHA256_SIZE];
    kn_crypto_sha256_final(&st, h);
    assert_hex(h, sizeof h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* final wipes the state: nothing of the message is left on the stack. */
    static const kn_crypto_sha256_state zero;
    assert_memory_equal(&st, &zero, sizeof st);
}

static void hmac_sha256_matches_rfc4231(void **state)
{
    (void)state;
    uint8_t mac[KN_CRYPTO_HMAC_SHA256_SIZE];
    uint8_t key1[20];
    memset(key1, 0x0b, sizeof key1);
    kn_crypto_hmac_sha256(mac, key1, sizeof key1, "Hi There", 8);
    assert_hex(mac, sizeof mac, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    const char *msg2 = "what do ya want for nothing?";
    kn_crypto_hmac_sha256(mac, "Jefe", 4, msg2, strlen(msg2));
    assert_hex(mac, sizeof mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* Test case 6: a key longer than the block is hashed first. */
    uint8_t key6[131];
    memset(key6, 0xaa, sizeof key6);
    const char *msg6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    kn_crypto_hmac_sha256(mac, key6, sizeof key6, msg6, strlen(msg6));
    assert_hex(mac, sizeof mac, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void blake2b_and_siphash_match_their_reference_vectors(void **state)
{
    (void)state;
    uint8_t h[KN_CRYPTO_BLAKE2B_MAX];
    kn_crypto_blake2b(h, sizeof h, "abc", 3);
    assert_hex(h, sizeof h,
               "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
               "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");

    uint8_t key[KN_CRYPTO_SHORTHASH_KEY], s[KN_CRYPTO_SHORTHASH_SIZE];
    for (int i = 0; i < KN_CRYPTO_SHORTHASH_KEY; i++)
        key[i] = (uint8_t)i;
    kn_crypto_shorthash(s, "", 0, key);
    assert_hex(s, sizeof s, "310e0edd47db6f72");
}

static void x25519_matches_rfc7748_and_refuses_low_order_points(void **state)
{
    (void)state;
    uint8_t alice_sk[32], bob_pk[32], shared[32];
    size_t n = 0;
    assert_int_equal(
        kn_crypto_hex_decode(alice_sk, sizeof alice_sk,
                             "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", 64,
                             NULL, &n),
        KN_OK);
    assert_int_equal(n, 32);
    assert_int_equal(
        kn_crypto_hex_decode(bob_pk, sizeof bob_pk,
                             "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", 64,
                             NULL, &n),
        KN_OK);
    assert_int_equal(kn_crypto_x25519(shared, alice_sk, bob_pk), KN_OK);
    assert_hex(shared, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

    /* Fresh pairs agree with each other. */
    uint8_t a_pk[32], a_sk[32], b_pk[32], b_sk[32], ab[32], ba[32];
    kn_crypto_x25519_keypair(a_pk, a_sk);
    kn_crypto_x25519_keypair(b_pk, b_sk);
    assert_int_equal(kn_crypto_x25519(ab, a_sk, b_pk), KN_OK);
    assert_int_equal(kn_crypto_x25519(ba, b_sk, a_pk), KN_OK);
    assert_memory_equal(ab, ba, 32);

    static const uint8_t zero_point[32];
    assert_int_equal(kn_crypto_x25519(shared, a_sk, zero_point), KN_ERR_INVALID_ARGUMENT);
}

static void aead_round_trips_and_refuses_tampering(void **state)
{
    (void)state;
    uint8_t key[32], nonce[KN_CRYPTO_AEAD_NONCE_SIZE] = {0};
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    uint8_t sealed[5 + KN_CRYPTO_AEAD_TAG_SIZE], plain[5];
    kn_crypto_aead_seal(sealed, (const uint8_t *)"hello", 5, (const uint8_t *)"ad", 2, nonce, key);
    /* Cross-checked once against another ChaCha20-Poly1305 (IETF) implementation. */
    assert_hex(sealed, sizeof sealed, "70dd2e5dc2a01c47ad11cc8fb4da686f7449ce51cd");

    size_t n = 0;
    assert_int_equal(
        kn_crypto_aead_open(plain, &n, sealed, sizeof sealed, (const uint8_t *)"ad", 2, nonce, key),
        KN_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(plain, "hello", 5);

    assert_int_equal(
        kn_crypto_aead_open(plain, &n, sealed, sizeof sealed, (const uint8_t *)"AD", 2, nonce, key),
        KN_ERR_PERMISSION_DENIED);
    sealed[0] ^= 1;
    assert_int_equal(
        kn_crypto_aead_open(plain, &n, sealed, sizeof sealed, (const uint8_t *)"ad", 2, nonce, key),
        KN_ERR_PERMISSION_DENIED);
    assert_int_equal(kn_crypto_aead_open(plain, &n, sealed, KN_CRYPTO_AEAD_TAG_SIZE - 1,
                                         (const uint8_t *)"ad", 2, nonce, key),
                     KN_ERR_PERMISSION_DENIED);
}

static void random_fills_differ_and_uniform_stays_in_range(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    static const uint8_t zero[32];
    kn_crypto_random(a, sizeof a);
    kn_crypto_random(b, sizeof b);
    /* 2^-256 chances of a false failure each. */
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);

    uint32_t first = kn_crypto_random_u32();
    bool varied = false;
    for (int i = 0; i < 16; i++)
        varied |= kn_crypto_random_u32() != first;
    assert_true(varied);

    bool seen[10] = {false};
    for (int i = 0; i < 1000; i++) {
        uint32_t r = kn_crypto_random_uniform(10);
        assert_true(r < 10);
        seen[r] = true;
    }
    for (int i = 0; i < 10; i++)
        assert_true(seen[i]);
}

static void equal_compares_bytes_and_wipe_zeroes_them(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    memset(a, 7, sizeof a);
    memcpy(b, a, sizeof b);
    assert_true(kn_crypto_equal(a, b, sizeof a));
    b[15] ^= 0x80;
    assert_false(kn_crypto_equal(a, b, sizeof a));
    assert_true(kn_crypto_equal(a, b, 15)); /* only the first len bytes count */

    kn_crypto_wipe(a, sizeof a);
    static const uint8_t zero[16];
    assert_memory_equal(a, zero, sizeof a);
}

static void password_hash_accepts_the_password_and_refuses_another(void **state)
{
    (void)state;
    char str[KN_CRYPTO_PWHASH_STR_SIZE];
    assert_int_equal(kn_crypto_pwhash_str(str, "correct horse", 13), KN_OK);
    assert_true(strncmp(str, "$argon2id$", 10) == 0);
    assert_true(strlen(str) < sizeof str);
    assert_int_equal(kn_crypto_pwhash_verify(str, "correct horse", 13), KN_OK);
    assert_int_equal(kn_crypto_pwhash_verify(str, "correct horsf", 13), KN_ERR_UNAUTHENTICATED);
    assert_int_equal(kn_crypto_pwhash_verify("not a hash", "correct horse", 13),
                     KN_ERR_UNAUTHENTICATED);

    /* Salted: the same password hashes to a different string each time. */
    char again[KN_CRYPTO_PWHASH_STR_SIZE];
    assert_int_equal(kn_crypto_pwhash_str(again, "correct horse", 13), KN_OK);
    assert_string_not_equal(str, again);
}

static void base64_variants_match_rfc4648(void **state)
{
    (void)state;
    char txt[32];
    kn_crypto_base64_encode(txt, sizeof txt, "foobar", 6, KN_CRYPTO_BASE64);
    assert_string_equal(txt, "Zm9vYmFy");
    kn_crypto_base64_encode(txt, sizeof txt, "fooba", 5, KN_CRYPTO_BASE64);
    assert_string_equal(txt, "Zm9vYmE=");
    kn_crypto_base64_encode(txt, sizeof txt, "fooba", 5, KN_CRYPTO_BASE64URL);
    assert_string_equal(txt, "Zm9vYmE");
    static const uint8_t high[2] = {0xfb, 0xff};
    kn_crypto_base64_encode(txt, sizeof txt, high, 2, KN_CRYPTO_BASE64);
    assert_string_equal(txt, "+/8=");
    kn_crypto_base64_encode(txt, sizeof txt, high, 2, KN_CRYPTO_BASE64URL);
    assert_string_equal(txt, "-_8");

    /* The length macro counts the NUL and is exact. */
    for (size_t n = 0; n < 10; n++) {
        uint8_t bin[10] = {0};
        char out[32];
        kn_crypto_base64_encode(out, sizeof out, bin, n, KN_CRYPTO_BASE64);
        assert_int_equal(strlen(out) + 1, KN_CRYPTO_BASE64_LEN(n, KN_CRYPTO_BASE64));
        kn_crypto_base64_encode(out, sizeof out, bin, n, KN_CRYPTO_BASE64URL);
        assert_int_equal(strlen(out) + 1, KN_CRYPTO_BASE64_LEN(n, KN_CRYPTO_BASE64URL));
    }
}

static void base64_decode_honours_ignore_end_and_capacity(void **state)
{
    (void)state;
    uint8_t bin[16];
    size_t n = 0;
    assert_int_equal(
        kn_crypto_base64_decode(bin, sizeof bin, "Zm9v\nYmFy", 9, "\n", &n, NULL, KN_CRYPTO_BASE64),
        KN_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(bin, "foobar", 6);
    /* Without `ignore` the newline is invalid. */
    assert_int_equal(
        kn_crypto_base64_decode(bin, sizeof bin, "Zm9v\nYmFy", 9, NULL, &n, NULL, KN_CRYPTO_BASE64),
        KN_ERR_INVALID_ARGUMENT);
    /* With `end`, decoding stops at the first character outside the alphabet. */
    const char *end = NULL;
    const char *txt = "Zm9vYmE!rest";
    assert_int_equal(kn_crypto_base64_decode(bin, sizeof bin, txt, strlen(txt), NULL, &n, &end,
                                             KN_CRYPTO_BASE64URL),
                     KN_OK);
    assert_ptr_equal(end, txt + 7);
    assert_int_equal(n, 5);
    /* Padding belongs to the standard variant only. */
    assert_int_equal(kn_crypto_base64_decode(bin, sizeof bin, "Zm9vYmE=", 8, NULL, &n, NULL,
                                             KN_CRYPTO_BASE64URL),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        kn_crypto_base64_decode(bin, 4, "Zm9vYmFy", 8, NULL, &n, NULL, KN_CRYPTO_BASE64),
        KN_ERR_INVALID_ARGUMENT);
}

static void hex_round_trips_and_refuses_non_hex(void **state)
{
    (void)state;
    static const uint8_t bin[4] = {0xde, 0xad, 0xbe, 0xef};
    char hex[9];
    kn_crypto_hex_encode(hex, sizeof hex, bin, sizeof bin);
    assert_string_equal(hex, "deadbeef");
    uint8_t back[4];
    size_t n = 0;
    assert_int_equal(kn_crypto_hex_decode(back, sizeof back, "DE-AD-be-ef", 11, "-", &n), KN_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(back, bin, 4);
    assert_int_equal(kn_crypto_hex_decode(back, sizeof back, "deadbexf", 8, NULL, &n),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_crypto_hex_decode(back, 2, "deadbeef", 8, NULL, &n),
                     KN_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    /* Twice on purpose: starting is idempotent (the SDK starts it per client). */
    if (kn_crypto_init() != KN_OK || kn_crypto_init() != KN_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_the_standard_vectors),
        cmocka_unit_test(sha256_in_pieces_equals_sha256_at_once),
        cmocka_unit_test(hmac_sha256_matches_rfc4231),
        cmocka_unit_test(blake2b_and_siphash_match_their_reference_vectors),
        cmocka_unit_test(x25519_matches_rfc7748_and_refuses_low_order_points),
        cmocka_unit_test(aead_round_trips_and_refuses_tampering),
        cmocka_unit_test(random_fills_differ_and_uniform_stays_in_range),
        cmocka_unit_test(equal_compares_bytes_and_wipe_zeroes_them),
        cmocka_unit_test(password_hash_accepts_the_password_and_refuses_another),
        cmocka_unit_test(base64_variants_match_rfc4648),
        cmocka_unit_test(base64_decode_honours_ignore_end_and_capacity),
        cmocka_unit_test(hex_round_trips_and_refuses_non_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
