/* bench_crypto: the cost of KaosNet's transport security, in isolation.
 *
 * Measures, on this machine and in the same run:
 *   - a full handshake (client start + server answer + client finish);
 *   - sealing + opening one packet, for typical realtime payload sizes,
 *     against a memcpy of the same bytes (the floor any relay pays);
 *   - the cookie check the receive intercept runs on each CONNECT.
 * Prints a table; numbers are reported, never asserted. Usage:
 *   bench_crypto [seconds_per_row (default 1)] */
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_secure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn repeatedly for `secs`; returns nanoseconds per call. */
static double measure(void (*fn)(void *), void *arg, double secs)
{
    long n = 0, batch = 64;
    double start = now_s(), t;
    do {
        for (long i = 0; i < batch; i++) fn(arg);
        n += batch;
        t = now_s() - start;
    } while (t < secs);
    return t * 1e9 / (double)n;
}

static uint8_t s_pk[32], s_sk[32];

static void one_handshake(void *arg)
{
    (void)arg;
    kn_hs_client hs;
    kn_crypt c, s;
    uint8_t hello[KN_HELLO_SIZE], welcome[KN_WELCOME_SIZE], seen[32], v;
    bool plain;
    kn_hs_client_start(&hs, s_pk, 1, hello);
    kn_hs_server_answer(s_pk, s_sk, 1, false, hello, sizeof hello, welcome, &s);
    if (kn_hs_client_finish(&hs, welcome, sizeof welcome, &c, seen, &v, &plain)) abort();
}

static void server_answer_only(void *arg)
{
    const uint8_t *hello = arg;
    kn_crypt s;
    uint8_t welcome[KN_WELCOME_SIZE];
    kn_hs_server_answer(s_pk, s_sk, 1, false, hello, KN_HELLO_SIZE, welcome, &s);
}

typedef struct seal_arg {
    kn_crypt tx, rx;
    size_t len;
    uint8_t plain[1500], sealed[1500 + KN_SEAL_OVERHEAD], out[1500];
} seal_arg;

static void seal_open(void *arg)
{
    seal_arg *a = arg;
    size_t n;
    kn_crypt_seal(&a->tx, 2, a->plain, a->len, a->sealed);
    if (kn_crypt_open(&a->rx, 2, a->sealed, a->len + KN_SEAL_OVERHEAD, a->out, &n)) abort();
}

static void seal_only(void *arg)
{
    seal_arg *a = arg;
    kn_crypt_seal(&a->tx, 2, a->plain, a->len, a->sealed);
}

static void copy_only(void *arg)
{
    seal_arg *a = arg;
    memcpy(a->sealed, a->plain, a->len);
    __asm__ volatile("" : : "r"(a->sealed) : "memory");
}

static volatile uint32_t sink;
static void cookie_check(void *arg)
{
    const uint8_t *secret = arg;
    sink += kn_cookie_check(secret, 0x0100007f, 40000, 123456789, 0xdeadbeef);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    if (kn_crypto_init() != 0) return 1;
    kn_crypto_x25519_keypair(s_pk, s_sk);
    printf("transport security cost (one core, %.1f s per row)\n", secs);
    printf("%-44s %12s %14s\n", "operation", "ns/op", "ops/s");
    double hs = measure(one_handshake, NULL, secs);
    printf("%-44s %12.0f %14.0f\n", "handshake, both sides (3 X25519 each + KDF)", hs, 1e9 / hs);
    kn_hs_client hc;
    uint8_t hello[KN_HELLO_SIZE];
    kn_hs_client_start(&hc, s_pk, 1, hello);
    double sa = measure(server_answer_only, hello, secs);
    printf("%-44s %12.0f %14.0f\n", "handshake, server side only", sa, 1e9 / sa);
    uint8_t secret[KN_COOKIE_SECRET_SIZE] = {1};
    double ck = measure(cookie_check, secret, secs);
    printf("%-44s %12.0f %14.0f\n", "cookie check (2 x SipHash-2-4)", ck, 1e9 / ck);

    static seal_arg a;
    memset(a.tx.tx_key, 3, 32);
    memcpy(a.rx.rx_key, a.tx.tx_key, 32);
    size_t sizes[] = {16, 64, 256, 1200};
    printf("\n%-10s %14s %14s %14s %10s\n", "payload", "seal+open ns", "seal ns", "memcpy ns",
           "overhead");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        a.len = sizes[i];
        double so = measure(seal_open, &a, secs / 2);
        double s = measure(seal_only, &a, secs / 2);
        double c = measure(copy_only, &a, secs / 2);
        printf("%-10zu %14.0f %14.0f %14.1f %9dB\n", sizes[i], so, s, c, KN_SEAL_OVERHEAD);
    }
    printf("\nA relayed packet costs the server one open (from the sender) and one seal per\n"
           "recipient; compare with the server CPU per delivered message in bench/relay.\n");
    return 0;
}
