/* rank_local: the in-process rank index (kn_rank.h) — a skip list whose
 * links carry spans (how many level-0 steps each link skips), so the rank
 * of a node is the sum of the spans walked to reach it, and a hash from
 * owner to node.
 *
 * Invariants (under the set's mutex):
 *   - level-0 links visit every node once, in kn_rank_compare order;
 *   - for every link, span = number of level-0 steps between its ends
 *     (a NULL link's span counts to the end of the list);
 *   - the owner hash holds exactly the nodes of the list; owners whose
 *     64-bit keys collide are chained through node->same_key.
 * Level of a node: 1 + geometric(1/4), at most MAX_LEVEL, from a per-set
 * xorshift generator (no shared state between sets). */
#include "kn_rank.h"
#include "kn_error.h"
#include "kn_map.h"
#include "kn_mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVEL 32

typedef struct node node;
typedef struct link {
    node *next;
    size_t span;
} link;

struct node {
    kn_rank_entry e;
    node *same_key; /* the next owner whose hash key is the same */
    int level;
    link lv[]; /* level entries */
};

typedef struct local {
    kn_rank base;
    pthread_mutex_t mu;
    node *head; /* MAX_LEVEL links, no entry */
    int level;  /* levels in use, >= 1 */
    size_t count;
    size_t bytes;
    kn_map owners; /* kn_map_key_str(owner) -> first node with that key */
    uint64_t rng;
} local;

int kn_rank_compare(int order, const kn_rank_entry *a, const kn_rank_entry *b)
{
    int dir = order == KN_RANK_ASC ? 1 : -1;
    if (a->score != b->score) return a->score < b->score ? -dir : dir;
    if (a->subscore != b->subscore) return a->subscore < b->subscore ? -dir : dir;
    if (a->time_us != b->time_us) return a->time_us < b->time_us ? -1 : 1;
    return strcmp(a->owner, b->owner);
}

static int random_level(local *s)
{
    int lvl = 1;
    for (;;) {
        uint64_t x = s->rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s->rng = x;
        if ((x & 3) != 0 || lvl >= MAX_LEVEL) return lvl;
        lvl++;
    }
}

static node *node_new(local *s, int level)
{
    size_t size = sizeof(node) + (size_t)level * sizeof(link);
    node *n = kn_calloc(1, size);
    if (n) {
        n->level = level;
        s->bytes += size;
    }
    return n;
}

static node *find_owner(local *s, const char *owner, node **prev_out)
{
    node *prev = NULL;
    for (node *n = kn_map_get(&s->owners, kn_map_key_str(owner)); n; prev = n, n = n->same_key)
        if (!strcmp(n->e.owner, owner)) {
            if (prev_out) *prev_out = prev;
            return n;
        }
    return NULL;
}

/* Links n (entry set, not yet in the list) at its place. */
static void list_insert(local *s, node *n)
{
    node *update[MAX_LEVEL];
    size_t rank[MAX_LEVEL];
    node *x = s->head;
    for (int i = s->level - 1; i >= 0; i--) {
        rank[i] = i == s->level - 1 ? 0 : rank[i + 1];
        while (x->lv[i].next && kn_rank_compare(s->base.order, &x->lv[i].next->e, &n->e) < 0) {
            rank[i] += x->lv[i].span;
            x = x->lv[i].next;
        }
        update[i] = x;
    }
    if (n->level > s->level) {
        for (int i = s->level; i < n->level; i++) {
            rank[i] = 0;
            update[i] = s->head;
            update[i]->lv[i].span = s->count;
        }
        s->level = n->level;
    }
    for (int i = 0; i < n->level; i++) {
        n->lv[i].next = update[i]->lv[i].next;
        update[i]->lv[i].next = n;
        n->lv[i].span = update[i]->lv[i].span - (rank[0] - rank[i]);
        update[i]->lv[i].span = (rank[0] - rank[i]) + 1;
    }
    for (int i = n->level; i < s->level; i++)
        update[i]->lv[i].span++;
    s->count++;
}

/* Unlinks n (in the list) without freeing it. */
static void list_remove(local *s, node *n)
{
    node *update[MAX_LEVEL];
    node *x = s->head;
    for (int i = s->level - 1; i >= 0; i--) {
        while (x->lv[i].next && kn_rank_compare(s->base.order, &x->lv[i].next->e, &n->e) < 0)
            x = x->lv[i].next;
        update[i] = x;
    }
    for (int i = 0; i < s->level; i++) {
        if (update[i]->lv[i].next == n) {
            update[i]->lv[i].span += n->lv[i].span - 1;
            update[i]->lv[i].next = n->lv[i].next;
        } else {
            update[i]->lv[i].span--;
        }
    }
    while (s->level > 1 && !s->head->lv[s->level - 1].next)
        s->level--;
    s->count--;
}

