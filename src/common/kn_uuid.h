/* kn_uuid: random (version 4) UUIDs in canonical text form. Thread-safe. */
#ifndef KN_UUID_H
#define KN_UUID_H

#include <stdbool.h>

#define KN_UUID_STR_LEN 36

/* Writes 36 characters and a NUL. */
void kn_uuid_v4(char out[KN_UUID_STR_LEN + 1]);
/* True for the canonical 8-4-4-4-12 lower- or upper-case hex form. */
bool kn_uuid_valid(const char *s);

#endif
