/* process: the built-in matcher and the naive reference (kn_matchmaker.h).
 *
 * A pass walks the pool oldest first; each unmatched ticket in turn is the
 * active one. Its candidates come from an index built for the pass: the
 * bucket of its query's first `+field:string` term, and within it the
 * tickets whose numeric field lies in its `+field:>=lo +field:<=hi` bounds
 * (a sorted array per bucket and field, binary-searched). A candidate must
 * accept the active ticket and be accepted by it (mutual), share no user
 * with it, and the best-scoring ones (their boosts summed both ways) are
 * tried first, oldest breaking ties. A group grows while every member's
 * query accepts the newcomer and the size stays within every member's max;
 * then it is cut to the largest prefix whose size suits every member (min,
 * max, count multiple). It forms at once when it reached its max count,
 * else only once the active ticket has waited max_intervals passes.
 *
 * The naive matcher is the same rules with every ticket a candidate of
 * every other (all pairs): the bench's reference.
 *
 * Invariants: a ticket is in at most one group; every group is valid
 * (kn_mm_group_valid). Pure functions of the pass: any thread. */
#include "kn_error.h"
#include "kn_matchmaker.h"
#include "kn_mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANDIDATES_MAX 256 /* room for candidates: 4 x the largest max_count */

static bool prop_lookup(void *ud, const char *name, kn_match_query_value *out)
{
    const kn_mm_ticket *t = ud;
    for (size_t i = 0; i < t->n_props; i++) {
        const kn_mm_prop *p = &t->props[i];
        if (strcmp(p->name, name)) continue;
        *out = (kn_match_query_value){
            .str = p->is_num ? NULL : p->str, .num = p->num, .is_num = p->is_num};
        return true;
    }
    return false;
}

/* Whether a's query accepts b; its score in *score. */
static bool accepts(const kn_mm_ticket *a, const kn_mm_ticket *b, int *score)
{
    *score = 0;
    return !a->query || kn_match_query_eval_with(a->query, prop_lookup, (void *)b, score);
}

static bool share_user(const kn_mm_ticket *a, const kn_mm_ticket *b)
{
    for (size_t i = 0; i < a->n_players; i++)
        for (size_t j = 0; j < b->n_players; j++)
            if (!strcmp(a->players[i].user_id, b->players[j].user_id)) return true;
    return false;
}

static bool size_suits(const kn_mm_ticket *t, size_t size)
{
    return (int)size >= t->min_count && (int)size <= t->max_count &&
           size % (size_t)(t->count_multiple > 0 ? t->count_multiple : 1) == 0;
}

bool kn_mm_group_valid(const kn_mm_pass *pass, const kn_mm_group *g)
{
    size_t size = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->tickets[i] >= pass->n) return false;
        size += pass->tickets[g->tickets[i]]->n_players;
    }
    for (size_t i = 0; i < g->n; i++) {
        const kn_mm_ticket *a = pass->tickets[g->tickets[i]];
        if (!size_suits(a, size)) return false;
        for (size_t j = 0; j < g->n; j++) {
            if (i == j) continue;
            const kn_mm_ticket *b = pass->tickets[g->tickets[j]];
            int s;
            if (g->tickets[i] == g->tickets[j] || share_user(a, b) || !accepts(a, b, &s))
                return false;
        }
    }
    return g->n > 0;
}

void kn_mm_groups_free(kn_mm_group *groups, size_t n)
{
    for (size_t i = 0; groups && i < n; i++)
        kn_free(groups[i].tickets);
    kn_free(groups);
}

/* --- the pass's index: string buckets, numeric orders within them ---------------- */

typedef struct order {
    const char *field; /* borrowed from a query */
    size_t *idx;       /* tickets of the bucket having a numeric `field`, by value */
    double *val;
    size_t n;
    struct order *next;
} order;

typedef struct bucket {
    const char *name, *value; /* borrowed from a ticket's property */
    size_t *idx;
    size_t n, cap;
    order *orders;
} bucket;