/* The rank of n (in the list): the spans walked to reach it. */
static size_t rank_of_node(local *s, const node *n)
{
    size_t rank = 0;
    node *x = s->head;
    for (int i = s->level - 1; i >= 0; i--) {
        while (x->lv[i].next && kn_rank_compare(s->base.order, &x->lv[i].next->e, &n->e) <= 0) {
            rank += x->lv[i].span;
            x = x->lv[i].next;
        }
        if (x == n) return rank;
    }
    return rank;
}

/* The node at rank r (1-based), or NULL. */
static node *node_at(local *s, size_t r)
{
    if (r == 0 || r > s->count) return NULL;
    size_t walked = 0;
    node *x = s->head;
    for (int i = s->level - 1; i >= 0; i--) {
        while (x->lv[i].next && walked + x->lv[i].span <= r) {
            walked += x->lv[i].span;
            x = x->lv[i].next;
        }
        if (walked == r) return x;
    }
    return NULL;
}

static int local_apply(kn_rank *r, const kn_rank_entry *e, bool *applied)
{
    local *s = (local *)r;
    *applied = false;
    pthread_mutex_lock(&s->mu);
    int rc = KN_OK;
    node *old = find_owner(s, e->owner, NULL);
    if (old) {
        if (old->e.version >= e->version) goto out;
        /* Same key: nothing moves. Else unlink and link again at the new
         * place; the node keeps its level and its place in the owner hash. */
        bool moved = kn_rank_compare(r->order, &old->e, e) != 0;
        if (moved) list_remove(s, old);
        old->e = *e;
        if (moved) list_insert(s, old);
        *applied = true;
        goto out;
    }
    node *n = node_new(s, random_level(s));
    if (!n) {
        rc = KN_ERR_NOMEM;
        goto out;
    }
    n->e = *e;
    uint64_t key = kn_map_key_str(e->owner);
    n->same_key = kn_map_get(&s->owners, key);
    if ((rc = kn_map_put(&s->owners, key, n))) {
        s->bytes -= sizeof(node) + (size_t)n->level * sizeof(link);
        kn_free(n);
        goto out;
    }
    list_insert(s, n);
    *applied = true;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int local_remove(kn_rank *r, const char *owner)
{
    local *s = (local *)r;
    pthread_mutex_lock(&s->mu);
    node *prev = NULL;
    node *n = find_owner(s, owner, &prev);
    if (n) {
        uint64_t key = kn_map_key_str(owner);
        if (prev)
            prev->same_key = n->same_key;
        else if (n->same_key)
            kn_map_put(&s->owners, key, n->same_key); /* replaces: cannot fail */
        else
            kn_map_del(&s->owners, key);
        list_remove(s, n);
        s->bytes -= sizeof(node) + (size_t)n->level * sizeof(link);
        kn_free(n);
    }
    pthread_mutex_unlock(&s->mu);
    return n ? KN_OK : KN_ERR_NOT_FOUND;
}

static int64_t local_rank_of(kn_rank *r, const char *owner, kn_rank_entry *out)
{
    local *s = (local *)r;
    pthread_mutex_lock(&s->mu);
    node *n = find_owner(s, owner, NULL);
    int64_t rank = n ? (int64_t)rank_of_node(s, n) : 0;
    if (n && out) *out = n->e;
    pthread_mutex_unlock(&s->mu);
    return rank;
}

static size_t local_range(kn_rank *r, int64_t first, size_t n, kn_rank_entry *out)
{
    local *s = (local *)r;
    size_t got = 0;
    pthread_mutex_lock(&s->mu);
    for (node *x = first > 0 ? node_at(s, (size_t)first) : NULL; x && got < n; x = x->lv[0].next)
        out[got++] = x->e;
    pthread_mutex_unlock(&s->mu);
    return got;
}

static size_t local_after(kn_rank *r, const kn_rank_entry *key, size_t n, kn_rank_entry *out,
                          int64_t *first_rank)
{
    local *s = (local *)r;
    size_t got = 0, rank = 0;
    pthread_mutex_lock(&s->mu);
    node *x = s->head;
    if (key)
        for (int i = s->level - 1; i >= 0; i--)
            while (x->lv[i].next && kn_rank_compare(r->order, &x->lv[i].next->e, key) <= 0) {
                rank += x->lv[i].span;
                x = x->lv[i].next;
            }
    *first_rank = (int64_t)rank + 1;
    for (x = x->lv[0].next; x && got < n; x = x->lv[0].next)
        out[got++] = x->e;
    pthread_mutex_unlock(&s->mu);
    return got;
}

static size_t local_count(kn_rank *r)
{
    local *s = (local *)r;
    pthread_mutex_lock(&s->mu);
    size_t n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void free_nodes(local *s)
{
    node *x = s->head->lv[0].next;
    while (x) {
        node *next = x->lv[0].next;
        kn_free(x);
        x = next;
    }
}

static void local_clear(kn_rank *r)
{
    local *s = (local *)r;
    pthread_mutex_lock(&s->mu);
    free_nodes(s);
    kn_map_deinit(&s->owners);
    kn_map_init(&s->owners);
    for (int i = 0; i < MAX_LEVEL; i++)
        s->head->lv[i] = (link){NULL, 0};
    s->level = 1;
    s->count = 0;
    s->bytes = sizeof(local) + sizeof(node) + MAX_LEVEL * sizeof(link);
    pthread_mutex_unlock(&s->mu);
}

static int cmp_desc(const void *a, const void *b)
{
    return kn_rank_compare(KN_RANK_DESC, a, b);
}

static int cmp_asc(const void *a, const void *b)
{
    return kn_rank_compare(KN_RANK_ASC, a, b);
}

/* Builds the list left to right: each new node is the last one, linked
 * from the last node of every level it has (last[i], at rank last_rank[i]). */
static int local_load(kn_rank *r, kn_rank_entry *es, size_t n)
{
    local *s = (local *)r;
    if (n > 1) qsort(es, n, sizeof *es, r->order == KN_RANK_ASC ? cmp_asc : cmp_desc);
    local_clear(r);
    pthread_mutex_lock(&s->mu);
    node *last[MAX_LEVEL];
    size_t last_rank[MAX_LEVEL];
    for (int i = 0; i < MAX_LEVEL; i++) {
        last[i] = s->head;
        last_rank[i] = 0;
    }
    int rc = KN_OK, top = 1;
    for (size_t k = 0; k < n && rc == KN_OK; k++) {
        if (find_owner(s, es[k].owner, NULL)) continue;
        node *x = node_new(s, random_level(s));
        if (!x) {
            rc = KN_ERR_NOMEM;
            break;
        }
        x->e = es[k];
        uint64_t key = kn_map_key_str(x->e.owner);
        x->same_key = kn_map_get(&s->owners, key);
        if ((rc = kn_map_put(&s->owners, key, x))) {
            s->bytes -= sizeof(node) + (size_t)x->level * sizeof(link);
            kn_free(x);
            break;
        }
        size_t rank = ++s->count;
        for (int i = 0; i < x->level; i++) {
            last[i]->lv[i].next = x;
            last[i]->lv[i].span = rank - last_rank[i];
            last[i] = x;
            last_rank[i] = rank;
        }
        if (x->level > top) top = x->level;
    }
    for (int i = 0; i < MAX_LEVEL; i++) {
        last[i]->lv[i].next = NULL;
        last[i]->lv[i].span = s->count - last_rank[i];
    }
    s->level = top;
    pthread_mutex_unlock(&s->mu);
    if (rc) local_clear(r);
    return rc;
}

static size_t local_memory(kn_rank *r)
{
    local *s = (local *)r;
    pthread_mutex_lock(&s->mu);
    size_t b = s->bytes + s->owners.cap * sizeof(kn_map_entry);
    pthread_mutex_unlock(&s->mu);
    return b;
}

static void local_destroy(kn_rank *r)
{
    local *s = (local *)r;
    free_nodes(s);
    kn_free(s->head);
    kn_map_deinit(&s->owners);
    pthread_mutex_destroy(&s->mu);
    kn_free(s);
}

static const kn_rank_vt local_vt = {
    .apply = local_apply,
    .remove = local_remove,
    .rank_of = local_rank_of,
    .range = local_range,
    .after = local_after,
    .count = local_count,
    .clear = local_clear,
    .load = local_load,
    .memory = local_memory,
    .destroy = local_destroy,
};

int kn_rank_local_create(int order, kn_rank **out)
{
    *out = NULL;
    if (order != KN_RANK_DESC && order != KN_RANK_ASC) return KN_ERR_INVALID_ARGUMENT;
    local *s = kn_calloc(1, sizeof *s);
    if (!s) return KN_ERR_NOMEM;
    s->head = kn_calloc(1, sizeof(node) + MAX_LEVEL * sizeof(link));
    if (!s->head) {
        kn_free(s);
        return KN_ERR_NOMEM;
    }
    s->base.vt = &local_vt;
    s->base.order = order;
    s->level = 1;
    s->bytes = sizeof(local) + sizeof(node) + MAX_LEVEL * sizeof(link);
    s->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)s;
    kn_map_init(&s->owners);
    pthread_mutex_init(&s->mu, NULL);
    *out = &s->base;
    return KN_OK;
}

static int local_factory_create(void *ud, int order, kn_rank **out)
{
    (void)ud;
    return kn_rank_local_create(order, out);
}

const kn_rank_factory kn_rank_local_factory = {local_factory_create, NULL};
