/* query: the one query language of KaosNet, shared by match listings (terms
 * against a match's JSON label) and the matchmaker (terms against a
 * ticket's string and numeric properties). One parser; two evaluators over
 * one term list: a JSON label path lookup and a caller's property lookup.
 *
 * Invariants: a parsed query has at most MAX_TERMS terms, each with a
 * non-empty path unless it is the catch-all `*`; comparisons always carry a
 * finite number; boosts are whole numbers 0..MAX_BOOST. */
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
#define MAX_BOOST 1000

typedef enum { OP_EQ, OP_GE, OP_GT, OP_LE, OP_LT } op_kind;

typedef struct term {
    char must; /* '+', '-' or 0 */
    char path[128];
    op_kind op;
    char value[256];
    double num;
    double base; /* num as parsed (kn_match_query_widen moves num from it) */
    bool is_num;
    bool any;     /* `*`: matches everything */
    bool boosted; /* an explicit ^N was given */
    int boost;    /* what a match adds to the score (1 unless ^N) */
} term;

struct kn_match_query {
    term terms[MAX_TERMS];
    size_t n;
};

/* Names the byte offset of the failing term (0-based) and shows it. */
static int bad(char *msg, size_t cap, const char *why, const char *text, const char *at)
{
    snprintf(msg, cap, "query: %s at position %zu (\"%.30s\")", why, (size_t)(at - text), at);
    return KN_ERR_INVALID_ARGUMENT;
}

/* A trailing "^N" on a value: the term's boost. Returns false when the
 * suffix is there but N is not a whole number in 0..MAX_BOOST. */
static bool take_boost(term *t, const char *suffix)
{
    t->boost = 1;
    if (!suffix) return true;
    char *end;
    long b = strtol(suffix, &end, 10);
    if (!isdigit((unsigned char)*suffix) || *end || b < 0 || b > MAX_BOOST) return false;
    t->boost = (int)b;
    t->boosted = true;
    return true;
}

