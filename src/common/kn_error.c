/* kn_error: lookups over the X-macro table in kn_error.h. */
#include "kn_error.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct entry {
    int value;
    int wire;
    const char *name;
    const char *text;
};

static const struct entry entries[] = {
#define KN_ERR_ENTRY(name, value, wire, text) {(value), (wire), #name, (text)},
    KN_ERROR_TABLE(KN_ERR_ENTRY)
#undef KN_ERR_ENTRY
};

static const struct entry *find(int err)
{
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if (entries[i].value == err) return &entries[i];
    return NULL;
}

const char *kn_err_name(int err)
{
    const struct entry *e = find(err);
    return e ? e->name : "UNKNOWN_ERROR_CODE";
}

const char *kn_err_text(int err)
{
    const struct entry *e = find(err);
    return e ? e->text : "unknown error code";
}

int kn_err_to_wire(int err)
{
    const struct entry *e = find(err);
    return e ? e->wire : 2;
}

int kn_err_from_wire(int wire_code)
{
    /* Wire codes 0..16 are exactly the negated first rows of the table. */
    if (wire_code < 0 || wire_code > 16) return KN_ERR_UNKNOWN;
    return -wire_code;
}

int kn_err_msg(int rc, char *msg, size_t cap, const char *fmt, ...)
{
    if (msg && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}