typedef struct pool_index {
    bucket *b; /* open addressing */
    size_t cap;
    bucket all; /* every ticket */
} pool_index;

static uint64_t hash2(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (; *a; a++)
        h = (h ^ (uint8_t)*a) * 1099511628211ull;
    h = (h ^ 0x1f) * 1099511628211ull;
    for (; *b; b++)
        h = (h ^ (uint8_t)*b) * 1099511628211ull;
    return h;
}

static bucket *bucket_find(pool_index *ix, const char *name, const char *value, bool create)
{
    for (size_t i = hash2(name, value) & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
        bucket *b = &ix->b[i];
        if (!b->name) {
            if (!create) return NULL;
            b->name = name;
            b->value = value;
            return b;
        }
        if (!strcmp(b->name, name) && !strcmp(b->value, value)) return b;
    }
}

static int bucket_push(bucket *b, size_t i)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        size_t *v = kn_realloc(b->idx, cap * sizeof *v);
        if (!v) return KN_ERR_NOMEM;
        b->idx = v;
        b->cap = cap;
    }
    b->idx[b->n++] = i;
    return KN_OK;
}

static void bucket_deinit(bucket *b)
{
    kn_free(b->idx);
    for (order *o = b->orders, *next; o; o = next) {
        next = o->next;
        kn_free(o->idx);
        kn_free(o->val);
        kn_free(o);
    }
}

static void index_free(pool_index *ix)
{
    for (size_t i = 0; ix->b && i < ix->cap; i++)
        bucket_deinit(&ix->b[i]);
    kn_free(ix->b);
    bucket_deinit(&ix->all);
}

static int index_build(pool_index *ix, const kn_mm_pass *pass)
{
    size_t entries = 0;
    for (size_t i = 0; i < pass->n; i++)
        entries += pass->tickets[i]->n_props;
    for (ix->cap = 64; ix->cap < 2 * entries; ix->cap *= 2) {
    }
    ix->b = kn_calloc(ix->cap, sizeof *ix->b);
    if (!ix->b) return KN_ERR_NOMEM;
    for (size_t i = 0; i < pass->n; i++) {
        const kn_mm_ticket *t = pass->tickets[i];
        if (bucket_push(&ix->all, i)) return KN_ERR_NOMEM;
        for (size_t k = 0; k < t->n_props; k++) {
            if (t->props[k].is_num) continue;
            if (bucket_push(bucket_find(ix, t->props[k].name, t->props[k].str, true), i))
                return KN_ERR_NOMEM;
        }
    }
    return KN_OK;
}

typedef struct keyed {
    double val;
    size_t idx;
} keyed;

static int by_val(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return x->val < y->val ? -1 : x->val > y->val;
}

/* The bucket's tickets with a numeric `field`, by value (built once). */
static order *order_of(bucket *b, const kn_mm_pass *pass, const char *field)
{
    for (order *o = b->orders; o; o = o->next)
        if (!strcmp(o->field, field)) return o;
    size_t cap = b->n ? b->n : 1;
    order *o = kn_calloc(1, sizeof *o);
    keyed *k = kn_malloc(cap * sizeof *k);
    if (o) o->idx = kn_malloc(cap * sizeof *o->idx), o->val = kn_malloc(cap * sizeof *o->val);
    if (!o || !k || !o->idx || !o->val) {
        if (o) kn_free(o->idx), kn_free(o->val);
        kn_free(o);
        kn_free(k);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        kn_match_query_value v;
        if (prop_lookup(pass->tickets[b->idx[i]], field, &v) && v.is_num)
            k[n++] = (keyed){v.num, b->idx[i]};
    }
    qsort(k, n, sizeof *k, by_val);
    for (size_t i = 0; i < n; i++)
        o->idx[i] = k[i].idx, o->val[i] = k[i].val;
    kn_free(k);
    o->field = field;
    o->n = n;
    o->next = b->orders;
    b->orders = o;
    return o;
}

