/* text: client text validation (kn_text.h). */
#include "kn_text.h"

bool kn_text_valid(const char *s, bool spaces)
{
    if (!s) return false;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || (c == ' ' && !spaces)) return false;
            p++;
            continue;
        }
        int n; /* continuation bytes */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
        } else {
            return false; /* a continuation byte, an overlong lead, or past U+10FFFF */
        }
        unsigned cp = c & (0x3fu >> n);
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return false; /* also stops at the NUL */
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}
