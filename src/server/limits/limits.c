/* limits: token buckets and the lockout table. */
#include "kn_limits.h"
#include "kn_error.h"
#include "kn_map.h"
#include "kn_mem.h"

#include <pthread.h>
#include <string.h>

void kn_bucket_init(kn_bucket *b, double rate, double burst, int64_t now_ms)
{
    b->rate = rate;
    b->burst = burst > 0 ? burst : 1;
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

bool kn_bucket_take(kn_bucket *b, double cost, int64_t now_ms)
{
    if (b->rate <= 0) return true;
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        if (b->tokens > b->burst) b->tokens = b->burst;
        b->last_ms = now_ms;
    }
    if (b->tokens < cost) return false;
    b->tokens -= cost;
    return true;
}

typedef struct entry {
    struct entry *prev, *next; /* LRU list: head = oldest */
    uint64_t hash;
    char *key;
    uint32_t failures;
    int64_t first_ms, locked_until_ms;
} entry;

struct kn_lockout {
    kn_lockout_config cfg;
    pthread_mutex_t lock;
    kn_map by_hash; /* hash -> entry (a hash collision shares an entry: harmless, rare) */
    entry *head, *tail;
};

int kn_lockout_create(const kn_lockout_config *cfg, kn_lockout **out)
{
    *out = NULL;
    if (cfg->max_entries == 0) return KN_ERR_INVALID_ARGUMENT;
    kn_lockout *l = kn_calloc(1, sizeof *l);
    if (!l) return KN_ERR_NOMEM;
    l->cfg = *cfg;
    pthread_mutex_init(&l->lock, NULL);
    kn_map_init(&l->by_hash);
    *out = l;
    return KN_OK;
}

static void unlink_entry(kn_lockout *l, entry *e)
{
    if (e->prev) e->prev->next = e->next;
    else l->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else l->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_tail(kn_lockout *l, entry *e)
{
    e->prev = l->tail;
    e->next = NULL;
    if (l->tail) l->tail->next = e;
    else l->head = e;
    l->tail = e;
}

static void drop(kn_lockout *l, entry *e)
{
    unlink_entry(l, e);
    kn_map_del(&l->by_hash, e->hash);
    kn_free(e->key);
    kn_free(e);
}

void kn_lockout_destroy(kn_lockout *l)
{
    if (!l) return;
    while (l->head) drop(l, l->head);
    kn_map_deinit(&l->by_hash);
    pthread_mutex_destroy(&l->lock);
    kn_free(l);
}

/* Forget failures outside the window and expired locks. */
static void age(const kn_lockout *l, entry *e, int64_t now)
{
    if (e->locked_until_ms && now >= e->locked_until_ms) {
        e->locked_until_ms = 0;
        e->failures = 0;
    }
    if (!e->locked_until_ms && e->failures && now - e->first_ms > l->cfg.window_ms)
        e->failures = 0;
}

int64_t kn_lockout_check(kn_lockout *l, const char *key, int64_t now)
{
    if (!l || !l->cfg.max_failures) return 0;
    pthread_mutex_lock(&l->lock);
    entry *e = kn_map_get(&l->by_hash, kn_map_key_str(key));
    int64_t left = 0;
    if (e) {
        age(l, e, now);
        if (e->locked_until_ms) left = e->locked_until_ms - now;
    }
    pthread_mutex_unlock(&l->lock);
    return left;
}

int64_t kn_lockout_fail(kn_lockout *l, const char *key, int64_t now)
{
    if (!l || !l->cfg.max_failures) return 0;
    pthread_mutex_lock(&l->lock);
    uint64_t h = kn_map_key_str(key);
    entry *e = kn_map_get(&l->by_hash, h);
    if (!e) {
        /* At the cap, evict the least recently failed key. */
        if (l->by_hash.count >= l->cfg.max_entries && l->head) drop(l, l->head);
        e = kn_calloc(1, sizeof *e);
        char *copy = kn_strdup(key);
        if (!e || !copy || kn_map_put(&l->by_hash, h, e)) {
            kn_free(e);
            kn_free(copy);
            pthread_mutex_unlock(&l->lock);
            return 0; /* out of memory: fail open rather than lock everyone out */
        }
        e->hash = h;
        e->key = copy;
        push_tail(l, e);
    } else {
        unlink_entry(l, e);
        push_tail(l, e);
        age(l, e, now);
    }
    int64_t left = 0;
    if (e->locked_until_ms) {
        left = e->locked_until_ms - now;
    } else {
        if (e->failures == 0) e->first_ms = now;
        if (++e->failures >= l->cfg.max_failures) {
            e->locked_until_ms = now + l->cfg.lock_ms;
            left = l->cfg.lock_ms;
        }
    }
    pthread_mutex_unlock(&l->lock);
    return left;
}

void kn_lockout_success(kn_lockout *l, const char *key)
{
    if (!l || !l->cfg.max_failures) return;
    pthread_mutex_lock(&l->lock);
    entry *e = kn_map_get(&l->by_hash, kn_map_key_str(key));
    if (e && !e->locked_until_ms) drop(l, e);
    pthread_mutex_unlock(&l->lock);
}

size_t kn_lockout_size(kn_lockout *l)
{
    pthread_mutex_lock(&l->lock);
    size_t n = l->by_hash.count;
    pthread_mutex_unlock(&l->lock);
    return n;
}
