/* kn_text: what the server accepts as human-readable text from clients
 * (names, descriptions, statuses): well-formed UTF-8 without ASCII control
 * characters. Pure functions, any thread. */
#ifndef KN_TEXT_H
#define KN_TEXT_H

#include <stdbool.h>

/* Well-formed UTF-8 (no overlong forms, surrogates or values past
 * U+10FFFF) without ASCII control characters; spaces only when allowed.
 * Postgres would refuse broken UTF-8 with a server error, and control
 * characters end up on other players' screens. NULL is not valid. */
bool kn_text_valid(const char *s, bool spaces);

#endif
