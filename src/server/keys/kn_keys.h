/* kn_keys: the server's long-term secrets, kept in <data_dir>/server.key.
 *
 * The file holds an X25519 key pair (kn_crypto_x25519_keypair; the public half is what
 * clients pin once transport security lands) and the HMAC keys for session
 * and refresh tokens. It is created with mode 0600 (directory 0700) by
 * `kaosnet keygen` or on first start, and never overwritten unless asked.
 * Format: one `name hex` pair per line. Not thread-safe; load at start. */
#ifndef KN_KEYS_H
#define KN_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_KEY_BYTES 32

typedef struct kn_keys {
    uint8_t kx_public[KN_KEY_BYTES];
    uint8_t kx_secret[KN_KEY_BYTES];
    uint8_t session_key[KN_KEY_BYTES];
    uint8_t refresh_key[KN_KEY_BYTES];
} kn_keys;

/* Read <dir>/server.key. KN_ERR_NOT_FOUND when absent, KN_ERR_CONFIG when
 * unreadable, malformed or readable by others. */
int kn_keys_load(const char *dir, kn_keys *out);
/* Generate fresh keys and write them (creating dir). With overwrite=false an
 * existing file is KN_ERR_ALREADY_EXISTS. */
int kn_keys_generate(const char *dir, bool overwrite, kn_keys *out);
/* Load, or generate when absent. *created tells which happened. */
int kn_keys_load_or_create(const char *dir, kn_keys *out, bool *created);
/* Lower-case hex of the public key into out (65 bytes). */
void kn_keys_public_hex(const kn_keys *keys, char out[2 * KN_KEY_BYTES + 1]);
void kn_keys_wipe(kn_keys *keys);

#endif
