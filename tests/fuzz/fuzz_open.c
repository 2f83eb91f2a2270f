/* libFuzzer target: the AEAD open path with replay state. The fuzzer's bytes
 * are a sequence of (channel, length, packet) records opened in order by a
 * receiver whose sender sealed a few genuine packets first; forged packets
 * must never open, genuine ones open at most once. */
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_secure.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (kn_crypto_init() != 0) abort();
        ready = 1;
    }
    kn_crypt tx, rx;
    memset(&tx, 0, sizeof tx);
    memset(tx.tx_key, 7, 32);
    memset(&rx, 0, sizeof rx);
    memcpy(rx.rx_key, tx.tx_key, 32);

    /* Genuine packets the fuzzer may splice in by index. */
    uint8_t genuine[6][8 + KN_SEAL_OVERHEAD];
    for (int i = 0; i < 6; i++) {
        uint8_t m[8] = {(uint8_t)i};
        kn_crypt_seal(&tx, (uint8_t)(i % 3), m, sizeof m, genuine[i]);
    }
    int opened[6] = {0};
    size_t pos = 0;
    uint8_t out[512];
    while (pos + 2 <= size) {
        uint8_t ch = data[pos] % 4, len = data[pos + 1];
        pos += 2;
        size_t n;
        if (len & 0x80) { /* replay a genuine packet */
            int i = len % 6;
            if (kn_crypt_open(&rx, (uint8_t)(i % 3), genuine[i], sizeof genuine[i], out, &n) == KN_OK)
                if (++opened[i] > 1) abort();
            continue;
        }
        if (pos + len > size) break;
        if (kn_crypt_open(&rx, ch, data + pos, len, out, &n) == KN_OK) abort(); /* forged */
        pos += len;
    }
    return 0;
}
