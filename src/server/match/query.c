/* query: the label query language of match listings. */
#include "match_internal.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_mem.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TERMS 32
#define MAX_TEXT 1024

typedef enum { OP_EQ, OP_GE, OP_GT, OP_LE, OP_LT } op_kind;

typedef struct term {
    char must; /* '+', '-' or 0 */
    char path[128];
    op_kind op;
    char value[256];
    double num;
    bool is_num;
} term;

struct kn_match_query {
    term terms[MAX_TERMS];
    size_t n;
};

static int bad(char *msg, size_t cap, const char *why, const char *at)
{
    snprintf(msg, cap, "match query: %s at \"%.30s\"", why, at);
    return KN_ERR_INVALID_ARGUMENT;
}

int kn_match_query_parse(const char *text, kn_match_query **out, char *msg, size_t cap)
{
    *out = NULL;
    if (strlen(text) > MAX_TEXT) {
        snprintf(msg, cap, "match query is over %d bytes", MAX_TEXT);
        return KN_ERR_INVALID_ARGUMENT;
    }
    kn_match_query *q = kn_calloc(1, sizeof *q);
    if (!q) return KN_ERR_NOMEM;
    const char *p = text;
    int rc = KN_OK;
    for (;;) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (q->n == MAX_TERMS) {
            rc = bad(msg, cap, "too many terms (32 at most)", p);
            break;
        }
        term *t = &q->terms[q->n];
        const char *start = p;
        if (*p == '+' || *p == '-') t->must = *p++;
        size_t n = 0;
        while (*p && *p != ':' && !isspace((unsigned char)*p)) {
            if (n + 1 >= sizeof t->path) break;
            t->path[n++] = *p++;
        }
        t->path[n] = '\0';
        if (*p != ':' || !n) {
            rc = bad(msg, cap, "expected field:value", start);
            break;
        }
        p++;
        if (!strncmp(t->path, "label.", 6)) memmove(t->path, t->path + 6, strlen(t->path + 6) + 1);
        if (p[0] == '>' && p[1] == '=') t->op = OP_GE, p += 2;
        else if (p[0] == '<' && p[1] == '=') t->op = OP_LE, p += 2;
        else if (p[0] == '>') t->op = OP_GT, p++;
        else if (p[0] == '<') t->op = OP_LT, p++;
        n = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"' && n + 1 < sizeof t->value) t->value[n++] = *p++;
            if (*p != '"') {
                rc = bad(msg, cap, "unterminated quote", start);
                break;
            }
            p++;
        } else {
            while (*p && !isspace((unsigned char)*p) && n + 1 < sizeof t->value) t->value[n++] = *p++;
        }
        t->value[n] = '\0';
        char *end;
        t->num = strtod(t->value, &end);
        t->is_num = n && !*end && isfinite(t->num);
        if (t->op != OP_EQ && !t->is_num) {
            rc = bad(msg, cap, "a comparison needs a number", start);
            break;
        }
        q->n++;
    }
    if (rc) {
        kn_free(q);
        return rc;
    }
    *out = q;
    return KN_OK;
}

void kn_match_query_free(kn_match_query *q)
{
    kn_free(q);
}

static kn_json *lookup(kn_json *root, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    kn_json *cur = root;
    for (char *save = NULL, *part = strtok_r(buf, ".", &save); part && cur;
         part = strtok_r(NULL, ".", &save))
        cur = kn_json_is_object(cur) ? kn_json_object_get(cur, part) : NULL;
    return cur;
}

static bool term_matches(const term *t, kn_json *label)
{
    kn_json *v = label ? lookup(label, t->path) : NULL;
    if (!v) return false;
    if (t->op != OP_EQ) {
        if (!kn_json_is_number(v)) return false;
        double x = kn_json_number_value(v);
        switch (t->op) {
        case OP_GE: return x >= t->num;
        case OP_GT: return x > t->num;
        case OP_LE: return x <= t->num;
        case OP_LT: return x < t->num;
        default: return false;
        }
    }
    if (kn_json_is_string(v)) return !strcmp(kn_json_string_value(v), t->value);
    if (kn_json_is_number(v)) return t->is_num && kn_json_number_value(v) == t->num;
    if (kn_json_is_true(v)) return !strcmp(t->value, "true");
    if (kn_json_is_false(v)) return !strcmp(t->value, "false");
    return false;
}

bool kn_match_query_eval(const kn_match_query *q, const char *label, int *score)
{
    *score = 0;
    kn_json *root = label ? kn_json_parse(label, strlen(label), 0, NULL) : NULL;
    bool ok = true;
    for (size_t i = 0; ok && i < q->n; i++) {
        bool m = term_matches(&q->terms[i], root);
        if (q->terms[i].must == '+') ok = m;
        else if (q->terms[i].must == '-') ok = !m;
        else if (m) (*score)++;
    }
    kn_json_decref(root);
    return ok;
}
