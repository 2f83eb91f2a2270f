/* vm_alloc: a VM's capped, pooled lua_Alloc (see vm_alloc.h).
 *
 * Invariants: a small block's class is class_of(the size Lua holds it at),
 * so a realloc inside the class keeps the block; every block starts at a
 * multiple of RT_HEAP_GRAIN from its page, and pages come from kn_malloc
 * (aligned for max_align_t), so blocks are too; a block's stride in its page
 * is its class size plus REDZONE (0 outside ASan builds). */
#include "vm_alloc.h"
#include "kn_mem.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif

#ifdef HEAP_ASAN
#include <sanitizer/asan_interface.h>
#define REDZONE        RT_HEAP_GRAIN
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define REDZONE        0
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct rt_heap_page {
    rt_heap_page *next;
};
#define PAGE_HEAD RT_HEAP_GRAIN /* the header's room: the first block stays aligned */

_Static_assert(RT_HEAP_GRAIN % _Alignof(max_align_t) == 0, "blocks must fit any object");
_Static_assert(sizeof(rt_heap_page) <= PAGE_HEAD, "the page header fits its room");
_Static_assert(RT_HEAP_SMALL_MAX % RT_HEAP_GRAIN == 0, "classes cover up to SMALL_MAX");

/* n in 1..RT_HEAP_SMALL_MAX */
static size_t class_of(size_t n)
{
    return (n - 1) / RT_HEAP_GRAIN;
}

static size_t class_size(size_t c)
{
    return (c + 1) * RT_HEAP_GRAIN;
}

void rt_heap_init(rt_heap *h, size_t limit)
{
    memset(h, 0, sizeof *h);
    h->limit = limit;
    h->pooled = true;
}

void rt_heap_deinit(rt_heap *h)
{
    rt_heap_page *pg = h->pages;
    while (pg) {
        rt_heap_page *next = pg->next;
        UNPOISON(pg, RT_HEAP_PAGE);
        kn_free(pg);
        pg = next;
    }
    bool pooled = h->pooled;
    rt_heap_init(h, h->limit);
    h->pooled = pooled;
}

static bool add_page(rt_heap *h)
{
    /* Pages count against the cap on their own (see the header). The limit
     * may have been lowered below page_bytes since (a match VM's is). */
    if (h->page_bytes > h->limit || RT_HEAP_PAGE > h->limit - h->page_bytes) return false;
    rt_heap_page *pg = kn_malloc(RT_HEAP_PAGE);
    if (!pg) return false;
    assert(((uintptr_t)pg & (RT_HEAP_GRAIN - 1)) == 0);
    pg->next = h->pages;
    h->pages = pg;
    h->page_bytes += RT_HEAP_PAGE;
    h->carve = (char *)pg + PAGE_HEAD;
    h->carve_end = (char *)pg + RT_HEAP_PAGE;
    POISON(h->carve, RT_HEAP_PAGE - PAGE_HEAD);
    return true;
}

/* A block of class c, all of it poisoned under ASan; NULL when no page. */
static void *small_get(rt_heap *h, size_t c)
{
    void **b = h->free[c];
    if (b) {
        UNPOISON(b, sizeof *b);
        h->free[c] = *b;
        POISON(b, sizeof *b);
        return b;
    }
    size_t stride = class_size(c) + REDZONE;
    /* The tail of a page too short for this class is left unused (under
     * RT_HEAP_SMALL_MAX bytes a page). */
    if ((size_t)(h->carve_end - h->carve) < stride && !add_page(h)) return NULL;
    void *p = h->carve;
    h->carve += stride;
    return p;
}

static void small_put(rt_heap *h, void *p, size_t c)
{
    UNPOISON(p, sizeof(void *));
    *(void **)p = h->free[c];
    h->free[c] = p;
    POISON(p, class_size(c));
}

/* Under ASan: the first n bytes of block p of class c usable, the rest not. */
static void expose(void *p, size_t c, size_t n)
{
    POISON(p, class_size(c));
    UNPOISON(p, n);
}

static void release(rt_heap *h, void *ptr, size_t osize)
{
    if (!ptr) return;
    if (osize > RT_HEAP_SMALL_MAX || !h->pooled) {
        kn_free(ptr);
    } else {
        small_put(h, ptr, class_of(osize));
    }
}

/* The block for nsize bytes holding ptr's first min(osize, nsize) bytes;
 * ptr is released on success and kept on failure. osize is 0 when ptr is
 * NULL. */
static void *resize(rt_heap *h, void *ptr, size_t osize, size_t nsize)
{
    bool was_small = h->pooled && ptr && osize <= RT_HEAP_SMALL_MAX;
    bool small = h->pooled && nsize <= RT_HEAP_SMALL_MAX;
    if (!was_small && !small) return kn_realloc(ptr, nsize); /* large to large, or new large */
    size_t c = small ? class_of(nsize) : 0;
    if (was_small && small && class_of(osize) == c) {
        expose(ptr, c, nsize);
        return ptr;
    }
    /* Across classes, or between the pool and the large path. */
    void *p = small ? small_get(h, c) : kn_malloc(nsize);
    if (!p) return NULL;
    if (small) expose(p, c, nsize);
    if (ptr) {
        memcpy(p, ptr, osize < nsize ? osize : nsize);
        release(h, ptr, osize);
    }
    return p;
}

void *rt_heap_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    rt_heap *h = ud;
    if (!ptr) osize = 0; /* osize then encodes the object type */
    if (nsize == 0) {
        release(h, ptr, osize);
        h->used -= osize;
        return NULL;
    }
    /* The cap, on growth only: shrinking never fails on it. */
    if (nsize > osize && (h->used > h->limit || nsize - osize > h->limit - h->used)) return NULL;
    void *p = resize(h, ptr, osize, nsize);
    if (p) h->used = h->used - osize + nsize;
    return p;
}
