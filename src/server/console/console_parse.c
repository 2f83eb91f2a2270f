/* console_parse: what the console reads of a request's raw text without a
 * database — roles and the Cookie header. Allocation-free, fuzzed. */
#include "kn_console.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_json.h"

#include <errno.h>
#include <stdlib.h>

#include <string.h>

static const char *const role_names[] = {"read-only", "maintainer", "developer", "admin"};

int kn_console_role_parse(const char *text, kn_console_role *out)
{
    for (int i = 0; text && i < 4; i++)
        if (!strcmp(text, role_names[i])) {
            *out = (kn_console_role)i;
            return KN_OK;
        }
    return KN_ERR_INVALID_ARGUMENT;
}

const char *kn_console_role_name(kn_console_role role)
{
    return (unsigned)role < 4 ? role_names[role] : "unknown";
}

int kn_console_role_check(kn_console_role role, kn_console_role need)
{
    return role >= need ? KN_OK : KN_ERR_PERMISSION_DENIED;
}

bool kn_console_csrf_ok(const kn_console_who *who, const char *header)
{
    size_t n = strlen(who->csrf);
    return header && n && strlen(header) == n && kn_crypto_equal(header, who->csrf, n);
}

/* Tokens are base64url: anything else in a value is refused. */
static bool token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int kn_console_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
    if (!header || !name || !cap) return KN_ERR_NOT_FOUND;
    size_t nlen = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ';')
            eq++;
        const char *end = eq;
        while (*end && *end != ';')
            end++;
        if (*eq == '=' && (size_t)(eq - p) == nlen && !memcmp(p, name, nlen)) {
            const char *v = eq + 1;
            size_t vlen = (size_t)(end - v);
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') { /* RFC 6265 quoted value */
                v++;
                vlen -= 2;
            }
            if (vlen + 1 > cap) return KN_ERR_INVALID_ARGUMENT;
            for (size_t i = 0; i < vlen; i++)
                if (!token_char(v[i])) return KN_ERR_INVALID_ARGUMENT;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return KN_OK;
        }
        p = end;
    }
    return KN_ERR_NOT_FOUND;
}

int kn_console_bearer_get(const char *authorization, char *out, size_t cap)
{
    static const char scheme[] = "Bearer ";
    if (!authorization || strncmp(authorization, scheme, sizeof scheme - 1))
        return KN_ERR_NOT_FOUND;
    const char *v = authorization + sizeof scheme - 1;
    size_t n = strlen(v);
    if (!n || n + 1 > cap) return KN_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++)
        if (!token_char(v[i])) return KN_ERR_INVALID_ARGUMENT;
    memcpy(out, v, n + 1);
    return KN_OK;
}

int kn_console_int_parse(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    if (!text || !*text || *text == ' ' || *text == '\t' || *text == '\n')
        return KN_ERR_INVALID_ARGUMENT;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < lo || v > hi) return KN_ERR_INVALID_ARGUMENT;
    *out = v;
    return KN_OK;
}

int kn_console_body_parse(const char *body, size_t len, kn_json **out)
{
    kn_json *v = len ? kn_json_parse(body, len, KN_JSON_REJECT_DUPLICATES, NULL) : kn_json_object();
    if (!kn_json_is_object(v)) {
        kn_json_decref(v);
        return KN_ERR_INVALID_ARGUMENT;
    }
    if (out)
        *out = v;
    else
        kn_json_decref(v);
    return KN_OK;
}
