/* kn_keys: key file generation and loading (keys and hex through kn_crypto). */
#include "kn_keys.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int key_path(const char *dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/server.key", dir);
    return (n < 0 || (size_t)n >= cap) ? KN_ERR_CONFIG : KN_OK;
}

void kn_keys_wipe(kn_keys *keys)
{
    kn_crypto_wipe(keys, sizeof *keys);
}

void kn_keys_public_hex(const kn_keys *keys, char out[2 * KN_KEY_BYTES + 1])
{
    kn_crypto_hex_encode(out, 2 * KN_KEY_BYTES + 1, keys->kx_public, KN_KEY_BYTES);
}

static int read_hex(const char *hex, uint8_t out[KN_KEY_BYTES])
{
    size_t len = 0;
    if (kn_crypto_hex_decode(out, KN_KEY_BYTES, hex, strlen(hex), NULL, &len) ||
        len != KN_KEY_BYTES)
        return KN_ERR_CONFIG;
    return KN_OK;
}

int kn_keys_load(const char *dir, kn_keys *out)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    if (key_path(dir, path, sizeof path)) return KN_ERR_CONFIG;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return KN_ERR_NOT_FOUND;
        KN_ERROR("cannot read key file %s: %s", path, strerror(errno));
        return KN_ERR_CONFIG;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        KN_ERROR("key file %s is accessible by group or others (mode %03o); chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
        fclose(f);
        return KN_ERR_CONFIG;
    }
    char line[256], name[64], hex[200];
    unsigned seen = 0;
    int rc = KN_OK;
    while (rc == KN_OK && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "%63s %199s", name, hex) != 2) {
            rc = KN_ERR_CONFIG;
        } else if (!strcmp(name, "kx_public")) {
            rc = read_hex(hex, out->kx_public), seen |= 1;
        } else if (!strcmp(name, "kx_secret")) {
            rc = read_hex(hex, out->kx_secret), seen |= 2;
        } else if (!strcmp(name, "session_key")) {
            rc = read_hex(hex, out->session_key), seen |= 4;
        } else if (!strcmp(name, "refresh_key")) {
            rc = read_hex(hex, out->refresh_key), seen |= 8;
        }
    }
    fclose(f);
    kn_crypto_wipe(line, sizeof line);
    kn_crypto_wipe(hex, sizeof hex);
    if (rc == KN_OK && seen != 15) rc = KN_ERR_CONFIG;
    if (rc) {
        KN_ERROR("key file %s is malformed", path);
        kn_keys_wipe(out);
    }
    return rc;
}

int kn_keys_generate(const char *dir, bool overwrite, kn_keys *out)
{
    char path[4096], tmp[4200];
    if (key_path(dir, path, sizeof path)) return KN_ERR_CONFIG;
    if (mkdir(dir, 0700) && errno != EEXIST) {
        KN_ERROR("cannot create data dir %s: %s", dir, strerror(errno));
        return KN_ERR_IO;
    }
    if (!overwrite && access(path, F_OK) == 0) return KN_ERR_ALREADY_EXISTS;

    kn_crypto_x25519_keypair(out->kx_public, out->kx_secret);
    kn_crypto_random(out->session_key, KN_KEY_BYTES);
    kn_crypto_random(out->refresh_key, KN_KEY_BYTES);

    /* Write to a temporary file and rename, so a crash never leaves half a key. */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        KN_ERROR("cannot write %s: %s", tmp, strerror(errno));
        return KN_ERR_IO;
    }
    char hex[4][2 * KN_KEY_BYTES + 1];
    kn_crypto_hex_encode(hex[0], sizeof hex[0], out->kx_public, KN_KEY_BYTES);
    kn_crypto_hex_encode(hex[1], sizeof hex[1], out->kx_secret, KN_KEY_BYTES);
    kn_crypto_hex_encode(hex[2], sizeof hex[2], out->session_key, KN_KEY_BYTES);
    kn_crypto_hex_encode(hex[3], sizeof hex[3], out->refresh_key, KN_KEY_BYTES);
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "# KaosNet server keys. Keep secret; back up; mode 0600.\n"
                     "kx_public %s\nkx_secret %s\nsession_key %s\nrefresh_key %s\n",
                     hex[0], hex[1], hex[2], hex[3]);
    bool ok = write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    kn_crypto_wipe(buf, sizeof buf);
    kn_crypto_wipe(hex, sizeof hex);
    if (!ok || rename(tmp, path)) {
        KN_ERROR("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return KN_ERR_IO;
    }
    return KN_OK;
}

int kn_keys_load_or_create(const char *dir, kn_keys *out, bool *created)
{
    *created = false;
    int rc = kn_keys_load(dir, out);
    if (rc != KN_ERR_NOT_FOUND) return rc;
    rc = kn_keys_generate(dir, false, out);
    if (rc == KN_OK) *created = true;
    return rc;
}
