/* libFuzzer target: JSON text from clients — storage values (their version
 * is SHA-256 of the canonical dump, src/server/storage), RPC payloads and
 * hook bodies decoded by kaos.json_decode, account and group metadata — as
 * the server parses it (kn_json_parse, duplicates refused) and writes its
 * canonical form (compact, keys sorted). Properties: nothing crashes or
 * leaks; whatever parses has a canonical dump that parses again to an equal
 * value, and the canonical dump is a fixed point (dumping the reparsed value
 * gives the same bytes), so one value always has one version. */
#include "kn_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANONICAL (KN_JSON_COMPACT | KN_JSON_SORT_KEYS | KN_JSON_ENCODE_ANY)

static void check(const uint8_t *data, size_t size, unsigned flags)
{
    kn_json_error err;
    kn_json *v = kn_json_parse((const char *)data, size, flags, &err);
    if (!v) {
        if (!err.text[0]) abort(); /* every refusal says why */
        return;
    }
    char *c1 = kn_json_dump(v, CANONICAL);
    if (!c1) abort();
    kn_json *w =
        kn_json_parse(c1, strlen(c1), KN_JSON_DECODE_ANY | KN_JSON_REJECT_DUPLICATES, NULL);
    if (!w || !kn_json_equal(v, w)) abort();
    char *c2 = kn_json_dump(w, CANONICAL);
    if (!c2 || strcmp(c1, c2) != 0) abort();
    kn_json_free_text(c2);
    kn_json_free_text(c1);
    kn_json_decref(w);
    kn_json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, KN_JSON_DECODE_ANY | KN_JSON_REJECT_DUPLICATES);
    check(data, size, 0);
    return 0;
}
