/* kn_recycle: see kn_recycle.h. Size classes of 64 .. 4096 bytes, one
 * singly linked free list per class and thread. */
#include "kn_recycle.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ON 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ON 0
#endif
#endif
#ifndef POOL_ON
#define POOL_ON 1
#endif

#define CLASSES     7 /* 64 .. 4096 bytes */
#define CACHE_BYTES KN_RECYCLE_CACHE_BYTES

typedef struct block {
    struct block *next;
} block;

typedef struct cache {
    block *head[CLASSES];
    uint32_t count[CLASSES];
    bool registered;
} cache;

static _Thread_local cache tl_cache;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static size_t class_size(unsigned cls)
{
    return (size_t)64 << cls;
}

/* The smallest class that holds `size`; CLASSES when none does. */
static unsigned class_for(size_t size)
{
    unsigned c = 0;
    while (c < CLASSES && class_size(c) < size)
        c++;
    return c;
}

/* The largest class a block of `usable` bytes can serve; CLASSES when none. */
static unsigned class_of_block(size_t usable)
{
    if (usable < class_size(0)) return CLASSES;
    unsigned c = 0;
    while (c + 1 < CLASSES && class_size(c + 1) <= usable)
        c++;
    return c;
}

static void drain(cache *k)
{
    for (unsigned c = 0; c < CLASSES; c++) {
        while (k->head[c]) {
            block *b = k->head[c];
            k->head[c] = b->next;
            free(b);
        }
        k->count[c] = 0;
    }
}

static void on_thread_exit(void *arg)
{
    drain(arg);
}
static void make_key(void)
{
    (void)pthread_key_create(&exit_key, on_thread_exit);
}

void *kn_recycle_alloc(size_t size)
{
    unsigned cls = POOL_ON ? class_for(size) : CLASSES;
    if (cls == CLASSES) return malloc(size);
    cache *k = &tl_cache;
    block *b = k->head[cls];
    if (b) {
        k->head[cls] = b->next;
        k->count[cls]--;
        return b;
    }
    if (!k->registered) {
        (void)pthread_once(&exit_once, make_key);
        k->registered = pthread_setspecific(exit_key, k) == 0;
    }
    return malloc(class_size(cls));
}

void kn_recycle_free(void *p)
{
    if (!p) return;
    cache *k = &tl_cache;
    if (POOL_ON && k->registered) {
        unsigned cls = class_of_block(malloc_usable_size(p));
        if (cls < CLASSES && (size_t)(k->count[cls] + 1) * class_size(cls) <= CACHE_BYTES) {
            block *b = p;
            b->next = k->head[cls];
            k->head[cls] = b;
            k->count[cls]++;
            return;
        }
    }
    free(p);
}

bool kn_recycle_enabled(void)
{
    return POOL_ON;
}