/* --- forming one group ----------------------------------------------------------- */

typedef struct cand {
    size_t i;
    int score;
    uint64_t seq;
} cand;

/* Best score first, then oldest. */
static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Tries candidate c for active a; appends it to cs when mutual. */
static void consider(const kn_mm_pass *pass, const bool *matched, size_t a, size_t c, cand *cs,
                     size_t *n)
{
    if (c == a || matched[c]) return;
    const kn_mm_ticket *ta = pass->tickets[a], *tc = pass->tickets[c];
    int sa, sc;
    if (share_user(ta, tc) || !accepts(ta, tc, &sa) || !accepts(tc, ta, &sc)) return;
    cs[(*n)++] = (cand){c, sa + sc, tc->seq};
}

/* Grows and cuts a group around active a from its candidates; fills g
 * (capacity KN_MM_COUNT_MAX) and returns true when it should form now. */
static bool form(const kn_mm_pass *pass, size_t a, cand *cs, size_t n_cs, size_t *g, size_t *n_g)
{
    const kn_mm_ticket *ta = pass->tickets[a];
    qsort(cs, n_cs, sizeof *cs, by_score);
    size_t sizes[KN_MM_COUNT_MAX + 1];
    g[0] = a;
    *n_g = 1;
    sizes[0] = ta->n_players;
    size_t hi = (size_t)ta->max_count;
    for (size_t k = 0; k < n_cs && sizes[*n_g - 1] < hi; k++) {
        const kn_mm_ticket *tc = pass->tickets[cs[k].i];
        size_t size = sizes[*n_g - 1] + tc->n_players;
        if (size > hi || size > (size_t)tc->max_count) continue;
        bool ok = true;
        for (size_t m = 1; ok && m < *n_g; m++) {
            const kn_mm_ticket *tm = pass->tickets[g[m]];
            int s;
            ok = !share_user(tm, tc) && accepts(tm, tc, &s) && accepts(tc, tm, &s);
        }
        if (!ok) continue;
        g[*n_g] = cs[k].i;
        sizes[(*n_g)++] = size;
        if ((size_t)tc->max_count < hi) hi = (size_t)tc->max_count;
    }
    /* The largest prefix whose size suits every member. */
    for (size_t k = *n_g; k > 0; k--) {
        bool ok = true;
        for (size_t m = 0; ok && m < k; m++)
            ok = size_suits(pass->tickets[g[m]], sizes[k - 1]);
        if (!ok) continue;
        size_t max = (size_t)ta->max_count;
        for (size_t m = 0; m < k; m++)
            if ((size_t)pass->tickets[g[m]]->max_count < max)
                max = (size_t)pass->tickets[g[m]]->max_count;
        *n_g = k;
        /* Holding out for the max count until max_intervals passes went by. */
        return sizes[k - 1] == max || ta->intervals + 1 >= pass->max_intervals;
    }
    return false;
}

static int push_group(kn_mm_group **groups, size_t *n, size_t *cap, const size_t *g, size_t n_g)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        kn_mm_group *v = kn_realloc(*groups, c * sizeof *v);
        if (!v) return KN_ERR_NOMEM;
        *groups = v;
        *cap = c;
    }
    size_t *copy = kn_malloc(n_g * sizeof *copy);
    if (!copy) return KN_ERR_NOMEM;
    memcpy(copy, g, n_g * sizeof *copy);
    (*groups)[(*n)++] = (kn_mm_group){copy, n_g};
    return KN_OK;
}

