/* kn_uuid: v4 UUIDs from the CSPRNG (kn_crypto). */
#include "kn_uuid.h"
#include "kn_crypto.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void kn_uuid_v4(char out[KN_UUID_STR_LEN + 1])
{
    unsigned char b[16];
    kn_crypto_random(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, KN_UUID_STR_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool kn_uuid_valid(const char *s)
{
    if (!s || strlen(s) != KN_UUID_STR_LEN) return false;
    for (int i = 0; i < KN_UUID_STR_LEN; i++) {
        bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return false;
    }
    return true;
}
