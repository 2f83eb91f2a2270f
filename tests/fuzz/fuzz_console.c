/* libFuzzer target: what the admin console reads of a request's bytes
 * before any database — the Cookie header (the session cookie), the
 * Authorization header (a bearer token), a POST body (a JSON object) and an
 * integer query argument. The input is split on NUL bytes into those four.
 * Properties: nothing crashes or leaks; a token taken from a header is
 * non-empty base64url that fits its buffer; an accepted body is an object;
 * an accepted integer is in range. */
#include "kn_console.h"
#include "kn_error.h"
#include "kn_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_token(const char *t, size_t cap)
{
    size_t n = strlen(t);
    if (n + 1 > cap) abort();
    for (size_t i = 0; i < n; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", t[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[4096];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
    const char *part[4] = {"", "", "", ""};
    size_t lens[4] = {0};
    char *p = buf;
    for (int i = 0; i < 4 && p <= buf + n; i++) {
        part[i] = p;
        lens[i] = strlen(p);
        p += lens[i] + 1;
    }
    char tok[KN_CONSOLE_TOKEN_LEN + 8];
    int rc = kn_console_cookie_get(part[0], "kaos_console", tok, sizeof tok);
    if (rc == KN_OK)
        check_token(tok, sizeof tok);
    else if (rc != KN_ERR_NOT_FOUND && rc != KN_ERR_INVALID_ARGUMENT)
        abort();
    rc = kn_console_bearer_get(part[1], tok, sizeof tok);
    if (rc == KN_OK) {
        check_token(tok, sizeof tok);
        if (!*tok) abort();
    }
    kn_json *body = NULL;
    if (kn_console_body_parse(part[2], lens[2], &body) == KN_OK) {
        if (!kn_json_is_object(body)) abort();
        kn_json_decref(body);
    }
    int64_t v;
    if (kn_console_int_parse(part[3], -100, 100, &v) == KN_OK && (v < -100 || v > 100)) abort();
    return 0;
}