/* The first position of o whose value is >= x. */
static size_t first_at_least(const order *o, double x)
{
    size_t lo = 0, hi = o->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->val[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The candidates of a: from the index (indexed) or every ticket. */
static size_t gather(const kn_mm_pass *pass, pool_index *ix, const bool *matched, size_t a,
                     cand *cs, size_t max)
{
    size_t n = 0;
    kn_match_query_bounds bd;
    const kn_mm_ticket *ta = pass->tickets[a];
    bucket *b = &ix->all;
    if (ix->b && ta->query && kn_match_query_bounds_of(ta->query, &bd)) {
        if (bd.eq_name) {
            b = bucket_find(ix, bd.eq_name, bd.eq_value, false);
            if (!b) return 0;
        }
        order *o = bd.range_name ? order_of(b, pass, bd.range_name) : NULL;
        if (o) {
            size_t lo = first_at_least(o, bd.lo), end = first_at_least(o, bd.hi);
            while (end < o->n && o->val[end] <= bd.hi)
                end++;
            /* Closest values first: out from the active ticket's own value. */
            kn_match_query_value own;
            double at =
                prop_lookup((void *)ta, bd.range_name, &own) && own.is_num ? own.num : bd.lo;
            size_t r = first_at_least(o, at);
            if (r < lo) r = lo;
            if (r > end) r = end;
            size_t l = r;
            while (n < max && (l > lo || r < end)) {
                bool right = r < end && (l == lo || o->val[r] - at <= at - o->val[l - 1]);
                consider(pass, matched, a, right ? o->idx[r++] : o->idx[--l], cs, &n);
            }
            return n;
        }
    }
    for (size_t k = 0; k < b->n && n < max; k++)
        consider(pass, matched, a, b->idx[k], cs, &n);
    return n;
}

static int run(const kn_mm_pass *pass, bool indexed, kn_mm_group **groups, size_t *n_groups)
{
    *groups = NULL;
    *n_groups = 0;
    size_t cap = 0;
    pool_index ix = {0};
    bool *matched = kn_calloc(pass->n ? pass->n : 1, sizeof *matched);
    size_t max = indexed ? CANDIDATES_MAX : pass->n;
    cand *cs = kn_malloc((max ? max : 1) * sizeof *cs);
    int rc = !matched || !cs ? KN_ERR_NOMEM : indexed ? index_build(&ix, pass) : KN_OK;
    if (rc == KN_OK && !indexed) {
        for (size_t i = 0; i < pass->n && rc == KN_OK; i++)
            rc = bucket_push(&ix.all, i);
    }
    size_t g[KN_MM_COUNT_MAX + 1];
    for (size_t a = 0; rc == KN_OK && a < pass->n; a++) {
        if (matched[a]) continue;
        /* Enough candidates to fill the group a few times over. */
        size_t want = indexed ? 4 * (size_t)pass->tickets[a]->max_count : max;
        if (want > max) want = max;
        size_t n_cs = gather(pass, &ix, matched, a, cs, want), n_g;
        if (!form(pass, a, cs, n_cs, g, &n_g)) continue;
        rc = push_group(groups, n_groups, &cap, g, n_g);
        for (size_t k = 0; rc == KN_OK && k < n_g; k++)
            matched[g[k]] = true;
    }
    index_free(&ix);
    kn_free(matched);
    kn_free(cs);
    if (rc) {
        kn_mm_groups_free(*groups, *n_groups);
        *groups = NULL;
        *n_groups = 0;
    }
    return rc;
}

static int run_or_say(const kn_mm_pass *pass, bool indexed, kn_mm_group **groups, size_t *n_groups,
                      char *msg, size_t cap)
{
    int rc = run(pass, indexed, groups, n_groups);
    if (rc) snprintf(msg, cap, "matchmaker: out of memory");
    return rc;
}

int kn_mm_process_builtin(void *ud, const kn_mm_pass *pass, kn_mm_group **groups, size_t *n_groups,
                          char *msg, size_t cap)
{
    (void)ud;
    return run_or_say(pass, true, groups, n_groups, msg, cap);
}

int kn_mm_process_naive(void *ud, const kn_mm_pass *pass, kn_mm_group **groups, size_t *n_groups,
                        char *msg, size_t cap)
{
    (void)ud;
    return run_or_say(pass, false, groups, n_groups, msg, cap);
}