int kn_match_query_parse(const char *text, kn_match_query **out, char *msg, size_t cap)
{
    *out = NULL;
    if (strlen(text) > MAX_TEXT) {
        snprintf(msg, cap, "query: over %d bytes", MAX_TEXT);
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
            rc = bad(msg, cap, "too many terms (32 at most)", text, p);
            break;
        }
        term *t = &q->terms[q->n];
        const char *start = p;
        if (*p == '+' || *p == '-') t->must = *p++;
        if (*p == '*' && (!p[1] || isspace((unsigned char)p[1]))) {
            if (t->must == '-') {
                rc = bad(msg, cap, "-* would match nobody", text, start);
                break;
            }
            t->any = true;
            t->boost = 0;
            p++;
            q->n++;
            continue;
        }
        size_t n = 0;
        while (*p && *p != ':' && !isspace((unsigned char)*p)) {
            if (n + 1 >= sizeof t->path) break;
            t->path[n++] = *p++;
        }
        t->path[n] = '\0';
        if (*p != ':' || !n) {
            rc = bad(msg, cap, "expected field:value", text, start);
            break;
        }
        p++;
        if (!strncmp(t->path, "label.", 6)) memmove(t->path, t->path + 6, strlen(t->path + 6) + 1);
        else if (!strncmp(t->path, "properties.", 11))
            memmove(t->path, t->path + 11, strlen(t->path + 11) + 1);
        if (!*t->path) {
            rc = bad(msg, cap, "empty field name", text, start);
            break;
        }
        if (p[0] == '>' && p[1] == '=') t->op = OP_GE, p += 2;
        else if (p[0] == '<' && p[1] == '=') t->op = OP_LE, p += 2;
        else if (p[0] == '>') t->op = OP_GT, p++;
        else if (p[0] == '<') t->op = OP_LT, p++;
        n = 0;
        bool quoted = *p == '"';
        if (quoted) {
            p++;
            while (*p && *p != '"' && n + 1 < sizeof t->value) t->value[n++] = *p++;
            if (*p != '"') {
                rc = bad(msg, cap, "unterminated quote", text, start);
                break;
            }
            p++;
        } else {
            while (*p && !isspace((unsigned char)*p) && n + 1 < sizeof t->value) t->value[n++] = *p++;
        }
        t->value[n] = '\0';
        /* "^N" ends the value (after the quote of a quoted one). */
        char suffix[16] = "";
        const char *boost = NULL;
        char *caret = quoted ? NULL : strrchr(t->value, '^');
        if (quoted && *p == '^') {
            size_t k = 0;
            for (p++; *p && !isspace((unsigned char)*p) && k + 1 < sizeof suffix; k++)
                suffix[k] = *p++;
            suffix[k] = '\0';
            boost = *p && !isspace((unsigned char)*p) ? "x" : suffix; /* too long: refused */
        } else if (caret) {
            *caret = '\0';
            boost = caret + 1;
        }
        if (!take_boost(t, boost)) {
            rc = bad(msg, cap, "a boost is ^N with N a whole number 0-1000", text, start);
            break;
        }
        n = strlen(t->value);
        char *end;
        t->num = strtod(t->value, &end);
        t->is_num = n && !*end && isfinite(t->num);
        t->base = t->num;
        if (t->op != OP_EQ && !t->is_num) {
            rc = bad(msg, cap, "a comparison needs a number", text, start);
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

/* Whether value v (found) satisfies t. */
static bool value_matches(const term *t, const kn_match_query_value *v)
{
    if (t->op != OP_EQ) {
        if (!v->is_num) return false;
        switch (t->op) {
        case OP_GE:
            return v->num >= t->num;
        case OP_GT:
            return v->num > t->num;
        case OP_LE:
            return v->num <= t->num;
        case OP_LT:
            return v->num < t->num;
        default: return false;
        }
    }
    if (v->is_num) return t->is_num && v->num == t->num;
    return v->str && !strcmp(v->str, t->value);
}

static bool json_lookup(void *ud, const char *name, kn_match_query_value *out)
{
    kn_json *v = ud ? lookup(ud, name) : NULL;
    if (!v) return false;
    *out = (kn_match_query_value){0};
    if (kn_json_is_string(v))
        out->str = kn_json_string_value(v);
    else if (kn_json_is_number(v))
        out->is_num = true, out->num = kn_json_number_value(v);
    else if (kn_json_is_true(v))
        out->str = "true";
    else if (kn_json_is_false(v))
        out->str = "false";
    else
        return false;
    return true;
}

bool kn_match_query_eval_with(const kn_match_query *q, kn_match_query_lookup_fn get, void *ud,
                              int *score)
{
    *score = 0;
    for (size_t i = 0; i < q->n; i++) {
        const term *t = &q->terms[i];
        kn_match_query_value v;
        bool m = t->any || (get(ud, t->path, &v) && value_matches(t, &v));
        if (t->must == '+' && !m) return false;
        if (t->must == '-' && m) return false;
        /* Bare terms rank; a must term ranks only with an explicit boost. */
        if (m && t->must != '-' && (!t->must || t->boosted)) *score += t->boost;
    }
    return true;
}

bool kn_match_query_eval(const kn_match_query *q, const char *label, int *score)
{
    kn_json *root = label ? kn_json_parse(label, strlen(label), 0, NULL) : NULL;
    bool ok = kn_match_query_eval_with(q, json_lookup, root, score);
    kn_json_decref(root);
    return ok;
}

size_t kn_match_query_widen(kn_match_query *q, const char *field, double by)
{
    size_t moved = 0;
    for (size_t i = 0; i < q->n; i++) {
        term *t = &q->terms[i];
        if (t->any || t->must == '-' || t->op == OP_EQ || strcmp(t->path, field)) continue;
        t->num = t->op == OP_GE || t->op == OP_GT ? t->base - by : t->base + by;
        moved++;
    }
    return moved;
}

bool kn_match_query_bounds_of(const kn_match_query *q, kn_match_query_bounds *out)
{
    *out = (kn_match_query_bounds){.lo = -INFINITY, .hi = INFINITY};
    bool any = false;
    for (size_t i = 0; i < q->n; i++) {
        const term *t = &q->terms[i];
        if (t->must != '+' || t->any) continue;
        if (t->op == OP_EQ && !t->is_num && !out->eq_name) {
            out->eq_name = t->path;
            out->eq_value = t->value;
            any = true;
        } else if (t->op != OP_EQ && (!out->range_name || !strcmp(out->range_name, t->path))) {
            out->range_name = t->path;
            if ((t->op == OP_GE || t->op == OP_GT) && t->num > out->lo) out->lo = t->num;
            if ((t->op == OP_LE || t->op == OP_LT) && t->num < out->hi) out->hi = t->num;
            any = true;
        }
    }
    return any;
}
